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


def test_probe_features_draw_the_galleries_of_simulate_groups():
    """The same draws: the margin rule's shares computed from the features equal simulate_groups' own; the
    features match a loop over one gallery."""
    from iznet.eval.openset import probe_features

    rng = np.random.default_rng(5)
    centres = _unit(rng.normal(size=(30, 16)))
    labels = np.repeat(np.arange(30), 7)
    emb = _unit(centres[labels] + rng.normal(0, 0.3, (210, 16)))
    kw = dict(group_size=5, k=3, strangers=4, rounds=7, seed=2)
    sim = simulate_groups(emb, labels, RuleSettings(threshold=0.9, margin=0.1), **kw)
    f = probe_features(emb, labels, **kw)
    M, S = f["members"], f["strangers"]
    assert len(M) == sim["members"] and len(S) == sim["strangers"]
    named = (M[:, 0] <= 0.9) & (M[:, 1] - M[:, 0] >= 0.1)
    assert np.sum(named & (M[:, 4] == 1)) / len(M) == pytest.approx(sim["rules"]["margin"]["right"])
    assert np.sum(named & (M[:, 4] == 0)) / len(M) == pytest.approx(sim["rules"]["margin"]["wrong"])
    named_s = (S[:, 0] <= 0.9) & (S[:, 1] - S[:, 0] >= 0.1)
    assert np.mean(~named_s) == pytest.approx(sim["rules"]["margin"]["strangers_rejected"])
    one = probe_features(emb, labels, **{**kw, "rounds": 1})
    g = np.random.default_rng(2)
    members = g.choice(np.arange(30), size=5, replace=False)
    rows = {p: np.flatnonzero(labels == p) for p in range(30)}
    protos = [_unit(emb[rows[p][:3]].mean(0, keepdims=True))[0] for p in members]
    spreads = [np.mean([np.linalg.norm(emb[rows[p][u]] - emb[rows[p][v]]) for u in range(3) for v in range(u + 1, 3)])
               for p in members]
    i = 0
    for j, p in enumerate(members):
        for r in rows[p][3:]:
            d = sorted((float(np.linalg.norm(emb[r] - q)), t) for t, q in enumerate(protos))
            want = [d[0][0], d[1][0], spreads[d[0][1]], 3, float(d[0][1] == j)]
            assert one["members"][i] == pytest.approx(want, abs=1e-6)  # prototypes are float32
            i += 1


def test_spread_rule_choice_against_brute_force():
    from iznet.eval.openset import choose_spread_rule, probe_features, spread_prior, spread_shares
    from iznet.recognize.matcher import SpreadRule

    rng = np.random.default_rng(6)
    centres = _unit(rng.normal(size=(30, 16)))
    labels = np.repeat(np.arange(30), 7)
    noise = np.repeat(rng.uniform(0.1, 0.5, 30), 7)[:, None]  # people spread differently
    emb = _unit(centres[labels] + noise * rng.normal(size=(210, 16)))
    feats = {(k, 6): probe_features(emb, labels, group_size=6, k=k, strangers=4, rounds=5) for k in (2, 3)}
    prior = spread_prior(emb, labels, 5)
    want_prior = np.median([np.mean([np.linalg.norm(emb[7 * p + u] - emb[7 * p + v]) for u in range(5)
                                     for v in range(u + 1, 5)]) for p in range(30)])
    assert prior == pytest.approx(want_prior)
    grid = dict(cap_grid=[0.9, 1.2], a_grid=[0.0, 1.0], b_grid=[0.0, 2.0], n0_grid=[0.0, 3.0],
                c_grid=np.linspace(-1.5, 1.5, 61))
    chosen, rows = choose_spread_rule(feats, prior, **grid, max_wrong=0.05, max_strangers_named=0.2)
    best = None
    for cap, a in ((t, a) for t in grid["cap_grid"] for a in grid["a_grid"]):
        for b in grid["b_grid"]:
            for n0 in grid["n0_grid"]:
                for c in grid["c_grid"]:
                    rule = SpreadRule(a, b, float(c), prior, n0, cap)
                    per = [spread_shares(f, rule) for f in feats.values()]
                    # the same shares by a loop over the rows of one setting
                    M = feats[(2, 6)]["members"]
                    loop = 0
                    for x in M:
                        s = (x[3] * x[2] + n0 * prior) / (x[3] + n0) if x[3] + n0 > 0 else prior
                        loop += x[0] <= cap and x[0] - a * s - b * (x[1] - x[0]) <= c and x[4] == 1
                    assert per[0]["right"] == pytest.approx(loop / len(M))
                    if max(p["wrong"] for p in per) <= 0.05 and max(p["strangers_named"] for p in per) <= 0.2:
                        right = np.mean([p["right"] for p in per])
                        if best is None or right > best[0] + 1e-12:
                            best = (right, cap, a, b, n0)
    assert chosen is not None and chosen["right"] == pytest.approx(best[0])
    assert chosen["wrong"] <= 0.05 and chosen["strangers_named"] <= 0.2
    assert len(rows) <= 16
    none, _ = choose_spread_rule(feats, prior, **grid, max_wrong=-1.0)
    assert none is None
    # limits setting by setting: the same everywhere is the same choice; a tighter one in one setting binds there
    same, _ = choose_spread_rule(feats, prior, **grid, max_wrong={key: 0.05 for key in feats},
                                 max_strangers_named={key: 0.2 for key in feats})
    assert same == chosen
    tight, _ = choose_spread_rule(feats, prior, **grid, max_wrong={(2, 6): 0.0, (3, 6): 0.05},
                                  max_strangers_named=0.2)
    assert tight is None or tight["by_setting"]["(2, 6)"]["wrong"] == 0.0
    with pytest.raises(ValueError, match="no limit for the settings"):
        choose_spread_rule(feats, prior, **grid, max_wrong={(2, 6): 0.05})


def test_simulated_self_rule_falls_back_to_the_shipped_one_and_spends_its_own_limits():
    rng = np.random.default_rng(4)
    centres = _unit(rng.normal(size=(40, 32)))
    labels = np.repeat(np.arange(40), 10)
    emb = _unit(centres[labels] + rng.normal(0, 0.25, (400, 32)))
    shipped = RuleSettings(threshold=0.9, far=0.1, margin=0.05)
    never = simulate_groups(emb, labels, shipped, group_size=8, k=6, strangers=5, rounds=10,
                            self_rule={"min_members": 10_000})
    assert never["rules"]["self"] == never["rules"]["gallery+margin"] and never["self_rule"]["chosen"] == 0
    loose = simulate_groups(emb, labels, shipped, group_size=8, k=6, strangers=5, rounds=10,
                            self_rule={"max_wrong": 0.05, "max_strangers": 0.3, "min_members": 1})
    assert loose["self_rule"]["chosen"] == 1.0
    s = loose["rules"]["self"]
    assert s["right"] + s["wrong"] + s["unknown"] == pytest.approx(1.0)
    # looser limits than the shipped rule's on well separated people: more names
    assert s["right"] >= loose["rules"]["gallery+margin"]["right"]
