"""Matcher: nearest person, unknown threshold, margins, several prototypes per person; threshold calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from iznet.errors import GalleryError
from iznet.recognize.gallery import Gallery, sha256_bytes
from iznet.recognize.matcher import Matcher, calibrate_threshold


def _brute(E, P, owner, names):
    """Per person min distance by plain loops."""
    out = np.full((len(E), len(names)), np.inf)
    for i, e in enumerate(E):
        for j, p in enumerate(P):
            out[i, owner[j]] = min(out[i, owner[j]], math.dist(e, p))
    return out


def test_nearest_threshold_and_margin():
    P = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    m = Matcher(P, ["ann", "bob", "cid"], threshold=1.0)
    a, b, c, d = m.match(np.array([[0.5, 0.0], [3.0, 1.0], [1.0, 0.0], [10.0, 0.0]]))
    assert (a.name, a.distance, a.second_name, a.second_distance, a.margin) == ("ann", 0.5, "bob", 2.5, 2.0)
    assert a.known
    # exactly at the threshold is accepted
    assert b.name == "bob" and b.distance == 1.0
    assert c.name == "ann" and c.margin == pytest.approx(1.0)
    # above the threshold: unknown, but the nearest person is still reported
    assert d.name == "unknown" and not d.known and d.nearest == "bob"
    assert d.distance == 7.0 and d.second_name == "ann" and d.second_distance == 10.0 and d.margin == 3.0


def test_no_threshold_is_closed_set():
    m = Matcher(np.eye(3), ["a", "b", "c"], threshold=None)
    res = m.match(np.array([[100.0, 0.0, 0.0]]))
    assert res[0].name == "a" and res[0].distance == pytest.approx(99.0)


def test_single_person_has_no_runner_up():
    m = Matcher(np.array([[1.0, 0.0]]), ["ann"], threshold=0.5)
    (r,) = m.match(np.array([0.0, 1.0]))  # one vector (D,) is accepted
    assert r.name == "unknown" and r.nearest == "ann"
    assert r.second_name is None and math.isinf(r.second_distance) and math.isinf(r.margin)
    assert r.to_dict() == {"name": "unknown", "distance": pytest.approx(math.sqrt(2)), "nearest": "ann",
                           "second_name": None, "second_distance": None, "margin": None}


@pytest.mark.parametrize("seed", range(3))
def test_kmeans_person_of_prototype_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    names = ["ann", "bob", "cid", "dan"]
    owner = np.array([2, 0, 1, 0, 3, 2, 0, 1])  # interleaved on purpose
    P = rng.normal(size=(len(owner), 5))
    E = rng.normal(size=(20, 5))
    m = Matcher(P, names, threshold=2.0, person_of_prototype=owner)
    ref = _brute(E, P, owner, names)
    np.testing.assert_allclose(m.person_distances(E), ref, rtol=1e-9, atol=1e-9)
    for r, row in zip(m.match(E), ref):
        order = np.argsort(row)
        assert r.nearest == names[order[0]]
        assert r.name == (names[order[0]] if row[order[0]] <= 2.0 else "unknown")
        assert r.distance == pytest.approx(row[order[0]])
        assert r.second_name == names[order[1]]
        assert r.margin == pytest.approx(row[order[1]] - row[order[0]])
    # the same matcher from repeated per-row names
    m2 = Matcher(P, [names[o] for o in owner], threshold=2.0)
    assert [r.name for r in m2.match(E)] == [r.name for r in m.match(E)]


def test_second_prototype_of_same_person_is_not_the_runner_up():
    # ann has two prototypes both closer than bob's: the runner-up must be bob, not ann again
    P = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 0.0]])
    m = Matcher(P, ["ann", "bob"], person_of_prototype=[0, 0, 1])
    (r,) = m.match(np.array([[0.1, 0.0]]))
    assert r.name == "ann" and r.distance == 0.0 and r.second_name == "bob" and r.second_distance == pytest.approx(4.9)


def test_bad_inputs():
    with pytest.raises(GalleryError, match="the gallery is empty: enrol people with `iznet enroll NAME IMAGES...`"):
        Matcher(np.zeros((0, 128)), [])
    with pytest.raises(GalleryError, match="one name per prototype"):
        Matcher(np.eye(3), ["a", "b"])
    with pytest.raises(GalleryError, match="no prototype for c"):
        Matcher(np.eye(2), ["a", "b", "c"], person_of_prototype=[0, 1])
    with pytest.raises(GalleryError, match="distinct"):
        Matcher(np.eye(2), ["a", "a"], person_of_prototype=[0, 1])
    with pytest.raises(GalleryError, match="finite"):
        Matcher(np.eye(2), ["a", "b"], threshold=float("nan"))
    m = Matcher(np.eye(2), ["a", "b"])
    with pytest.raises(GalleryError, match="do not fit the gallery's 2-d"):
        m.match(np.ones((1, 3)))
    assert m.match(np.zeros((0, 2))) == []


def test_from_gallery_uses_stored_threshold(tmp_path):
    tag = "toy@1"
    with Gallery(tmp_path / "g.db") as g:
        with pytest.raises(GalleryError, match="the gallery is empty"):
            Matcher.from_gallery(g, tag)
        g.enroll("ann", [("a.jpg", sha256_bytes(b"a"), [1.0, 0.0])], tag)
        g.enroll("bob", [("b.jpg", sha256_bytes(b"b"), [0.0, 1.0])], tag)
        assert Matcher.from_gallery(g, tag).threshold is None
        g.set_threshold(tag, 0.3)
        m = Matcher.from_gallery(g, tag)
        assert m.threshold == 0.3 and m.names == ["ann", "bob"]
        far = np.array([[np.sqrt(0.5), np.sqrt(0.5)]])
        assert m.match(far)[0].name == "unknown"
        assert Matcher.from_gallery(g, tag, threshold=None).match(far)[0].name in ("ann", "bob")


def test_calibrate_threshold_hand_computed():
    # impostor distances sorted: 0.5 0.7 0.9 1.1 (4 pairs); genuine pairs do not move the threshold
    dist = [0.2, 1.1, 0.5, 0.3, 0.9, 0.7]
    same = [True, False, False, True, False, False]
    # FAR <= 0.25 allows one impostor accepted (0.5) but not 0.7: the threshold is just below 0.7
    t = calibrate_threshold(dist, same, target_far=0.25)
    assert 0.5 <= t < 0.7 and t == np.nextafter(0.7, 0)
    # FAR <= 0.2 allows none: just below 0.5
    assert calibrate_threshold(dist, same, target_far=0.2) == np.nextafter(0.5, 0)
    # FAR <= 0.5 allows two: just below 0.9
    assert calibrate_threshold(dist, same, target_far=0.5) == np.nextafter(0.9, 0)
    assert calibrate_threshold(dist, same, target_far=1.0) == math.inf


def test_calibrate_threshold_ties_and_far_definition():
    # tied impostors at 0.6: accepting one accepts both, so with one allowed the threshold stays below 0.6
    dist = np.array([0.6, 0.6, 0.8, 1.0])
    same = np.zeros(4, bool)
    t = calibrate_threshold(dist, same, target_far=0.25)
    assert t < 0.6
    rng = np.random.default_rng(0)
    d = rng.uniform(0, 2, 1000)
    s = rng.random(1000) < 0.3
    for far in (0.001, 0.01, 0.1):
        t = calibrate_threshold(d, s, far)
        imp = d[~s]
        assert np.mean(imp <= t) <= far
        # the largest such threshold: the next float up breaks the target
        assert np.mean(imp <= np.nextafter(t, 3)) > far


def test_calibrate_threshold_errors():
    with pytest.raises(GalleryError, match="no impostor"):
        calibrate_threshold([0.1, 0.2], [True, True])
    with pytest.raises(GalleryError, match="entries"):
        calibrate_threshold([0.1, 0.2], [True])
    with pytest.raises(GalleryError, match="target_far"):
        calibrate_threshold([0.1], [False], target_far=2.0)


def test_min_margin_answers_unknown_for_close_runners_up():
    from iznet.errors import GalleryError

    m = Matcher(np.array([[1.0, 0.0], [0.8, 0.6]]), ["ann", "bob"], threshold=1.0, min_margin=0.2)
    near_both = m.match(np.array([[0.95, 0.31]]))[0]  # about as close to ann as to bob
    assert near_both.name == "unknown" and near_both.nearest in ("ann", "bob") and near_both.margin < 0.2
    assert m.match(np.array([[1.0, 0.0]]))[0].name == "ann"
    one = Matcher(np.array([[1.0, 0.0]]), ["ann"], threshold=1.0, min_margin=0.5)
    assert one.match(np.array([[0.9, 0.1]]))[0].name == "ann"  # no runner-up: the margin is infinite
    for bad in (-0.1, float("nan")):
        with pytest.raises(GalleryError, match="min_margin"):
            Matcher(np.eye(2), ["a", "b"], min_margin=bad)


def test_person_spreads_against_a_loop():
    from iznet.recognize.matcher import SpreadRule, person_spreads

    rng = np.random.default_rng(3)
    X = rng.normal(size=(9, 4))
    labels = np.array([0, 0, 0, 1, 2, 2, 0, 2, 2])
    rule = SpreadRule(a=1.0, b=1.0, c=0.0, prior=0.7, n0=2.0, cap=1.0)
    got = person_spreads(X, labels, 4, rule)
    for j in range(4):
        rows = [X[i] for i in range(9) if labels[i] == j]
        d = [math.dist(rows[u], rows[v]) for u in range(len(rows)) for v in range(u + 1, len(rows))]
        want = (sum(d) + 2.0 * 0.7) / (len(d) + 2.0)  # one photo (person 1) or none (person 3): the prior
        assert got[j] == pytest.approx(want, abs=1e-12)
    no_shrink = person_spreads(X, labels, 4, SpreadRule(1.0, 1.0, 0.0, 0.7, 0.0, 1.0))
    assert no_shrink[1] == no_shrink[3] == 0.7
    with pytest.raises(GalleryError, match="labels"):
        person_spreads(X, labels[:3], 4, rule)


def test_spread_rule_decisions_against_the_formula():
    from iznet.recognize.matcher import SpreadRule

    rng = np.random.default_rng(4)
    P = rng.normal(size=(4, 3))
    E = rng.normal(size=(40, 3))
    spreads = np.array([0.2, 1.5, 0.7, 0.9])
    rule = SpreadRule(a=0.8, b=1.5, c=0.4, prior=0.7, n0=3.0, cap=2.0)
    m = Matcher(P, list("abcd"), threshold=2.5, spread_rule=rule, spreads=spreads)
    plain = Matcher(P, list("abcd"), threshold=2.5)
    for e, got, ref in zip(E, m.match(E), plain.match(E)):
        d = sorted((math.dist(e, p), j) for j, p in enumerate(P))
        (d1, j1), (d2, _) = d[0], d[1]
        ok = d1 <= 2.0 and d1 - 0.8 * spreads[j1] - 1.5 * (d2 - d1) <= 0.4  # the cap, not the threshold
        assert got.name == ("abcd"[j1] if ok else "unknown") and got.nearest == ref.nearest
    one = Matcher(P[:1], ["a"], threshold=2.5, spread_rule=SpreadRule(0.0, 0.0, -1.0, 0.7, 1.0, 9.0), spreads=[0.7])
    assert one.match(P[:1])[0].name == "unknown"  # b = 0: no runner-up does not pass the rule by itself
    one = Matcher(P[:1], ["a"], threshold=2.5, spread_rule=SpreadRule(0.0, 1.0, -1.0, 0.7, 1.0, 0.1), spreads=[0.7])
    assert one.match(P[:1])[0].name == "a"  # no runner-up: an infinite margin, and the threshold, not the cap
    far = P[:1] + np.array([[2.6, 0.0, 0.0]])
    assert one.match(far)[0].name == "unknown"
    with pytest.raises(GalleryError, match="one finite spread per person"):
        Matcher(P, list("abcd"), spread_rule=rule, spreads=[0.1, 0.2])
    with pytest.raises(GalleryError, match="finite number"):
        SpreadRule(a=float("nan"), b=1.0, c=0.0, prior=0.7, n0=1.0, cap=1.0)
    with pytest.raises(GalleryError, match=">= 0"):
        SpreadRule(a=-1.0, b=1.0, c=0.0, prior=0.7, n0=1.0, cap=1.0)
    assert SpreadRule.from_dict(rule.to_dict()) == rule
