"""Face verification metrics on pair distances (smaller distance = more likely the same person).

Every function takes ``dist`` (N,) float distances and ``same`` (N,) booleans (True for a genuine
pair). A pair is predicted "same" when ``dist <= threshold``.

Conventions:
    * ``kfold_accuracy``: the threshold of fold k maximises accuracy on the other folds and is then
      applied to fold k (LFW View 2: ten folds, threshold from the nine others). Among thresholds of
      equal training accuracy the smallest is taken.
    * ``std`` is the sample standard deviation over folds (ddof=1); ``sem`` = std / sqrt(folds), the
      "standard error" the LFW results page prints next to each mean.
    * VAL at a FAR (FaceNet): the true-accept rate at the largest threshold whose false-accept rate is
      at most the target. No interpolation of the ROC, so the FAR reached on the pairs that set the
      threshold is never above target (on held-out pairs it can be).

>>> import numpy as np
>>> d = np.array([0.1, 0.2, 0.8, 0.9]); s = np.array([True, True, False, False])
>>> best_threshold(d, s)[1]
1.0
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from iznet.errors import IznetError


class MetricInputError(IznetError):
    """Distances and labels that cannot be scored (shape mismatch, NaN, one class missing)."""


def _check(dist, same, need_both: bool = True) -> tuple[np.ndarray, np.ndarray]:
    dist = np.asarray(dist, dtype=np.float64).reshape(-1)
    same = np.asarray(same).reshape(-1)
    if same.dtype != bool:
        if not np.isin(same, (0, 1)).all():
            raise MetricInputError("`same` must hold booleans or 0/1 values")
        same = same.astype(bool)
    if dist.shape != same.shape:
        raise MetricInputError(f"dist has {dist.size} values but same has {same.size}; pass one label per pair")
    if dist.size == 0:
        raise MetricInputError("no pairs to score")
    if not np.isfinite(dist).all():
        raise MetricInputError("distances contain NaN or inf; check the embeddings")
    if need_both and (same.all() or not same.any()):
        raise MetricInputError("need both genuine (same) and impostor (different) pairs to score")
    return dist, same


def _cuts(dist: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every distinct decision a threshold can make.

    Returns:
        thresholds (M+1,): ``nextafter(min, -inf)`` (accept nothing), then each distinct distance.
        tp (M+1,): genuine pairs accepted (``dist <= threshold``) at each threshold.
        fp (M+1,): impostor pairs accepted at each threshold.
    """
    uniq, inverse = np.unique(dist, return_inverse=True)
    tp = np.concatenate([[0], np.cumsum(np.bincount(inverse, weights=same, minlength=uniq.size))])
    fp = np.concatenate([[0], np.cumsum(np.bincount(inverse, weights=~same, minlength=uniq.size))])
    thr = np.concatenate([[np.nextafter(uniq[0], -np.inf)], uniq])
    return thr, tp, fp


def best_threshold(dist, same) -> tuple[float, float]:
    """Threshold that maximises accuracy on these pairs (ties: the smallest).

    The returned threshold lies halfway between the last accepted and the first rejected distance,
    so it generalises symmetrically to unseen pairs.

    Args:
        dist: (N,) distances.
        same: (N,) True for genuine pairs.

    Returns:
        (threshold, accuracy on these pairs).
    """
    dist, same = _check(dist, same, need_both=False)
    thr, tp, fp = _cuts(dist, same)
    n_neg = int((~same).sum())
    correct = tp + (n_neg - fp)
    i = int(np.argmax(correct))  # first maximum = smallest threshold
    if i == 0:
        t = float(thr[1]) - 0.5 * _gap(thr[1:])
    elif i == thr.size - 1:
        t = float(thr[i]) + 0.5 * _gap(thr[1:])
    else:
        t = 0.5 * float(thr[i] + thr[i + 1])
    return t, float(correct[i]) / dist.size


def _gap(uniq: np.ndarray) -> float:
    """Typical spacing of the distances, to place an outer threshold just beyond them."""
    return float(np.min(np.diff(uniq))) if uniq.size > 1 else 1e-6


def accuracy_at(dist, same, threshold: float) -> float:
    """Share of pairs classified correctly with ``dist <= threshold`` meaning "same"."""
    dist, same = _check(dist, same, need_both=False)
    return float(np.mean((dist <= threshold) == same))


def _fold_ids(folds, n: int) -> np.ndarray:
    """An int number of contiguous equal folds, or one fold id per pair."""
    if np.isscalar(folds):
        k = int(folds)
        if k < 2 or k > n:
            raise MetricInputError(f"folds={k}: need 2 <= folds <= number of pairs ({n})")
        return np.minimum(np.arange(n) * k // n, k - 1)
    ids = np.asarray(folds).reshape(-1)
    if ids.size != n:
        raise MetricInputError(f"folds has {ids.size} ids but there are {n} pairs; give one fold id per pair")
    if np.unique(ids).size < 2:
        raise MetricInputError("need at least two folds")
    return ids


def kfold_accuracy(dist, same, folds: int | Sequence[int] | np.ndarray = 10) -> dict[str, Any]:
    """K-fold verification accuracy with the threshold chosen on the other folds.

    Args:
        dist: (N,) distances.
        same: (N,) True for genuine pairs.
        folds: number of contiguous equal folds (LFW ``pairs.txt`` order: 10), or (N,) fold ids.

    Returns:
        dict with ``accuracy`` (per fold), ``thresholds`` (per fold), ``mean``, ``std`` (ddof=1),
        ``sem`` (std / sqrt(folds)) and ``folds``.
    """
    dist, same = _check(dist, same)
    ids = _fold_ids(folds, dist.size)
    accs, thrs = [], []
    for f in np.unique(ids):
        test = ids == f
        t, _ = best_threshold(dist[~test], same[~test])
        thrs.append(t)
        accs.append(accuracy_at(dist[test], same[test], t))
    return {"folds": len(accs), "accuracy": accs, "thresholds": thrs, **_summary(accs)}


def _summary(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    std = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
    return {"mean": float(v.mean()), "std": std, "sem": std / float(np.sqrt(v.size))}


def roc(dist, same) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve over every distinct threshold.

    Returns:
        far (M+1,), tar (M+1,), thresholds (M+1,), ordered by increasing threshold; the first point
        accepts nothing (far = tar = 0), the last accepts everything (far = tar = 1).
    """
    dist, same = _check(dist, same)
    thr, tp, fp = _cuts(dist, same)
    return fp / (~same).sum(), tp / same.sum(), thr


def auc(dist, same) -> float:
    """Area under the ROC curve (trapezoids; a tie counts half, as in ``roc_auc_score``)."""
    far, tar, _ = roc(dist, same)
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2.0))


def val_at_far(dist, same, far: float = 1e-3) -> dict[str, float]:
    """FaceNet's VAL: true-accept rate at the largest threshold with false-accept rate <= ``far``.

    The threshold returned lies halfway between the last accepted and the first rejected distance.

    Returns:
        dict with ``val`` (TAR), ``far`` (the FAR actually reached, <= target), ``threshold`` and
        ``target_far``.
    """
    if not 0.0 <= far <= 1.0:
        raise MetricInputError(f"far={far} must lie in [0, 1]")
    fars, tars, thr = roc(dist, same)
    i = int(np.nonzero(fars <= far + 1e-12)[0][-1])
    # halfway to the next distance: the same pairs are accepted, and held-out pairs see a fair margin
    t = float(thr[i]) if i in (0, thr.size - 1) else 0.5 * float(thr[i] + thr[i + 1])
    return {"val": float(tars[i]), "far": float(fars[i]), "threshold": t, "target_far": float(far)}


def kfold_val_at_far(dist, same, folds: int | Sequence[int] | np.ndarray = 10, far: float = 1e-3) -> dict[str, Any]:
    """VAL at a target FAR, k-fold: threshold set on the other folds, TAR and FAR read on the held-out fold.

    Returns:
        dict with per-fold ``val``, ``far`` and ``thresholds``; ``mean``/``std``/``sem`` of VAL;
        ``far_mean``; ``target_far``.
    """
    dist, same = _check(dist, same)
    ids = _fold_ids(folds, dist.size)
    vals, fars, thrs = [], [], []
    for f in np.unique(ids):
        test = ids == f
        t = val_at_far(dist[~test], same[~test], far)["threshold"]
        acc = dist[test] <= t
        vals.append(float(acc[same[test]].mean()) if same[test].any() else float("nan"))
        fars.append(float(acc[~same[test]].mean()) if (~same[test]).any() else float("nan"))
        thrs.append(t)
    return {"target_far": float(far), "val": vals, "far": fars, "thresholds": thrs,
            "far_mean": float(np.nanmean(fars)), **_summary(vals)}


def eer(dist, same) -> dict[str, float]:
    """Equal error rate: where FAR = FRR (1 - TAR), linearly interpolated between ROC points.

    Returns:
        dict with ``eer`` and the interpolated ``threshold``.
    """
    fars, tars, thr = roc(dist, same)
    diff = fars - (1.0 - tars)  # rises from -1 to +1
    i = int(np.argmax(diff >= 0))
    if diff[i] == 0 or i == 0:
        return {"eer": float(fars[i]), "threshold": float(thr[i])}
    a = -diff[i - 1] / (diff[i] - diff[i - 1])
    return {"eer": float(fars[i - 1] + a * (fars[i] - fars[i - 1])),
            "threshold": float(thr[i - 1] + a * (thr[i] - thr[i - 1]))}


@dataclasses.dataclass
class VerificationResult:
    """Every verification number of one protocol run. Rates are fractions in [0, 1].

    Attributes:
        protocol: e.g. ``"lfw-view2"``.
        n_pairs: pairs scored.
        accuracy: mean accuracy (k-fold, or on the test pairs for a single split).
        accuracy_std: sample std over folds (0 for a single split).
        accuracy_sem: standard error of the mean (LFW results page convention).
        fold_accuracy: per-fold accuracies.
        thresholds: per-fold thresholds.
        auc: area under the ROC of all pairs pooled.
        eer: equal error rate of all pairs pooled.
        val: VAL at ``target_far`` on all pairs pooled, threshold chosen on the same pairs
            (single split: threshold chosen on the train pairs, read on the test pairs).
        val_far: the FAR reached by that threshold on the same pairs.
        val_kfold: VAL at ``target_far``, threshold from the other folds (mean).
        val_kfold_std: its std over folds.
        target_far: the FAR target of the VAL numbers.
        extra: anything else (embedder name, data, timings).
    """

    protocol: str
    n_pairs: int
    accuracy: float
    accuracy_std: float
    accuracy_sem: float
    fold_accuracy: list[float]
    thresholds: list[float]
    auc: float
    eer: float
    val: float
    val_far: float
    val_kfold: float | None
    val_kfold_std: float | None
    target_far: float
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def verification_report(dist, same, folds, *, protocol: str, far: float = 1e-3,
                        extra: dict[str, Any] | None = None) -> VerificationResult:
    """K-fold accuracy and VAL plus pooled AUC, EER and VAL in one result.

    Args:
        dist: (N,) distances.
        same: (N,) True for genuine pairs.
        folds: number of contiguous folds or (N,) fold ids.
        protocol: name stored in the result.
        far: target FAR of the VAL numbers.
    """
    acc = kfold_accuracy(dist, same, folds)
    kv = kfold_val_at_far(dist, same, folds, far)
    v = val_at_far(dist, same, far)
    return VerificationResult(
        protocol=protocol, n_pairs=int(np.size(dist)), accuracy=acc["mean"], accuracy_std=acc["std"],
        accuracy_sem=acc["sem"], fold_accuracy=acc["accuracy"], thresholds=acc["thresholds"],
        auc=auc(dist, same), eer=eer(dist, same)["eer"], val=v["val"], val_far=v["far"],
        val_kfold=kv["mean"], val_kfold_std=kv["std"], target_far=far, extra=dict(extra or {}))


def split_report(train_dist, train_same, test_dist, test_same, *, protocol: str, far: float = 1e-3,
                 extra: dict[str, Any] | None = None) -> VerificationResult:
    """One train/test split (LFW View 1): thresholds chosen on the train pairs, numbers on the test pairs.

    Accuracy and VAL use thresholds from the train pairs; AUC and EER are threshold-free, on test pairs.
    """
    t, _ = best_threshold(train_dist, train_same)
    test_dist, test_same = _check(test_dist, test_same)
    acc = accuracy_at(test_dist, test_same, t)
    vt = val_at_far(train_dist, train_same, far)["threshold"]
    accepted = test_dist <= vt
    return VerificationResult(
        protocol=protocol, n_pairs=int(test_dist.size), accuracy=acc, accuracy_std=0.0, accuracy_sem=0.0,
        fold_accuracy=[acc], thresholds=[t], auc=auc(test_dist, test_same), eer=eer(test_dist, test_same)["eer"],
        val=float(accepted[test_same].mean()), val_far=float(accepted[~test_same].mean()),
        val_kfold=None, val_kfold_std=None, target_far=far, extra=dict(extra or {}))
