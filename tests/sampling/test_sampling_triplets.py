"""Uniform triplet sampling: exact counts, goodness of fit against brute-force enumeration, Algorithm 2's bias."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pytest
from scipy.stats import chisquare

from iznet.sampling import (
    Algorithm2TripletSampler,
    SamplingError,
    UniformTripletSampler,
    count_triplets,
    enumerate_triplets,
    exact_distribution,
)
from iznet.sampling._layout import WeightedIndex

# class sizes; the write-up's example first (C1 = {Γ, Λ}, C2 = {⋆, ◇, □})
LAYOUTS = {"writeup-2-3": [2, 3], "1-2-4": [1, 2, 4], "3-3-3": [3, 3, 3], "1-1-2-5": [1, 1, 2, 5]}


def make_labels(sizes, seed=0):
    """Labels with the given class sizes, arbitrary (non-contiguous) ids, items shuffled."""
    ids = [7, -3, 42, 1000, 5][: len(sizes)]
    labels = np.repeat(ids, sizes)
    return np.random.default_rng(seed).permutation(labels)


def brute_force_count(labels):
    lab = list(labels)
    return sum(1 for a in range(len(lab)) for p in range(a + 1, len(lab)) if lab[a] == lab[p]
               for n in range(len(lab)) if lab[n] != lab[a])


def ordered_counts(samples, labels):
    """Counts of each ordered triplet (a, p, n), in the order of the brute-force list (both orientations)."""
    rows = enumerate_triplets(labels)
    ordered = np.concatenate([rows, rows[:, [1, 0, 2]]])
    n = len(labels)
    keys = (ordered[:, 0] * n + ordered[:, 1]) * n + ordered[:, 2]
    sample_keys = (samples[:, 0] * n + samples[:, 1]) * n + samples[:, 2]
    assert np.isin(sample_keys, keys).all(), "a draw is not a valid triplet"
    index = {int(k): i for i, k in enumerate(keys)}
    counts = np.zeros(len(keys), dtype=np.int64)
    np.add.at(counts, [index[int(k)] for k in sample_keys], 1)
    return counts


def test_writeup_example_has_nine_triplets():
    labels = make_labels([2, 3])
    assert count_triplets(labels) == 9
    assert UniformTripletSampler(labels, seed=0).num_triplets == 9
    assert len(enumerate_triplets(labels)) == 9


@pytest.mark.parametrize("seed", range(5))
def test_num_triplets_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, rng.integers(2, 6), size=rng.integers(3, 14))
    if len(np.unique(labels)) < 2:
        labels[0] = labels.max() + 1
    expected = brute_force_count(labels)
    if expected == 0:
        with pytest.raises(SamplingError):
            UniformTripletSampler(labels)
        return
    s = UniformTripletSampler(labels, seed=seed)
    assert s.num_triplets == expected == count_triplets(labels) == len(enumerate_triplets(labels))


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_uniform_sampler_passes_chi_square_over_ordered_triplets(name):
    labels = make_labels(LAYOUTS[name])
    s = UniformTripletSampler(labels, seed=1234)
    samples = s.sample(40_000)
    assert samples.shape == (40_000, 3) and samples.dtype == np.int64
    counts = ordered_counts(samples, labels)
    assert counts.min() > 0
    # uniform over the 2T ordered triplets <=> uniform unordered triplets and a fair orientation
    assert chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_uniform_sampler_exact_probabilities_are_one_over_t(name):
    labels = make_labels(LAYOUTS[name])
    s = UniformTripletSampler(labels, seed=0)
    dist = exact_distribution(labels, s)
    assert set(dist.values()) == {Fraction(1, s.num_triplets)}
    assert sum(dist.values()) == 1
    # class weights C(n_i, 2)(N - n_i) / T
    n_total = len(labels)
    sizes = dict(zip(*np.unique(labels, return_counts=True)))
    expected = [Fraction(comb(int(sizes[c]), 2) * (n_total - int(sizes[c])), s.num_triplets) for c in s.classes]
    assert s.probabilities_of_classes(exact=True) == expected
    assert np.allclose(s.probabilities_of_classes(), [float(f) for f in expected])


def test_algorithm2_exact_probabilities_on_the_writeup_example():
    labels = make_labels([2, 3])
    a2 = Algorithm2TripletSampler(labels, seed=0)
    probs = {}
    for (a, p, n), prob in exact_distribution(labels, a2).items():
        size = int((labels == labels[a]).sum())
        probs.setdefault(size, set()).add(prob)
    # C1 (2 items): 1/4 · 1 · 1/3; C2 (3 items): 3/4 · 1/3 · 1/2
    assert probs == {2: {Fraction(1, 12)}, 3: {Fraction(1, 8)}}
    # and its class probabilities are the write-up's C(n_i, 2) / Σ C(n_j, 2)
    class_probs = a2.probabilities_of_classes(exact=True)
    assert [class_probs[int(np.flatnonzero(a2.layout.sizes == n)[0])] for n in (2, 3)] == [Fraction(1, 4), Fraction(3, 4)]


def test_algorithm2_is_not_uniform_but_matches_its_own_distribution():
    labels = make_labels([2, 3])
    a2 = Algorithm2TripletSampler(labels, seed=99)
    samples = a2.sample(50_000)
    unordered = samples.copy()
    unordered[:, :2] = np.sort(samples[:, :2], axis=1)
    counts = ordered_counts(unordered, labels)[:9]  # a < p rows only
    assert counts.sum() == 50_000
    assert chisquare(counts).pvalue < 1e-6  # not uniform
    rows = enumerate_triplets(labels)
    expected = np.array([float(a2.triplet_probability(*r)) for r in rows]) * 50_000
    assert chisquare(counts, expected).pvalue > 1e-3  # but exactly the write-up's scheme


def test_samples_are_valid_and_reproducible():
    labels = make_labels([3, 1, 4, 2])
    s1, s2 = UniformTripletSampler(labels, seed=5), UniformTripletSampler(labels, seed=5)
    x, y = s1.sample(1000), s2.sample(1000)
    assert np.array_equal(x, y)
    assert not np.array_equal(x, UniformTripletSampler(labels, seed=6).sample(1000))
    assert (x[:, 0] != x[:, 1]).all()
    assert (labels[x[:, 0]] == labels[x[:, 1]]).all()
    assert (labels[x[:, 0]] != labels[x[:, 2]]).all()
    assert s1.sample(0).shape == (0, 3)


def test_large_counts_are_exact_and_sampling_works():
    labels = np.repeat([0, 1], [300_000, 300_000])
    s = UniformTripletSampler(labels, seed=0)
    expected = 2 * (300_000 * 299_999 // 2) * 300_000
    assert s.num_triplets == expected and expected > 2**53  # beyond exact float64 integers
    x = s.sample(10_000)
    assert (labels[x[:, 0]] == labels[x[:, 1]]).all() and (labels[x[:, 0]] != labels[x[:, 2]]).all()
    share = (labels[x[:, 0]] == 0).mean()
    assert abs(share - 0.5) < 0.03  # symmetric layout: each class half the time


def test_weighted_index_float_fallback_beyond_int64():
    w = WeightedIndex([2**70, 3 * 2**70])
    assert not w.exact
    draws = w.draw(np.random.default_rng(0), 20_000)
    assert abs(draws.mean() - 0.75) < 0.02
    assert WeightedIndex([0, 5, 0]).draw(np.random.default_rng(0), 100).tolist() == [1] * 100


@pytest.mark.parametrize("labels", [[1, 1, 1, 1], [0, 1, 2, 3], [5]])
def test_no_triplet_raises(labels):
    with pytest.raises(SamplingError, match="no triplet"):
        UniformTripletSampler(labels)


@pytest.mark.parametrize("labels", [[], [[0, 1], [1, 0]], [0.5, 1.5, 0.5], ["a", "b", "a"], [True, False, True]])
def test_bad_labels_raise(labels):
    with pytest.raises(SamplingError):
        UniformTripletSampler(labels)


def test_bad_count_raises():
    s = UniformTripletSampler([0, 0, 1], seed=0)
    for bad in (-1, 2.5, "3"):
        with pytest.raises(SamplingError):
            s.sample(bad)
