"""Choose an embedder's clustering threshold on development people (`iznet cluster`'s default cut).

`iznet cluster` cuts average-linkage clusters at a distance threshold. The unknown-face threshold (at most
1% of strangers accepted) is a cautious cut for naming, not necessarily the best one for grouping. This
scores BCubed F (iznet.eval.clustering) of the agglomerative method at every threshold of a grid on the
development people's faces as the system cuts them (stage `devcrops` writes the pack): all of them at once,
and random groups of `--group-size` people (a photo collection of a family or a band), and chooses the
threshold with the best mean of the two. No test person is involved.

    OMP_NUM_THREADS=1 python scripts/choose_cluster_threshold.py -e src/iznet/assets/embedder.pt \\
        --pack collection/v2/dev_detector_aligned112.pt --json runs/x/cluster_dev.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def grid_scores(E: np.ndarray, names: np.ndarray, thresholds: np.ndarray) -> list[float]:
    """BCubed F of average-linkage clusters of ``E`` at each threshold (one linkage, many cuts)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    from iznet.eval.clustering import clustering_scores

    Z = linkage(E, method="average", metric="euclidean")
    return [clustering_scores(fcluster(Z, t=float(t), criterion="distance"), names)["bcubed_f"] for t in thresholds]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-e", "--embedder", required=True)
    ap.add_argument("--pack", type=Path, required=True, help="development people's faces (stage devcrops)")
    ap.add_argument("--grid", default="0.5:1.3:0.025", help="start:stop:step of the thresholds")
    ap.add_argument("--group-size", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calibration", type=Path, default=None,
                    help="the run's calibration.json (stage calibrate): the unknown-face threshold shown beside the "
                         "chosen cut; without it, the embedder's own (a run's model.pt carries its --init's)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    if a.calibration is not None and not a.calibration.is_file():
        ap.error(f"--calibration {a.calibration}: no such file (stage calibrate writes it)")

    from iznet.data.pack import load_pack
    from iznet.recognize.embedder import load_embedder

    lo, hi, step = (float(x) for x in a.grid.split(":"))
    thresholds = np.round(np.arange(lo, hi + step / 2, step), 4)
    p = load_pack(a.pack)
    names = np.array([p.classes[int(lab)] for lab in p.labels])
    embedder = load_embedder(a.embedder, device="cpu")
    E = np.asarray(embedder.embed(p.decode()), dtype=np.float64)
    people = np.unique(names)
    whole = grid_scores(E, names, thresholds)
    rng = np.random.default_rng(a.seed)
    groups = []
    for _ in range(a.rounds):
        pick = rng.choice(people, size=min(a.group_size, len(people)), replace=False)
        rows = np.flatnonzero(np.isin(names, pick))
        groups.append(grid_scores(E[rows], names[rows], thresholds))
    group_mean = np.mean(groups, axis=0)
    score = (np.asarray(whole) + group_mean) / 2
    best = int(np.argmax(score))
    out = {"embedder": a.embedder, "pack": str(a.pack), "faces": int(len(names)), "people": int(len(people)),
           "group_size": a.group_size, "rounds": a.rounds, "seed": a.seed,
           "rows": [{"threshold": float(t), "bcubed_f_all": float(w), "bcubed_f_groups": float(g), "score": float(s)}
                    for t, w, g, s in zip(thresholds, whole, group_mean, score)],
           "chosen": {"threshold": float(thresholds[best]), "bcubed_f_all": float(whole[best]),
                      "bcubed_f_groups": float(group_mean[best])}}
    if a.calibration is not None:
        import json

        cal, source = json.loads(a.calibration.read_text()), str(a.calibration)
    else:
        cal = getattr(embedder, "calibration", None) or {}
        source = f"{a.embedder}: {cal.get('source', 'its calibration')}"
    if isinstance(cal.get("threshold"), (int, float)):
        t0 = float(cal["threshold"])
        out["unknown_face_threshold"] = {"threshold": t0, "source": source,
                                         "bcubed_f_all": grid_scores(E, names, np.array([t0]))[0]}
    for r in out["rows"]:
        print(f"{r['threshold']:.3f}  all {r['bcubed_f_all']:.3f}  groups of {a.group_size} {r['bcubed_f_groups']:.3f}")
    c = out["chosen"]
    print(f"chosen {c['threshold']:.3f}: BCubed F {c['bcubed_f_all']:.3f} (all {len(people)} people), "
          f"{c['bcubed_f_groups']:.3f} (groups of {a.group_size})"
          + (f"; the unknown-face threshold {out['unknown_face_threshold']['threshold']:.3f} gives "
             f"{out['unknown_face_threshold']['bcubed_f_all']:.3f} (all)" if "unknown_face_threshold" in out else ""))
    if a.json:
        from iznet.utils.io import write_json

        a.json.parent.mkdir(parents=True, exist_ok=True)
        write_json(a.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
