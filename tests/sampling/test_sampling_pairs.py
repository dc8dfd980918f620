"""Uniform pair sampling: positives and negatives each uniform over all pairs of their kind."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
from scipy.stats import chisquare

from iznet.sampling import SamplingError, UniformPairSampler


def make_labels(sizes, seed=0):
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(len(sizes)) * 3 + 1, sizes))


def ordered_pairs(labels, same: bool):
    n = len(labels)
    return [(a, b) for a in range(n) for b in range(n) if a != b and (labels[a] == labels[b]) == same]


def counts_over(pairs, samples, n):
    keys = {a * n + b: i for i, (a, b) in enumerate(pairs)}
    sample_keys = samples[:, 0] * n + samples[:, 1]
    assert all(int(k) in keys for k in sample_keys), "a draw is not a pair of the expected kind"
    counts = np.zeros(len(pairs), dtype=np.int64)
    np.add.at(counts, [keys[int(k)] for k in sample_keys], 1)
    return counts


@pytest.mark.parametrize("sizes", [[2, 3], [1, 2, 4], [3, 3, 3], [1, 1, 2, 5]])
def test_counts_match_brute_force(sizes):
    labels = make_labels(sizes)
    s = UniformPairSampler(labels, seed=0)
    assert s.num_positive_pairs == len(ordered_pairs(labels, True)) // 2 == sum(comb(n, 2) for n in sizes)
    assert s.num_negative_pairs == len(ordered_pairs(labels, False)) // 2


@pytest.mark.parametrize("sizes", [[2, 3], [1, 2, 4], [3, 3, 3], [1, 1, 2, 5]])
def test_positives_and_negatives_are_uniform(sizes):
    labels = make_labels(sizes)
    n = len(labels)
    s = UniformPairSampler(labels, seed=2024)
    # over ordered pairs: uniform unordered pairs with a fair orientation
    pos = counts_over(ordered_pairs(labels, True), s.sample_positive(20_000), n)
    neg = counts_over(ordered_pairs(labels, False), s.sample_negative(30_000), n)
    assert pos.min() > 0 and neg.min() > 0
    assert chisquare(pos).pvalue > 1e-3
    assert chisquare(neg).pvalue > 1e-3


def test_item_uniform_negatives_would_fail_the_same_test():
    # control: drawing a uniformly (not ∝ N − n_c(a)) then b outside a's class is NOT uniform on [1, 2, 4]
    labels = make_labels([1, 2, 4])
    n = len(labels)
    rng = np.random.default_rng(0)
    a = rng.integers(0, n, 30_000)
    b = np.array([rng.choice(np.flatnonzero(labels != labels[i])) for i in a])
    counts = counts_over(ordered_pairs(labels, False), np.stack([a, b], 1), n)
    assert chisquare(counts).pvalue < 1e-6


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 1.0])
def test_sample_mixes_exactly_the_asked_share(fraction):
    labels = make_labels([2, 3, 4])
    s = UniformPairSampler(labels, positive_fraction=fraction, seed=1)
    pairs, same = s.sample(1000)
    assert pairs.shape == (1000, 2) and pairs.dtype == np.int64 and same.dtype == np.bool_
    assert same.sum() == round(1000 * fraction)
    assert (pairs[:, 0] != pairs[:, 1]).all()
    assert np.array_equal(labels[pairs[:, 0]] == labels[pairs[:, 1]], same)
    if 0 < fraction < 1:  # shuffled, not positives first
        assert not same[: int(same.sum())].all()


def test_reproducible():
    labels = make_labels([2, 3, 4])
    x = UniformPairSampler(labels, seed=3).sample(100)
    y = UniformPairSampler(labels, seed=3).sample(100)
    assert np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1])


def test_impossible_requests_raise():
    with pytest.raises(SamplingError, match="no positive"):
        UniformPairSampler([0, 1, 2])
    UniformPairSampler([0, 1, 2], positive_fraction=0.0).sample(5)
    with pytest.raises(SamplingError, match="no negative"):
        UniformPairSampler([4, 4, 4])
    UniformPairSampler([4, 4, 4], positive_fraction=1.0).sample(5)
    with pytest.raises(SamplingError, match="positive_fraction"):
        UniformPairSampler([0, 0, 1], positive_fraction=1.5)
