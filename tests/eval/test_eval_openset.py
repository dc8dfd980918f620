"""Unknown-face rules on simulated galleries: the gallery threshold against a loop, decisions, shares."""

from __future__ import annotations

import math

import numpy as np
import pytest

from iznet.eval.openset import RULES, RuleSettings, choose_rule, combine_sizes, decide, rule_grid, simulate_groups
from iznet.recognize.matcher import Matcher, gallery_threshold


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_gallery_threshold_matches_a_loop():
    rng = np.random.default_rng(0)
    emb = _unit(rng.normal(size=(20, 8)))
    owner = np.repeat(np.arange(4), 5)
    protos = _unit(rng.normal(size=(4, 8)))
    imp = sorted(min(float(np.linalg.norm(emb[i] - protos[p])) for p in range(4) if p != owner[i]) for i in range(20))
    names = ["a", "b", "c", "d"]
    m4 = Matcher(protos, names)
    owners = [names[o] for o in owner]
    for far in (0.0, 0.05, 0.2):
        m = math.floor(far * len(imp) + 1e-9)
        want = np.nextafter(imp[m], -np.inf)
        t = gallery_threshold(m4, emb, owners, far)
        assert t == pytest.approx(want, abs=1e-12)
        assert sum(d <= t - 1e-9 for d in imp) <= far * len(imp)
    assert gallery_threshold(Matcher(protos[:1], ["a"]), emb[:5], owners[:5], 0.1) == math.inf
    # several prototypes per person: a person's distance is to their nearest prototype
    two = Matcher(np.concatenate([protos, -protos]), names + names)
    imp2 = sorted(min(min(float(np.linalg.norm(emb[i] - s * protos[p])) for s in (1, -1))
                      for p in range(4) if p != owner[i]) for i in range(20))
    assert gallery_threshold(two, emb, owners, 0.0) == pytest.approx(np.nextafter(imp2[0], -np.inf), abs=1e-12)


def test_decide_rules():
    best, second = np.array([0.5, 0.5, 0.9, 0.5]), np.array([0.55, 0.9, 1.2, 0.7])
    assert decide(best, second, "fixed", 0.8, 0.3, 0.1).tolist() == [True, True, False, True]
    assert decide(best, second, "gallery", 0.8, 0.6, 0.1).tolist() == [True, True, False, True]
    assert decide(best, second, "gallery", 0.8, 0.4, 0.1).tolist() == [False] * 4
    assert decide(best, second, "margin", 0.8, 0.4, 0.1).tolist() == [False, True, False, True]
    assert decide(best, second, "gallery+margin", 0.8, 0.6, 0.3).tolist() == [False, True, False, False]
    with pytest.raises(ValueError, match="unknown rule"):
        decide(best, second, "strict", 0.8, 0.6, 0.1)


def test_simulated_groups_on_clean_clusters_and_on_noise():
    rng = np.random.default_rng(1)
    centres = _unit(rng.normal(size=(40, 32)))
    labels = np.repeat(np.arange(40), 8)
    tight = _unit(centres[labels] + rng.normal(0, 0.02, (320, 32)))
    out = simulate_groups(tight, labels, RuleSettings(threshold=0.5), group_size=6, k=3, strangers=5, rounds=10)
    assert out["members"] == 10 * 6 * 5 and out["strangers"] == 10 * 5 * 8
    for rule in RULES:
        r = out["rules"][rule]
        assert r["right"] == 1.0 and r["wrong"] == 0.0 and r["strangers_rejected"] == 1.0
    # no identity in the embeddings: with no threshold to speak of, names are right 1 time in 6 at best
    noise = _unit(rng.normal(size=(320, 32)))
    out = simulate_groups(noise, labels, RuleSettings(threshold=10.0, far=0.05), group_size=6, k=3, strangers=5,
                          rounds=20)
    f, g = out["rules"]["fixed"], out["rules"]["gallery"]
    assert f["unknown"] == 0.0 and abs(f["right"] - 1 / 6) < 0.06
    assert g["strangers_rejected"] > 0.8 and g["wrong"] < 0.2  # the gallery's own impostors tighten it
    for r in out["rules"].values():
        assert r["right"] + r["wrong"] + r["unknown"] == pytest.approx(1.0)
        assert r["strangers_rejected"] + r["strangers_named"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="need"):
        simulate_groups(noise[:40], labels[:40], RuleSettings(threshold=1.0), group_size=6, k=3)


def test_rule_grid_one_row_per_rule_and_the_worst_size_judges():
    rng = np.random.default_rng(2)
    centres = _unit(rng.normal(size=(40, 16)))
    labels = np.repeat(np.arange(40), 6)
    emb = _unit(centres[labels] + rng.normal(0, 0.25, (240, 16)))
    kw = dict(k=3, strangers=4, rounds=5, seed=3)
    rows = rule_grid(emb, labels, 0.9, [0.0, 0.1], [0.0, 0.2], (6, 20), **kw)
    keys = [(r["rule"], r["far"], r["margin"]) for r in rows]
    assert len(keys) == len(set(keys)) == 1 + 2 + 2 + 4  # fixed; gallery x far; margin x margin; both
    for r in rows:
        sims = [simulate_groups(emb, labels, RuleSettings(0.9, r["far"] or 0.0, r["margin"] or 0.0), group_size=g,
                                **kw)["rules"][r["rule"]] for g in (6, 20)]
        assert r["by_size"]["6"] == sims[0] and r["by_size"]["20"] == sims[1]
        assert r["wrong"] == max(x["wrong"] for x in sims)
        assert r["strangers_named"] == max(x["strangers_named"] for x in sims)
        assert r["right"] == pytest.approx((sims[0]["right"] + sims[1]["right"]) / 2)


def test_choose_rule_takes_the_most_right_names_within_the_limits():
    def row(right, wrong, named):
        shares = {"right": right, "wrong": wrong, "unknown": 1 - right - wrong, "strangers_named": named,
                  "strangers_rejected": 1 - named}
        return combine_sizes({"rule": "fixed", "far": None, "margin": None, "by_size": {"12": shares}})

    rows = [row(0.9, 0.10, 0.05), row(0.6, 0.02, 0.20), row(0.5, 0.03, 0.10), row(0.4, 0.01, 0.0)]
    assert choose_rule(rows) is rows[2]
    assert choose_rule(rows, max_wrong=0.02, max_strangers_named=1.0) is rows[1]
    assert choose_rule(rows, max_wrong=0.0) is None
    # two sizes: the larger gallery's wrong names decide
    two = combine_sizes({"rule": "fixed", "far": None, "margin": None,
                         "by_size": {"12": rows[2]["by_size"]["12"], "48": rows[0]["by_size"]["12"]}})
    assert two["wrong"] == 0.10 and two["right"] == pytest.approx(0.7) and choose_rule([two]) is None


def _loop_calibration(enr, el, probes, pl):
    """Per probe by loops (medoid per person): its nearest other person's distance, and its nearest person."""
    people = sorted(set(el.tolist()))
    proto = {}
    for p in people:
        X = enr[el == p]
        d = [[float(np.linalg.norm(a - b)) for b in X] for a in X]
        proto[p] = X[int(np.argmin([sum(r) for r in d]))]
    imp, best = [], []
    for x, owner in zip(probes, pl):
        dist = {p: float(np.linalg.norm(x - proto[p])) for p in people}
        imp.append(min(v for p, v in dist.items() if p != owner))
        b = min(dist, key=dist.get)
        best.append((b, dist[b], owner))
    return np.array(imp), best


def test_held_out_calibration_matches_a_loop():
    from iznet.eval.openset import held_out_calibration

    rng = np.random.default_rng(4)
    centres = rng.normal(size=(5, 8))
    el = np.repeat(np.arange(5), 6)
    pl = np.repeat(np.arange(5), 8)
    enr = _unit(centres[el] + 0.6 * rng.normal(size=(len(el), 8)))
    probes = _unit(centres[pl] + 1.0 * rng.normal(size=(len(pl), 8)))
    imp, best = _loop_calibration(enr, el, probes, pl)
    n = len(pl)

    def shares(t):
        return (sum(d <= t and b == o for b, d, o in best) / n, sum(d <= t and b != o for b, d, o in best) / n,
                float(np.mean(imp <= t)))

    assert shares(2.0)[1] > 0.05  # the set has misnamed photos to be careful about
    for far, strangers in ((0.0, 1.0), (0.05, 1.0), (1.0, 0.1), (0.05, 0.2)):
        got = held_out_calibration(enr, el, probes, pl, far, strangers, method="medoid")  # the loop's prototype
        t = got["threshold"] - 1e-6  # loop distances differ from the library's in the last bits
        right, wrong, named = shares(t)
        assert wrong <= far + 1e-9 and named <= strangers + 1e-9
        assert got["right"] == pytest.approx(right) and got["wrong"] == pytest.approx(wrong)
        assert got["far"] == pytest.approx(named)
        assert got["nearest_right"] == pytest.approx(sum(b == o for b, _, o in best) / n)
        assert got["right"] + got["wrong"] + got["unknown"] == pytest.approx(1.0)
        # the largest such threshold: the next distance up breaks one of the two targets
        nxt = min(d for _, d, _ in best + [(None, v, None) for v in imp] if d > t + 2e-6) + 1e-6
        w2, s2 = shares(nxt)[1:]
        assert w2 > far + 1e-9 or s2 > strangers + 1e-9
    with pytest.raises(ValueError, match="no enrolled photo"):
        held_out_calibration(enr, el, probes, pl + 1, 0.1)
