"""Verification metrics: agreement with scikit-learn, hand-computed k-fold cases, limits."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from iznet.eval.verification import (MetricInputError, accuracy_at, auc, best_threshold, eer, kfold_accuracy,
                                     kfold_val_at_far, roc, split_report, val_at_far, verification_report)


def _random_pairs(n=400, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    same = rng.random(n) < 0.5
    dist = rng.normal(1.0, 0.3, n) - 0.4 * same
    if ties:
        dist = np.round(dist, 1)
    return dist, same


@pytest.mark.parametrize("ties", [False, True])
def test_roc_matches_sklearn(ties):
    dist, same = _random_pairs(ties=ties)
    far, tar, thr = roc(dist, same)
    fpr, tpr, sk_thr = roc_curve(same, -dist, drop_intermediate=False)
    np.testing.assert_allclose(far, fpr)
    np.testing.assert_allclose(tar, tpr)
    np.testing.assert_allclose(thr[1:], -sk_thr[1:])
    assert thr[0] < dist.min()
    assert auc(dist, same) == pytest.approx(roc_auc_score(same, -dist), abs=1e-12)


def test_best_threshold_hand_case():
    # sorted: 0.1 S, 0.2 S, 0.3 D, 0.4 S, 0.5 D, 0.6 D; best cuts: after 0.2 or after 0.4 -> 5/6; smallest wins
    dist = np.array([0.4, 0.1, 0.5, 0.2, 0.6, 0.3])
    same = np.array([1, 1, 0, 1, 0, 0], bool)
    t, acc = best_threshold(dist, same)
    assert acc == pytest.approx(5 / 6)
    assert t == pytest.approx(0.25)
    assert accuracy_at(dist, same, t) == pytest.approx(5 / 6)


def test_best_threshold_extremes():
    t, acc = best_threshold([0.5, 0.7], [False, False])
    assert acc == 1.0 and t < 0.5
    t, acc = best_threshold([0.5, 0.7], [True, True])
    assert acc == 1.0 and t > 0.7


def test_kfold_threshold_from_other_folds():
    # fold 0 alone would pick 0.45, but the threshold must come from fold 1 (0.25)
    dist = np.array([0.4, 0.5, 0.2, 0.3])
    same = np.array([1, 0, 1, 0], bool)
    r = kfold_accuracy(dist, same, folds=np.array([0, 0, 1, 1]))
    assert r["thresholds"] == pytest.approx([0.25, 0.45])
    # fold 0 with t=0.25: 0.4 S rejected (wrong), 0.5 D rejected (right) -> 0.5
    # fold 1 with t=0.45: 0.2 S accepted (right), 0.3 D accepted (wrong) -> 0.5
    assert r["accuracy"] == pytest.approx([0.5, 0.5])
    assert r["mean"] == pytest.approx(0.5) and r["std"] == pytest.approx(0.0)


def test_kfold_int_folds_are_contiguous():
    dist, same = _random_pairs(n=100, seed=3)
    a = kfold_accuracy(dist, same, folds=10)
    b = kfold_accuracy(dist, same, folds=np.repeat(np.arange(10), 10))
    assert a["accuracy"] == b["accuracy"]
    assert a["sem"] == pytest.approx(a["std"] / np.sqrt(10))
    assert a["std"] == pytest.approx(np.std(a["accuracy"], ddof=1))


def test_perfect_separation():
    rng = np.random.default_rng(1)
    same = np.tile([True, False], 300)
    dist = np.where(same, rng.uniform(0.0, 0.9, 600), rng.uniform(1.1, 2.0, 600))
    r = verification_report(dist, same, 10, protocol="t")
    assert r.accuracy == 1.0 and r.auc == 1.0 and r.eer == 0.0 and r.val == 1.0 and r.val_kfold == 1.0


def test_random_is_chance():
    rng = np.random.default_rng(2)
    same = rng.random(6000) < 0.5
    dist = rng.random(6000)
    r = verification_report(dist, same, 10, protocol="t")
    assert 0.46 < r.accuracy < 0.54
    assert 0.46 < r.auc < 0.54
    assert 0.45 < r.eer < 0.55
    assert r.val < 0.01


def test_val_at_far_hand_case():
    # 4 impostors at 0.3, 0.5, 0.7, 0.9; genuines at 0.1, 0.4, 0.6, 0.8
    dist = np.array([0.1, 0.4, 0.6, 0.8, 0.3, 0.5, 0.7, 0.9])
    same = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    v = val_at_far(dist, same, far=0.25)  # one impostor allowed: accept up to 0.4 (0.5 would be a 2nd)
    assert v["threshold"] == pytest.approx(0.45) and v["val"] == 0.5 and v["far"] == 0.25
    v = val_at_far(dist, same, far=0.0)
    assert v["threshold"] == pytest.approx(0.2) and v["val"] == 0.25 and v["far"] == 0.0


def test_kfold_val_reads_held_out_fold():
    dist = np.array([0.1, 0.4, 0.3, 0.5, 0.2, 0.6, 0.35, 0.7])
    same = np.array([1, 1, 0, 0, 1, 1, 0, 0], bool)
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    r = kfold_val_at_far(dist, same, folds, far=0.0)
    # fold 0: threshold from fold 1 at FAR 0: accept 0.2, reject 0.35 -> 0.275; fold 0 accepts 0.1 only
    # fold 1: threshold from fold 0: accept 0.1, reject 0.3 -> 0.2; fold 1 accepts 0.2 only
    assert r["thresholds"] == pytest.approx([0.275, 0.2])
    assert r["val"] == pytest.approx([0.5, 0.5]) and r["far"] == pytest.approx([0.0, 0.0])


def test_eer_hand_case_and_brute_force():
    dist = np.array([0.1, 0.2, 0.3, 0.4, 0.25, 0.5, 0.6, 0.7])
    same = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    # at t=0.25: FAR 1/4, FRR 2/4; at t=0.2: FAR 0, FRR 2/4; at t=0.3: FAR 1/4, FRR 1/4 -> EER 0.25
    assert eer(dist, same)["eer"] == pytest.approx(0.25)
    d, s = _random_pairs(n=2000, seed=5)
    far, tar, _ = roc(d, s)
    brute = min(max(f, 1 - t) for f, t in zip(far, tar, strict=True))
    e = eer(d, s)["eer"]
    assert abs(e - brute) < 2e-3


def test_split_report_uses_train_threshold():
    train_d, train_s = np.array([0.1, 0.2, 0.8, 0.9]), np.array([1, 1, 0, 0], bool)
    test_d, test_s = np.array([0.4, 0.6, 0.45, 0.7]), np.array([1, 1, 0, 0], bool)
    r = split_report(train_d, train_s, test_d, test_s, protocol="v1")
    assert r.thresholds == [pytest.approx(0.5)]
    assert r.accuracy == pytest.approx(0.5)  # 0.4 ok, 0.6 missed, 0.45 falsely accepted, 0.7 ok
    d = r.to_dict()
    assert d["protocol"] == "v1" and d["n_pairs"] == 4


def test_bad_inputs():
    with pytest.raises(MetricInputError, match="one label per pair"):
        kfold_accuracy([0.1, 0.2], [True], 2)
    with pytest.raises(MetricInputError, match="NaN"):
        auc([0.1, np.nan], [True, False])
    with pytest.raises(MetricInputError, match="both"):
        auc([0.1, 0.2], [True, True])
    with pytest.raises(MetricInputError, match="folds"):
        kfold_accuracy([0.1, 0.2, 0.3], [True, False, True], 1)
