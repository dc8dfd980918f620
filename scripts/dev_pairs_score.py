"""Score embedders (ensembles too) on the development pairs of a training run's data.

A run of ``iznet train --data SPEC`` holds out a share of its people and scores its model on pairs of
them (``summary.json`` -> ``dev``). This script rebuilds the same pairs (same data spec, pack and seed)
and scores any embedders on them (a run of a collection pack with ``--dev-people FILE``: pass the same file),
e.g. two shipped-model candidates and their ensemble:

    python scripts/dev_pairs_score.py --data lfw:all-except=George_W_Bush,Colin_Powell,Tony_Blair,Donald_Rumsfeld,Gerhard_Schroeder \\
        --pack packs/lfw112.pt runs/v3/model.pt runs/v5/model.pt runs/v3/model.pt+runs/v5/model.pt

Each embedder runs with flip TTA (as the trainer's evaluation does) unless ``--no-tta``; it prints the
best-threshold accuracy and the AUC of each.
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("embedders", nargs="+", help="embedder specs (checkpoints, 'a.pt+b.pt' ensembles, 'raw', ...)")
    ap.add_argument("--data", required=True, help="the training run's --data")
    ap.add_argument("--pack", default=None, help="the training run's --pack")
    ap.add_argument("--seed", type=int, default=0, help="the training run's --seed (it draws the development people)")
    ap.add_argument("--dev-people", default=None, help="the training run's --dev-people file (one name a line)")
    ap.add_argument("--no-tta", action="store_true")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    import torch

    from iznet.engine.data import build_train_data
    from iznet.errors import IznetError
    from iznet.eval.verification import auc, best_threshold
    from iznet.recognize.embedder import load_embedder

    try:
        dev = None
        if args.dev_people:
            from iznet.engine.data import read_people_list

            dev = read_people_list(args.dev_people)
        td = build_train_data(args.data, pack=args.pack, device=torch.device("cpu"), seed=args.seed, dev_people=dev)
        embedders = [load_embedder(e, device="cpu", tta=not args.no_tta) for e in args.embedders]
    except IznetError as e:
        raise SystemExit(f"error: {e}") from None
    ps = td.dev_pairs
    same = ps.same.astype(bool)
    uniq, inv = np.unique(np.concatenate([ps.idx1, ps.idx2]), return_inverse=True)
    n = len(ps.idx1)
    rows = []
    for spec, emb in zip(args.embedders, embedders):
        e = emb.embed(td.images[torch.as_tensor(uniq)])
        d = np.linalg.norm(e[inv[:n]] - e[inv[n:]], axis=1)
        thr, acc = best_threshold(d, same)
        rows.append({"embedder": spec, "dev_acc": acc, "dev_auc": auc(d, same), "threshold": thr})
        print(f"{spec}: dev acc {acc:.4f}, AUC {rows[-1]['dev_auc']:.4f} ({int(same.sum())} same, "
              f"{int((~same).sum())} different pairs)", flush=True)
    if args.json:
        from iznet.utils.io import write_json

        write_json(args.json, {"data": args.data, "seed": args.seed, "dev_people": args.dev_people,
                               "tta": not args.no_tta, "rows": rows})


if __name__ == "__main__":
    main()
