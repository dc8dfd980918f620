"""LFW View 2, "unrestricted, no outside data": one model per fold, trained only on people outside it.

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
import time
from pathlib import Path

import numpy as np


def _fold_distances(out: Path, folds: list[int], stored: Path | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The test distances, same-person flags and fold ids of a run's folds, in fold order.

    ``out`` is a run folder (``fold*/test_pairs.npz``) or a ``view2_distances.npz`` file of one. With
    ``stored`` (a ``view2_distances.npz`` of the same run), folds that have no ``test_pairs.npz`` in the
    folder are read from that file: a run whose first folds were trained in a checkout that is gone.
    """
    if out.suffix == ".npz":
        return _stored_distances(out, folds)
    dists, sames, fold_ids = [], [], []
    for k in folds:
        f = out / f"fold{k}" / "test_pairs.npz"
        if f.is_file():
            z = np.load(f)
            d, s = z["dist"], z["same"].astype(bool)
        elif stored is not None:
            d, s, _ = _stored_distances(stored, [k])
        else:
            raise SystemExit(f"missing {f}: train fold {k} first (or name the run's stored distances with --stored)")
        dists.append(d); sames.append(s); fold_ids.append(np.full(len(d), k))
    return np.concatenate(dists), np.concatenate(sames), np.concatenate(fold_ids)


def _stored_distances(f: Path, folds: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The folds' rows of a ``view2_distances.npz`` file, in the order of ``folds``."""
    if not f.is_file():
        raise SystemExit(f"missing {f}: give a run's view2_distances.npz (docs/results/view2_runs/) or its folder")
    try:
        z = np.load(f)
        dist, same, fold = z["dist"], z["same"].astype(bool), z["fold"]
    except (OSError, ValueError, KeyError) as e:
        raise SystemExit(f"{f}: not a View 2 distances file (arrays dist, same, fold), as --aggregate-only "
                         f"writes to OUT/view2_distances.npz: {e}") from None
    if not len(dist) == len(same) == len(fold):
        raise SystemExit(f"{f}: dist, same and fold differ in length ({len(dist)}, {len(same)}, {len(fold)})")
    missing = [k for k in folds if not (fold == k).any()]
    if missing:
        raise SystemExit(f"{f} holds no pairs of fold(s) {missing}; it has folds {sorted(set(fold.tolist()))}")
    rows = np.concatenate([np.flatnonzero(fold == k) for k in folds])
    return dist[rows], same[rows], fold[rows]


def save_distances(out: Path, dist: np.ndarray, same: np.ndarray, fold: np.ndarray) -> Path:
    """Write a run's test distances to ``OUT/view2_distances.npz`` (temporary file, then rename)."""
    from iznet.utils.io import atomic_path

    dest = out / "view2_distances.npz"
    with atomic_path(dest) as tmp, open(tmp, "wb") as fh:  # a handle: savez on a path appends ".npz"
        np.savez_compressed(fh, dist=dist.astype(np.float32), same=same.astype(bool), fold=fold.astype(np.int8))
    return dest


def aggregate(out: Path, folds: list[int], stored: Path | None = None) -> dict:
    """The 10-fold table of a run; also keeps its distances in ``OUT/view2_distances.npz``."""
    from iznet.eval.verification import verification_report

    dist, same, fold = _fold_distances(out, folds, stored)
    res = verification_report(dist, same, fold, protocol="lfw-view2-unrestricted").to_dict()
    res["training"] = [_fold_training(out / f"fold{k}", k) for k in folds]
    print(f"distances: {save_distances(out, dist, same, fold)} (keep it: docs/results/view2_runs/)", flush=True)
    return res


def _fusable(runs: list[Path], folds: list[int]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Each run's (dist, same, fold) over ``folds``, checked to be the same test pairs."""
    if len(runs) < 2:
        raise SystemExit(f"--fuse needs two or more runs, got {len(runs)}")
    parts = [_fold_distances(r, folds) for r in runs]
    for r, (_, same, _) in zip(runs[1:], parts[1:]):
        if not np.array_equal(same, parts[0][1]):
            raise SystemExit(f"{r}: its test pairs differ from {runs[0]}'s; fuse runs of the same View 2 folds")
    return parts


def ensemble_sizes(runs: list[Path], folds: list[int]) -> dict:
    """How an ensemble's 10-fold accuracy grows with its size: every subset of the runs, fused as by
    :func:`fuse`, summarised per size (mean, min and max over the C(n, m) subsets of m runs).

    One ensemble's score mixes the effect of its size with the luck of which runs it holds; the mean
    over all subsets of a size removes the second, so the gain of one more member can be read off.
    """
    from itertools import combinations

    from iznet.eval.verification import verification_report

    parts = _fusable(runs, folds)
    same, fold = parts[0][1], parts[0][2]
    sizes = []
    acc_of: dict[tuple[int, ...], float] = {}  # run indices (sorted) -> accuracy of their ensemble
    for m in range(1, len(runs) + 1):
        rows = []
        for idx in combinations(range(len(runs)), m):
            dist = np.sqrt(np.mean([parts[i][0] ** 2 for i in idx], axis=0))
            r = verification_report(dist, same, fold, protocol="lfw-view2-unrestricted-ensemble").to_dict()
            acc_of[idx] = r["accuracy"]
            rows.append({"runs": [str(runs[i]) for i in idx], "accuracy": r["accuracy"], "auc": r["auc"],
                         "eer": r["eer"]})
        acc = np.array([r["accuracy"] for r in rows])
        sizes.append({"size": m, "subsets": len(rows), "accuracy_mean": float(acc.mean()),
                      "accuracy_min": float(acc.min()), "accuracy_max": float(acc.max()),
                      "auc_mean": float(np.mean([r["auc"] for r in rows])),
                      "eer_mean": float(np.mean([r["eer"] for r in rows])), "ensembles": rows})
    # The mean accuracy of m members, fitted as A - B/m (least squares): the error of an average of m
    # partly independent members falls like 1/m towards what they share, so A estimates the ceiling
    # of ensembling more runs of the same recipe. Needs three sizes or more to say anything.
    fit = None
    if len(sizes) >= 3:
        m = np.array([z["size"] for z in sizes], dtype=float)
        y = np.array([z["accuracy_mean"] for z in sizes])
        (a, neg_b), *_ = np.linalg.lstsq(np.stack([np.ones_like(m), 1 / m], axis=1), y, rcond=None)
        fit = {"form": "accuracy_mean = A - B / size", "A": float(a), "B": float(-neg_b),
               "max_abs_residual": float(np.max(np.abs(a + neg_b / m - y)))}
    # What each run adds: over every subset S that lacks it, acc(S + run) - acc(S), averaged per size of
    # S. A run that errs differently from the others gains more than its own accuracy suggests; one that
    # is only weaker gains less than the others do, or loses.
    members = []
    for i, run in enumerate(runs):
        others = [j for j in range(len(runs)) if j != i]
        gains = []
        for m in range(1, len(runs)):
            deltas = [acc_of[tuple(sorted(idx + (i,)))] - acc_of[idx] for idx in combinations(others, m)]
            gains.append({"added_to": m, "subsets": len(deltas), "gain_mean": float(np.mean(deltas)),
                          "gain_min": float(np.min(deltas)), "gain_max": float(np.max(deltas))})
        members.append({"run": str(run), "accuracy": acc_of[(i,)], "gains": gains,
                        "gain_mean": float(np.mean([g["gain_mean"] for g in gains]))})
    return {"runs": [str(r) for r in runs], "folds": folds, "sizes": sizes, "fit": fit, "members": members}


def fuse(runs: list[Path], folds: list[int]) -> dict:
    """The 10-fold table of an ensemble: per pair, the root mean square of the runs' distances."""
    from iznet.eval.verification import verification_report

    parts = _fusable(runs, folds)
    dist = np.sqrt(np.mean([d ** 2 for d, _, _ in parts], axis=0))
    res = verification_report(dist, parts[0][1], parts[0][2], protocol="lfw-view2-unrestricted-ensemble").to_dict()
    res["members"] = []
    for r, (d, same, fold) in zip(runs, parts):
        one = verification_report(d, same, fold, protocol="lfw-view2-unrestricted").to_dict()
        res["members"].append({"run": str(r), **{k: one[k] for k in ("accuracy", "accuracy_std", "auc", "eer", "val")},
                               "training": [_fold_training(r / f"fold{k}", k) for k in folds]})
    return res


def _fold_training(run: Path, k: int) -> dict:
    """What each fold's model trained on and how it did on its own development pairs (from its summary)."""
    row: dict = {"fold": k}
    try:
        s = json.loads((run / "summary.json").read_text())
        cfg = json.loads((run / "config.json").read_text())["config"]
    except (OSError, ValueError, KeyError):
        # an older run layout, or stored distances (RUN.npz/foldK is no folder): the distances are all
        # the table needs
        return row
    dev, test = s.get("dev") or {}, s.get("test") or {}
    row.update(steps=s.get("steps"), samples=s.get("samples"), train_seconds=s.get("train_seconds"),
               samples_per_second=s.get("samples_per_second"), dev_acc=dev.get("best_acc"), dev_auc=dev.get("auc"),
               test_acc_at_dev_threshold=test.get("acc_at_threshold"), test_auc=test.get("auc"),
               cpu_bf16=cfg.get("cpu_bf16", False))
    return row


def main() -> None:
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
        import torch

        from iznet.engine.data import build_train_data
        from iznet.engine.train import TrainConfig, Trainer
        from iznet.errors import ModelError, TrainingError

        from iznet.utils.device import cpu_bf16_warning

        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if (warning := cpu_bf16_warning(dev, args.cpu_bf16)) is not None:
            print(warning, file=sys.stderr, flush=True)
        kw = {"input_size": args.input_size} if args.input_size else {}
        for k in folds:
            if (args.out / f"fold{k}" / "summary.json").is_file():
                print(f"fold {k}: trained already ({args.out / f'fold{k}'}); delete it to train again", flush=True)
                continue
            t0 = time.time()
            try:
                cfg = TrainConfig(model=args.model, model_kwargs=kw, loss=args.loss, mining=args.mining,
                                  margin=args.margin, p=args.p, k=args.k, singletons=args.singletons,
                                  people_weight=args.people_weight, id_weight=args.id_weight,
                                  id_scale=args.id_scale, id_margin=args.id_margin,
                                  optimizer=args.optimizer, lr=args.lr,
                                  weight_decay=args.weight_decay, steps=args.steps, warmup_steps=args.warmup,
                                  seed=args.seed + k, eval_every=0, checkpoint_every=args.checkpoint_every,
                                  time_budget=args.time_budget, bf16=not args.no_bf16,
                                  cpu_bf16=args.cpu_bf16, channels_last=args.channels_last)
                cfg.validate()  # before the fold's data is loaded
            except TrainingError as e:
                raise SystemExit(f"error: {e}") from None
            td = build_train_data(f"lfw:fold={k}", pack=args.pack, data_root=args.data_root, device=dev,
                                  seed=args.seed + k)
            tr = Trainer(cfg, td, args.out / f"fold{k}", device=dev,
                         meta={"command": " ".join(sys.argv), "protocol": "lfw-view2-unrestricted"})
            last = args.out / f"fold{k}" / "last.pt"
            if last.is_file():
                try:
                    tr.resume(last)
                except (ModelError, TrainingError) as e:
                    raise SystemExit(f"fold {k}: cannot resume: {e}; delete {last} to train the fold again") from e
                print(f"fold {k}: resuming from step {tr.step} ({last})", flush=True)
            s = tr.fit()
            print(f"fold {k}: test acc {s['test']['acc_at_threshold']:.4f} (dev threshold), "
                  f"dev acc {s['dev']['best_acc']:.4f}, {s['steps']} steps, "
                  f"{s['samples_per_second']:.0f} samples/s, "
                  f"{time.time() - t0:.0f} s", flush=True)
    if len(folds) < 2:
        print("one fold trained: the 10-fold table needs at least two (--aggregate-only later)", flush=True)
        return
    res = aggregate(args.out, folds, args.stored)
    write_json(args.out / "view2.json", res)
    print(json.dumps(res, indent=2, default=float))


if __name__ == "__main__":
    main()
