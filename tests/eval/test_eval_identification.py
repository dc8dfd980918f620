"""Identification on synthetic clusters with known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from iznet.eval.identification import (MetricInputError, build_prototypes, centroid, closed_set_identification,
                                       first_k_split, medoid_index, open_set_rejection, threshold_for_far)


def _clusters(n_people=6, per=8, d=16, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    lab = np.repeat(np.arange(n_people), per)
    emb = centres[lab] + spread * rng.normal(size=(lab.size, d))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    order = rng.permutation(lab.size)  # interleave people to test "first k in order"
    return emb[order].astype(np.float32), lab[order]


def test_first_k_split_keeps_order():
    lab = np.array([3, 1, 3, 3, 1, 2, 1, 3])
    enrol, probe = first_k_split(lab, 2)
    assert enrol.tolist() == [0, 1, 2, 4, 5]
    assert probe.tolist() == [3, 6, 7]


def test_well_separated_rank1_is_one():
    emb, lab = _clusters()
    r = closed_set_identification(emb, lab, k=3)
    assert r["rank1"] == {"nn": 1.0, "centroid": 1.0, "medoid": 1.0}
    assert r["n_enrolled"] == 18 and r["n_probes"] == 30 and r["people_without_probes"] == 0


def test_hand_case_where_prototypes_disagree():
    # person 0 enrolled at x=0, 0, 10 (medoid 0, centroid 3.33); person 1 enrolled at x=6; probe of person 0 at x=5.
    emb = np.array([[0.0], [0.0], [10.0], [6.0], [5.0]])
    lab = np.array([0, 0, 0, 1, 0])
    r = closed_set_identification(emb, lab, k=3)
    # nn: nearest is 6 (person 1) -> wrong; medoid 0 vs 6 -> wrong; centroid renormalised of mean 3.33 -> +1, wrong too
    assert r["rank1"]["nn"] == 0.0 and r["rank1"]["medoid"] == 0.0
    emb2 = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0], [0.6, 0.8]])
    r2 = closed_set_identification(emb2, lab, k=3)
    assert r2["rank1"]["nn"] == 1.0  # (0,1) is at 0.89, (1,0) at 0.89, (-1,0) at 1.79 -> person 0


def test_medoid_matches_brute_force():
    rng = np.random.default_rng(4)
    for _ in range(20):
        e = rng.normal(size=(7, 5))
        sums = [sum(np.linalg.norm(e[i] - e[j]) for j in range(7)) for i in range(7)]
        assert medoid_index(e) == int(np.argmin(sums))


def test_centroid_is_renormalised_mean():
    e = np.array([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(centroid(e), [np.sqrt(0.5), np.sqrt(0.5)])
    protos, plab = build_prototypes(e, [5, 5], "centroid")
    assert plab.tolist() == [5] and np.linalg.norm(protos[0]) == pytest.approx(1.0)


def test_threshold_for_far():
    imp = np.array([0.5, 0.6, 0.6, 0.9])
    assert threshold_for_far(imp, 0.25) == 0.5
    assert threshold_for_far(imp, 0.5) == 0.5  # a 0.6 would accept three (ties)
    assert threshold_for_far(imp, 0.75) == 0.6
    assert threshold_for_far(imp, 0.0) < 0.5


def test_open_set_on_separated_clusters():
    emb, lab = _clusters(n_people=10, per=10, d=32, spread=0.05, seed=1)
    r = open_set_rejection(emb, lab, k=4, far=1e-2, seed=0)
    assert r["n_known_people"] == 5 and r["n_unknown_people"] == 5
    assert set(r["known"]).isdisjoint(r["unknown"])
    assert r["gallery_far"] <= 1e-2
    # the threshold sits at the low edge of the impostor distances, so a stranger may fall under it
    assert r["strangers_rejected"] >= 0.5
    assert r["known_accepted"] == 1.0 and r["known_accepted_correct"] == 1.0
    assert r["n_stranger_probes"] == 50 and r["n_known_probes"] == 30


def test_open_set_hand_case_strangers_far_away():
    rng = np.random.default_rng(0)
    base = np.array([[1.0, 0.0], [0.0, 1.0], [-np.sqrt(0.5), -np.sqrt(0.5)]])
    lab = np.repeat([0, 1, 2], 5)
    emb = base[lab] + 0.01 * rng.normal(size=(15, 2))
    r = open_set_rejection(emb, lab, k=3, far=0.0, known=[0, 1])
    assert r["gallery_far"] == 0.0 and r["gallery_tar"] == 1.0
    assert 1.3 < r["threshold"] < 1.42  # just under the impostor distance sqrt(2)
    assert r["strangers_rejected"] == 1.0  # strangers are ~1.85 away
    assert r["known_accepted_correct"] == 1.0 and r["n_known_probes"] == 4


def test_open_set_brute_force_counts():
    emb, lab = _clusters(n_people=6, per=6, d=8, spread=0.6, seed=2)  # overlapping: non-trivial numbers
    known = [0, 1, 2]
    r = open_set_rejection(emb, lab, k=2, far=0.1, known=known)
    t = r["threshold"]
    enrol = [i for i in range(lab.size) if lab[i] in known and list(lab[:i]).count(lab[i]) < 2]
    imp = [np.linalg.norm(emb[a] - emb[b]) for a, b in itertools.combinations(enrol, 2) if lab[a] != lab[b]]
    assert np.mean(np.array(imp) <= t) <= 0.1
    strangers = [i for i in range(lab.size) if lab[i] not in known]
    rej = np.mean([min(np.linalg.norm(emb[s] - emb[e]) for e in enrol) > t for s in strangers])
    assert r["strangers_rejected"] == pytest.approx(rej)


def test_bad_inputs():
    with pytest.raises(MetricInputError, match="labels"):
        closed_set_identification(np.zeros((3, 2)), [0, 1], k=1)
    with pytest.raises(MetricInputError, match="no probes"):
        closed_set_identification(np.eye(2), [0, 1], k=1)
    with pytest.raises(MetricInputError, match="prototype"):
        build_prototypes(np.eye(2), [0, 1], "mean")
