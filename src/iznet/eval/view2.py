"""LFW View 2, "unrestricted, no outside data", scored: one model per fold, each trained only on the people
outside its fold (:func:`iznet.engine.view2.train_folds`), and the 10-fold table of a run or of an ensemble.

* :func:`aggregate`: a run's table (each fold's threshold chosen on the other nine folds' distances; mean ±
  std, AUC, VAL@FAR=1e-3, EER over the 6,000 pairs), read from ``OUT/fold*/test_pairs.npz``; it also writes
  ``OUT/view2_distances.npz``, a small file that keeps the result once the run folder is gone.
* :func:`fuse`: an ensemble of runs: per pair the root mean square of the runs' distances (the distance of
  the members' concatenated unit embeddings scaled by ``1/sqrt(n)``, :class:`iznet.recognize.EnsembleEmbedder`);
  every member was trained without that fold's people, so the protocol holds.
* :func:`ensemble_sizes`: every subset of the runs fused, summarised per ensemble size, and what each run adds.

``iznet eval view2`` and ``scripts/lfw_view2.py`` call these.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from iznet.errors import DataError


def fold_distances(out: Path, folds: list[int], stored: Path | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The test distances, same-person flags and fold ids of a run's folds, in fold order.

    ``out`` is a run folder (``fold*/test_pairs.npz``) or a ``view2_distances.npz`` file of one. With
    ``stored`` (a ``view2_distances.npz`` of the same run), folds that have no ``test_pairs.npz`` in the
    folder are read from that file: a run whose first folds were trained in a checkout that is gone.
    """
    if out.suffix == ".npz":
        return stored_distances(out, folds)
    dists, sames, fold_ids = [], [], []
    for k in folds:
        f = out / f"fold{k}" / "test_pairs.npz"
        if f.is_file():
            z = np.load(f)
            d, s = z["dist"], z["same"].astype(bool)
        elif stored is not None:
            d, s, _ = stored_distances(stored, [k])
        else:
            raise DataError(f"missing {f}: train fold {k} first (or name the run's stored distances with --stored)")
        dists.append(d); sames.append(s); fold_ids.append(np.full(len(d), k))
    return np.concatenate(dists), np.concatenate(sames), np.concatenate(fold_ids)


def stored_distances(f: Path, folds: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The folds' rows of a ``view2_distances.npz`` file, in the order of ``folds``."""
    if not f.is_file():
        raise DataError(f"missing {f}: give a run's view2_distances.npz (docs/results/view2_runs/) or its folder")
    try:
        z = np.load(f)
        dist, same, fold = z["dist"], z["same"].astype(bool), z["fold"]
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{f}: not a View 2 distances file (arrays dist, same, fold), as --aggregate-only "
                         f"writes to OUT/view2_distances.npz: {e}") from None
    if not len(dist) == len(same) == len(fold):
        raise DataError(f"{f}: dist, same and fold differ in length ({len(dist)}, {len(same)}, {len(fold)})")
    missing = [k for k in folds if not (fold == k).any()]
    if missing:
        raise DataError(f"{f} holds no pairs of fold(s) {missing}; it has folds {sorted(set(fold.tolist()))}")
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
    """The 10-fold table of a run; also keeps its distances in ``OUT/view2_distances.npz`` (its path in
    ``distances_file``: keep it, e.g. in ``docs/results/view2_runs/``)."""
    from iznet.eval.verification import verification_report

    dist, same, fold = fold_distances(out, folds, stored)
    res = verification_report(dist, same, fold, protocol="lfw-view2-unrestricted").to_dict()
    res["training"] = [fold_training(out / f"fold{k}", k) for k in folds]
    res["distances_file"] = str(save_distances(out, dist, same, fold))
    return res


def fusable(runs: list[Path], folds: list[int]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Each run's (dist, same, fold) over ``folds``, checked to be the same test pairs."""
    if len(runs) < 2:
        raise DataError(f"fusing needs two or more runs (--fuse), got {len(runs)}")
    parts = [fold_distances(r, folds) for r in runs]
    for r, (_, same, _) in zip(runs[1:], parts[1:]):
        if not np.array_equal(same, parts[0][1]):
            raise DataError(f"{r}: its test pairs differ from {runs[0]}'s; fuse runs of the same View 2 folds")
    return parts


def ensemble_sizes(runs: list[Path], folds: list[int]) -> dict:
    """How an ensemble's 10-fold accuracy grows with its size: every subset of the runs, fused as by
    :func:`fuse`, summarised per size (mean, min and max over the C(n, m) subsets of m runs).

    One ensemble's score mixes the effect of its size with the luck of which runs it holds; the mean
    over all subsets of a size removes the second, so the gain of one more member can be read off.
    """
    from itertools import combinations

    from iznet.eval.verification import verification_report

    parts = fusable(runs, folds)
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

    parts = fusable(runs, folds)
    dist = np.sqrt(np.mean([d ** 2 for d, _, _ in parts], axis=0))
    res = verification_report(dist, parts[0][1], parts[0][2], protocol="lfw-view2-unrestricted-ensemble").to_dict()
    res["members"] = []
    for r, (d, same, fold) in zip(runs, parts):
        one = verification_report(d, same, fold, protocol="lfw-view2-unrestricted").to_dict()
        res["members"].append({"run": str(r), **{k: one[k] for k in ("accuracy", "accuracy_std", "auc", "eer", "val")},
                               "training": [fold_training(r / f"fold{k}", k) for k in folds]})
    return res


def fold_training(run: Path, k: int) -> dict:
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
