"""The gallery's own unknown-face rule (iznet.recognize.self_rule) against loops."""

import math

import numpy as np
import pytest

from iznet.errors import GalleryError
from iznet.recognize.prototypes import centroid, pairwise_distances
from iznet.recognize.self_rule import MARGINS, choose_self_rule, leave_one_out


def _gallery(seed=0, people=6, per=(1, 2, 5, 8), dim=16, spread=0.6):
    rng = np.random.default_rng(seed)
    X, y = [], []
    for p in range(people):
        c = rng.normal(size=dim)
        for _ in range(int(rng.choice(per))):
            v = c / np.linalg.norm(c) + spread * rng.normal(size=dim) / math.sqrt(dim)
            X.append(v / np.linalg.norm(v))
            y.append(f"p{p}")
    return np.array(X), np.array(y)


def test_leave_one_out_matches_a_loop():
    X, y = _gallery()
    loo = leave_one_out(X, y)
    people = list(np.unique(y))
    for i in range(len(X)):
        own = people.index(y[i])
        protos = []
        for j, p in enumerate(people):
            rows = [r for r in range(len(X)) if y[r] == p and not (j == own and r == i)]
            protos.append(centroid(X[rows]) if rows else None)
        for j, P in enumerate(protos):
            if j == own:
                assert np.isinf(loo["stranger"][i, j])
                if P is None:
                    assert not loo["usable"][i] and np.isinf(loo["member"][i, j])
                else:
                    d = pairwise_distances(X[i:i + 1], P[None])[0, 0]
                    assert loo["usable"][i] and loo["member"][i, j] == pytest.approx(d, abs=1e-6)
            else:
                full = centroid(X[y == people[j]])
                d = pairwise_distances(X[i:i + 1], full[None])[0, 0]
                assert loo["member"][i, j] == pytest.approx(d, abs=1e-6)
                assert loo["stranger"][i, j] == pytest.approx(d, abs=1e-6)


def _shares(loo, t, m):
    """Right / wrong / strangers-named shares of the usable photos at (t, m), one photo at a time."""
    right = wrong = named_str = n = 0
    for i in np.flatnonzero(loo["usable"]):
        n += 1
        row = loo["member"][i]
        order = sorted(range(len(row)), key=lambda j: row[j])
        d1, d2 = row[order[0]], (row[order[1]] if len(row) > 1 else math.inf)
        if d1 <= t and d2 - d1 >= m:
            if order[0] == loo["own"][i]:
                right += 1
            else:
                wrong += 1
        srow = loo["stranger"][i]
        sorder = sorted(range(len(srow)), key=lambda j: srow[j])
        s1, s2 = srow[sorder[0]], (srow[sorder[1]] if len(srow) > 1 else math.inf)
        if s1 <= t and s2 - s1 >= m:
            named_str += 1
    return right / n, wrong / n, named_str / n


@pytest.mark.parametrize("seed,limits", [(0, (0.05, 0.1)), (1, (0.0, 0.2)), (2, (0.1, 0.3))])
def test_chosen_rule_is_the_best_feasible_one_of_a_brute_force_search(seed, limits):
    X, y = _gallery(seed=seed, people=8, spread=0.9)
    w, s = limits
    rule = choose_self_rule(X, y, max_wrong=w, max_strangers=s, min_members=1)
    loo = leave_one_out(X, y)
    n = int(loo["usable"].sum())
    r, wr, st = _shares(loo, rule.threshold, rule.margin)
    assert (rule.right, rule.wrong, rule.strangers_named) == pytest.approx((r, wr, st))
    assert wr <= math.floor(w * n + 1e-9) / n + 1e-12 and st <= math.floor(s * n + 1e-9) / n + 1e-12
    cands = np.unique(np.concatenate([loo["member"][np.isfinite(loo["member"])],
                                      loo["stranger"][np.isfinite(loo["stranger"])]]))
    best = 0.0
    for m in MARGINS:
        for t in np.concatenate([cands, np.nextafter(cands, -np.inf)]):
            r, wr, st = _shares(loo, t, m)
            if wr * n <= math.floor(w * n + 1e-9) and st * n <= math.floor(s * n + 1e-9):
                best = max(best, r)
    assert rule.right == pytest.approx(best)


def test_too_little_evidence_and_the_cap():
    X, y = _gallery(seed=3, people=4, per=(3,))
    assert choose_self_rule(X, y, min_members=len(X) + 1) is None
    assert choose_self_rule(X[y != "p0"][:0], y[:0], min_members=0) is None  # no people
    capped = choose_self_rule(X, y, max_wrong=1.0, max_strangers=1.0, cap=0.5, min_members=1)
    assert capped.threshold == 0.5
    with pytest.raises(GalleryError, match="do not match"):
        leave_one_out(X, y[:-1])
