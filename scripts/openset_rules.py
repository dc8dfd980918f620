"""Right / wrong / unknown shares of the unknown-face rules (iznet.eval.openset) on simulated galleries.

Faces come from a pack: ``--part dev`` takes the development people of a training run's pack (the people
``iznet train`` held out of that run: where settings are chosen), ``--part all`` every person of a pack of
people the model never saw (e.g. the collection's held-out pack, or glint24). ``--grid`` scores every
(far, margin) pair given and marks the best one that keeps wrong names at most ``--max-wrong`` and named
strangers at most ``--max-strangers-named``.

    python scripts/openset_rules.py -e runs/x/model.pt --pack collection/v2/train_box112.pt --part dev \\
        --threshold 0.9 --far 0.01,0.05,0.1 --margin 0,0.05,0.1,0.15 --json runs/x/openset_dev.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from iznet.eval.openset import choose_rule, rule_grid
from iznet.recognize.prototypes import DEFAULT_METHOD


def faces(pack: Path, part: str, embedder: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from iznet.data.pack import load_pack
    from iznet.recognize.embedder import load_embedder

    p = load_pack(pack)
    names = np.array([p.classes[int(lab)] for lab in p.labels])
    if part == "dev":
        from iznet.engine.data import build_train_data

        td = build_train_data(str(pack), seed=seed)
        idx = np.unique(np.concatenate([td.dev_pairs.idx1, td.dev_pairs.idx2]))
        dev_people = set(names[idx].tolist())
        rows = np.flatnonzero(np.isin(names, list(dev_people)))
        images = td.images[torch.as_tensor(rows)]
    else:
        rows = np.arange(len(names))
        images = p.decode()
    emb = load_embedder(embedder, device="cpu").embed(images)
    return np.asarray(emb, dtype=np.float64), names[rows]


def sizes_list(text: str) -> list[int]:
    """``"12,48"`` -> ``[12, 48]`` (argparse reports anything else as a bad --group-size)."""
    sizes = [int(x) for x in text.split(",")]
    if any(n < 2 for n in sizes):
        raise ValueError(text)
    return sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-e", "--embedder", required=True)
    ap.add_argument("--pack", type=Path, required=True)
    ap.add_argument("--part", choices=("dev", "all"), default="all")
    ap.add_argument("--seed", type=int, default=0, help="the training run's seed (--part dev)")
    ap.add_argument("--threshold", type=float, required=True, help="the embedder's calibrated threshold")
    ap.add_argument("--far", default="0.05", help="gallery rule: comma-separated values")
    ap.add_argument("--margin", default="0.1", help="margin rule: comma-separated values")
    ap.add_argument("--group-size", type=sizes_list, default=[12],
                    help="people per gallery; comma-separated sizes: the chosen rule must keep its limits at every "
                    "size (right names averaged over the sizes)")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--strangers", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--max-wrong", type=float, default=0.03)
    ap.add_argument("--max-strangers-named", type=float, default=0.1)
    ap.add_argument("--method", default=DEFAULT_METHOD, choices=("medoid", "centroid"),
                    help="prototypes (default: the pipeline's, %(default)s)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(1)
    emb, labels = faces(a.pack, a.part, a.embedder, a.seed)
    sizes = a.group_size
    try:
        rows = rule_grid(emb, labels, a.threshold, [float(x) for x in a.far.split(",")],
                         [float(x) for x in a.margin.split(",")], sizes, k=a.k, strangers=a.strangers,
                         rounds=a.rounds, method=a.method)
    except ValueError as e:  # too few people for a gallery size, or a bad --far / --margin value
        ap.error(str(e))
    best = choose_rule(rows, a.max_wrong, a.max_strangers_named)
    print(f"{a.pack} ({a.part}): {len(set(labels.tolist()))} people, {len(labels)} faces; threshold {a.threshold}; "
          f"{a.rounds} galleries of {','.join(map(str, sizes))} people x {a.k} photos + {a.strangers} strangers"
          + ("" if len(sizes) == 1 else "; right: the mean over the sizes, wrong and strangers named: the worst"))
    print("| rule | far | margin | right | wrong | unknown | strangers rejected |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        mark = " **chosen**" if r is best else ""
        print(f"| {r['rule']}{mark} | {r['far'] if r['far'] is not None else ''} | "
              f"{r['margin'] if r['margin'] is not None else ''} | {100 * r['right']:.1f}% | {100 * r['wrong']:.1f}% | "
              f"{100 * r['unknown']:.1f}% | {100 * r['strangers_rejected']:.1f}% |")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "people": len(set(labels)),
                                      "faces": len(labels), "rows": rows, "chosen": best}, indent=1) + "\n")


if __name__ == "__main__":
    main()
