"""Average linkage on S-normalised distances against average linkage on distances, on development people.

docs/system.md, "Clustering on distances normalised by a background": each pair's distance d becomes
``((d - mu_a) / sd_a + (d - mu_b) / sd_b) / 2`` with mu, sd the mean and deviation of each face's ``--top``
nearest distances to a background of ``--cohort-people`` centroids (scripts/cohort_rule_sim.py). Both
methods are scored as stage ``cluster_dev`` scores a cut (scripts/choose_cluster_threshold.py: BCubed F over
all development faces and over ``--rounds`` random groups of ``--group-size`` people, averaged), each at the
best cut of its own grid.

    python scripts/cluster_snorm_dev.py -e src/iznet/assets/embedder.pt \\
        --pack collection/v2/dev_detector_aligned112.pt --cohort-pack collection/v2/train_aligned112.pt \\
        --exclude collection/v2/dev_people.txt --json runs/cluster_snorm/dev.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cohort_rule_sim import cohort_centroids, top_stats  # noqa: E402

from iznet.eval.clustering import clustering_scores  # noqa: E402
from iznet.recognize.prototypes import pairwise_distances  # noqa: E402


def snorm_matrix(D: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """S-normalised distances of a square distance matrix, zero diagonal."""
    Z = 0.5 * ((D - mu[:, None]) / sd[:, None] + (D - mu[None, :]) / sd[None, :])
    np.fill_diagonal(Z, 0.0)
    return Z


def f_at_cuts(M: np.ndarray, names: np.ndarray, cuts: np.ndarray, shift: float) -> list[float]:
    """BCubed F of average-linkage clusters of the square matrix M (shifted to be >= 0) at each cut."""
    A = np.maximum(M + shift, 0.0)
    A = 0.5 * (A + A.T)
    np.fill_diagonal(A, 0.0)
    Z = linkage(squareform(A, checks=False), method="average")
    return [clustering_scores(fcluster(Z, t=float(c) + shift, criterion="distance"), names)["bcubed_f"]
            for c in cuts]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-e", "--embedder", required=True)
    ap.add_argument("--pack", type=Path, required=True)
    ap.add_argument("--cohort-pack", type=Path, required=True)
    ap.add_argument("--exclude", type=Path, default=None)
    ap.add_argument("--cohort-people", type=int, default=2000)
    ap.add_argument("--top", type=int, default=50)
    ap.add_argument("--group-size", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(1)
    from iznet.data.pack import load_pack
    from iznet.recognize.embedder import load_embedder

    embedder = load_embedder(a.embedder, device="cpu")
    p = load_pack(a.pack)
    names = np.array([p.classes[int(lab)] for lab in p.labels])
    E = np.asarray(embedder.embed(p.decode()), dtype=np.float64)
    cohort = cohort_centroids(a.cohort_pack, a.exclude, a.cohort_people, 5, embedder, 0)
    _, mu, sd = top_stats(E, cohort, a.top)
    D = pairwise_distances(E, E)
    methods = {"distance": (D, np.round(np.arange(0.5, 1.3001, 0.025), 4), 0.0),
               "snorm": (snorm_matrix(D, mu, sd), np.round(np.arange(-8.0, 2.001, 0.1), 2), 10.0)}
    rng = np.random.default_rng(0)
    people = np.unique(names)
    groups = [np.flatnonzero(np.isin(names, rng.choice(people, size=min(a.group_size, len(people)), replace=False)))
              for _ in range(a.rounds)]
    out = {"args": {k: str(v) for k, v in vars(a).items()}, "faces": int(len(names)), "people": int(len(people))}
    for name, (M, cuts, shift) in methods.items():
        whole = np.array(f_at_cuts(M, names, cuts, shift))
        grp = np.mean([f_at_cuts(M[np.ix_(g, g)], names[g], cuts, shift) for g in groups], axis=0)
        score = (whole + grp) / 2
        b = int(np.argmax(score))
        out[name] = {"cut": float(cuts[b]), "bcubed_f_all": float(whole[b]), "bcubed_f_groups": float(grp[b]),
                     "score": float(score[b])}
        print(f"{name}: cut {cuts[b]}: BCubed F all {whole[b]:.3f}, groups of {a.group_size} {grp[b]:.3f}, "
              f"score {score[b]:.3f}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
