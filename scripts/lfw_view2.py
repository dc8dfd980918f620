"""LFW View 2, "unrestricted, no outside data": one model per fold, trained only on people outside it.

A thin caller of the library: :func:`iznet.engine.view2.train_folds` trains, :mod:`iznet.eval.view2` scores
(``iznet eval view2`` does the same from the command line).

For each fold k the script trains a fresh embedder on ``lfw:fold=k`` (all LFW people not in fold k,
a share of them held out as development people), embeds fold k's 600 pairs, and keeps the distances.
The 10-fold accuracy then chooses each fold's threshold on the other nine folds' distances (the
standard protocol), and reports mean ± std, AUC, VAL@FAR=1e-3 and EER over all 6,000 pairs.

Usage (one process for all folds, so the pack is read once):

    python scripts/lfw_view2.py --pack packs/lfw112.pt --data-root DIR_WITH_lfw/ --out runs/view2 \
        --model nn2 --input-size 112 --steps 3000 [--folds 0,1,2]

``--aggregate-only`` recomputes the table from the runs' ``test_pairs.npz`` files; ``--stored FILE`` reads
the folds that have no folder in OUT from the run's kept distances (folds trained in a checkout that is
gone, the rest here). Scoring a run also
writes ``OUT/view2_distances.npz`` (``dist``, ``same``, ``fold``: the 6,000 test pairs in fold order), a
small file that keeps a run's result once its folder is gone: ``docs/results/view2_runs/`` holds one
per View 2 run, and ``--fuse`` takes such files as well as run folders.

``--fuse RUN,RUN,...`` scores an ensemble: each fold's models from several runs (all trained without
that fold's people, so the protocol holds), their distances fused as the root mean square, which is
the distance of the members' concatenated unit embeddings scaled by ``1/sqrt(n)``
(:class:`iznet.recognize.EnsembleEmbedder`). It writes ``OUT/view2.json``:

    python scripts/lfw_view2.py --out runs/view2_ens --fuse runs/view2_a,docs/results/view2_runs/b.npz

``--fuse RUNS --sizes`` scores every subset of those runs instead and writes ``OUT/ensemble_sizes.json``:
per ensemble size, the mean, min and max accuracy over its subsets (the gain of one more member, free of
which members a single ensemble happens to hold), and per run the mean gain of adding it to the subsets
of the others.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from iznet.errors import IznetError
from iznet.eval.view2 import aggregate, ensemble_sizes, fuse


def main() -> None:
    try:
        _main()
    except IznetError as e:
        raise SystemExit(f"error: {e}") from None


def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pack", help="the LFW pack (training only)")
    ap.add_argument("--data-root", help="the folder holding lfw/ with its pair files (training only)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--model", default="nn2")
    ap.add_argument("--input-size", type=int, default=None)
    ap.add_argument("--loss", default="triplet")
    ap.add_argument("--mining", default="batch-hard")
    ap.add_argument("--margin", type=float, default=0.2)
    ap.add_argument("--p", type=int, default=64)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--singletons", type=int, default=0,
                    help="images of one-image people added to each batch as negatives only")
    ap.add_argument("--people-weight", default="uniform", help="uniform | images | sqrt (P×K batches)")
    ap.add_argument("--id-weight", type=float, default=0.0,
                    help="weight of the CosFace identity term next to the triplet loss (0: off)")
    ap.add_argument("--id-scale", type=float, default=30.0)
    ap.add_argument("--id-margin", type=float, default=0.35)
    ap.add_argument("--optimizer", default="sgd")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--folds", default="0,1,2,3,4,5,6,7,8,9")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-budget", type=float, default=0.0,
                    help="seconds of training per fold; steps are lowered to fit (recorded in config.json)")
    ap.add_argument("--checkpoint-every", type=int, default=0,
                    help="write FOLD/last.pt every N steps; a fold with a last.pt and no summary resumes from it")
    ap.add_argument("--aggregate-only", action="store_true")
    ap.add_argument("--fuse", default="",
                    help="RUN,RUN,...: score the ensemble of these runs' fold models (no training) into OUT")
    ap.add_argument("--sizes", action="store_true",
                    help="with --fuse: score every subset of the runs and write OUT/ensemble_sizes.json "
                         "(mean, min, max accuracy per ensemble size)")
    ap.add_argument("--stored", type=Path, default=None,
                    help="with --aggregate-only: this run's view2_distances.npz (docs/results/view2_runs/), "
                         "read for the folds that have no fold folder in OUT")
    ap.add_argument("--no-bf16", action="store_true")
    ap.add_argument("--cpu-bf16", action="store_true",
                    help="bf16 autocast of CPU training steps (fast on CPUs with native bf16)")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                    help="channels_last inputs (default: on for the CPU; off on CUDA, where it made NN2 "
                         "diverge under bf16)")
    args = ap.parse_args()
    from iznet.utils.io import write_json  # temporary file, then rename: a stopped run keeps its last table

    folds = [int(f) for f in args.folds.split(",")]
    if args.stored is not None and not args.aggregate_only:
        raise SystemExit("error: --stored goes with --aggregate-only (it fills in folds trained elsewhere)")
    if args.sizes and not args.fuse:
        raise SystemExit("error: --sizes goes with --fuse (it scores every subset of the fused runs)")
    if args.fuse and args.sizes:
        res = ensemble_sizes([Path(r) for r in args.fuse.split(",") if r.strip()], folds)
        write_json(args.out / "ensemble_sizes.json", res)
        print("size  subsets  accuracy mean [min, max]   AUC mean  EER mean")
        for z in res["sizes"]:
            print(f"{z['size']:>4}  {z['subsets']:>7}  {100 * z['accuracy_mean']:6.2f}% "
                  f"[{100 * z['accuracy_min']:.2f}, {100 * z['accuracy_max']:.2f}]  {z['auc_mean']:.4f}  "
                  f"{100 * z['eer_mean']:.2f}%")
        if (f := res["fit"]) is not None:
            print(f"fit: accuracy = {100 * f['A']:.2f}% - {100 * f['B']:.2f} points / size "
                  f"(largest residual {100 * f['max_abs_residual']:.2f} points); "
                  + ", ".join(f"{m} runs: {100 * (f['A'] - f['B'] / m):.2f}%" for m in (6, 8, 10)))
        print("run: alone, then the mean gain (points) of adding it to the subsets of 1, 2, ... other runs")
        for mb in res["members"]:
            print(f"{mb['run']}: {100 * mb['accuracy']:.2f}%  "
                  + "  ".join(f"{100 * g['gain_mean']:+.2f}" for g in mb["gains"]))
        return
    if args.fuse:
        res = fuse([Path(r) for r in args.fuse.split(",") if r.strip()], folds)
        write_json(args.out / "view2.json", res)
        print(json.dumps({k: v for k, v in res.items() if k != "members"}, indent=2, default=float))
        return

    if not args.aggregate_only:
        if not args.pack or not args.data_root:
            raise SystemExit("error: training needs --pack and --data-root (scoring with --aggregate-only or "
                             "--fuse does not)")
        from iznet.engine.config import TrainConfig
        from iznet.engine.view2 import train_folds
        from iznet.utils.device import cpu_bf16_warning, default_device

        if (warning := cpu_bf16_warning(default_device(), args.cpu_bf16)) is not None:
            print(warning, file=sys.stderr, flush=True)
        kw = {"input_size": args.input_size} if args.input_size else {}
        cfg = TrainConfig(model=args.model, model_kwargs=kw, loss=args.loss, mining=args.mining,
                          margin=args.margin, p=args.p, k=args.k, singletons=args.singletons,
                          people_weight=args.people_weight, id_weight=args.id_weight,
                          id_scale=args.id_scale, id_margin=args.id_margin, optimizer=args.optimizer, lr=args.lr,
                          weight_decay=args.weight_decay, steps=args.steps, warmup_steps=args.warmup,
                          seed=args.seed, eval_every=0, checkpoint_every=args.checkpoint_every,
                          time_budget=args.time_budget, bf16=not args.no_bf16, cpu_bf16=args.cpu_bf16,
                          channels_last=args.channels_last)

        def report(e: dict) -> None:
            k = e["fold"]
            if e.get("skipped"):
                print(f"fold {k}: trained already ({args.out / f'fold{k}'}); delete it to train again", flush=True)
                return
            if e["resumed_from"] is not None:
                print(f"fold {k}: resumed from step {e['resumed_from']}", flush=True)
            s = e["summary"]
            print(f"fold {k}: test acc {s['test']['acc_at_threshold']:.4f} (dev threshold), "
                  f"dev acc {s['dev']['best_acc']:.4f}, {s['steps']} steps, "
                  f"{s['samples_per_second']:.0f} samples/s, {e['seconds']:.0f} s", flush=True)

        train_folds(args.out, folds, cfg, pack=args.pack, data_root=args.data_root, command=" ".join(sys.argv),
                    on_fold=report)
    if len(folds) < 2:
        print("one fold trained: the 10-fold table needs at least two (--aggregate-only later)", flush=True)
        return
    res = aggregate(args.out, folds, args.stored)
    print(f"distances: {res['distances_file']} (keep it: docs/results/view2_runs/)", flush=True)
    write_json(args.out / "view2.json", res)
    print(json.dumps(res, indent=2, default=float))


if __name__ == "__main__":
    main()
