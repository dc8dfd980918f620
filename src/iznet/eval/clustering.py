"""How well a clustering of faces matches their identities: pairwise and BCubed precision, recall and F.

- **Pairwise**: over all pairs of faces, precision = share of same-cluster pairs that are the same person,
  recall = share of same-person pairs put in one cluster, F = their harmonic mean.
- **BCubed** (Bagga & Baldwin 1998): per face, precision = share of its cluster that is its person, recall =
  share of its person that is in its cluster; both averaged over faces.

Unsorted faces (label -1) count as clusters of their own (a singleton is never wrong, and never recalls).
Counts come from the contingency table, so 100,000 faces cost nothing; tests check them against loops.
"""

from __future__ import annotations

import numpy as np


def _contingency(pred, true) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred).copy()
    true = np.asarray(true)
    if pred.shape != true.shape or pred.ndim != 1:
        raise ValueError(f"pred and true must be 1-d of one length, got {pred.shape} and {true.shape}")
    lone = pred == -1
    if lone.any():  # unsorted faces: singleton clusters with fresh ids
        pred = pred.astype(np.int64)
        pred[lone] = pred.max(initial=-1) + 1 + np.arange(int(lone.sum()))
    _, p = np.unique(pred, return_inverse=True)
    _, t = np.unique(true, return_inverse=True)
    table = np.zeros((p.max() + 1, t.max() + 1), dtype=np.int64)
    np.add.at(table, (p, t), 1)
    return table, np.stack([p, t], 1)


def clustering_scores(pred, true) -> dict[str, float]:
    """Pairwise and BCubed precision / recall / F of cluster labels ``pred`` against identities ``true``."""
    table, pt = _contingency(pred, true)
    n = int(table.sum())
    pairs = lambda x: (x * (x - 1) // 2).sum()  # noqa: E731
    tp = pairs(table)
    pred_pairs, true_pairs = pairs(table.sum(1)), pairs(table.sum(0))
    prec = tp / pred_pairs if pred_pairs else 1.0
    rec = tp / true_pairs if true_pairs else 1.0
    cell = table[pt[:, 0], pt[:, 1]]
    b_prec = float(np.mean(cell / table.sum(1)[pt[:, 0]])) if n else 1.0
    b_rec = float(np.mean(cell / table.sum(0)[pt[:, 1]])) if n else 1.0

    def f(a, b):
        return 2 * a * b / (a + b) if a + b > 0 else 0.0

    return {"faces": n, "clusters": int((table.sum(1) > 1).sum()), "people": int(table.shape[1]),
            "pairwise_precision": float(prec), "pairwise_recall": float(rec), "pairwise_f": float(f(prec, rec)),
            "bcubed_precision": b_prec, "bcubed_recall": b_rec, "bcubed_f": float(f(b_prec, b_rec))}
