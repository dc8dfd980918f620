"""Prototypes on points whose answer is known, and against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from iznet.errors import GalleryError
from iznet.recognize.prototypes import (
    centroid,
    compute_prototypes,
    kmeans_prototypes,
    medoid,
    spherical_kmeans,
)


def _unit(X):
    X = np.asarray(X, dtype=np.float64)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_medoid_on_a_line():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [10.0, 0.0]])
    i, v = medoid(X)
    # summed distances: 13, 11, 11, 27 -> the first of the tie
    assert i == 1
    np.testing.assert_array_equal(v, X[1].astype(np.float32))


@pytest.mark.parametrize("seed", range(5))
def test_medoid_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    X = _unit(rng.normal(size=(17, 8)))
    sums = [sum(np.linalg.norm(X[a] - X[b]) for b in range(len(X))) for a in range(len(X))]
    i, v = medoid(X)
    assert i == int(np.argmin(sums))
    assert any(np.array_equal(v, x.astype(np.float32)) for x in X)  # a member
    assert sums[i] <= min(sums) + 1e-9


def test_medoid_single_point():
    i, v = medoid([[0.6, 0.8]])
    assert i == 0 and np.allclose(v, [0.6, 0.8])


def test_centroid_is_normalised_mean():
    X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    c = centroid(X)
    np.testing.assert_allclose(c, [1 / np.sqrt(2), 1 / np.sqrt(2), 0.0], rtol=1e-6)
    assert c.dtype == np.float32
    rng = np.random.default_rng(1)
    Y = _unit(rng.normal(size=(9, 5)))
    m = Y.mean(0)
    np.testing.assert_allclose(centroid(Y), m / np.linalg.norm(m), rtol=1e-6)
    assert abs(np.linalg.norm(centroid(Y)) - 1.0) < 1e-6


def test_centroid_of_opposite_points_falls_back_to_medoid():
    X = np.array([[1.0, 0.0], [-1.0, 0.0]])
    np.testing.assert_array_equal(centroid(X), np.float32([1.0, 0.0]))


def _three_clusters(rng, per=(6, 5, 4), spread=0.05):
    centres = np.eye(8)[:3]
    X, y = [], []
    for c, n in enumerate(per):
        X.append(centres[c] + spread * rng.normal(size=(n, 8)))
        y += [c] * n
    return _unit(np.concatenate(X)), np.array(y), centres


@pytest.mark.parametrize("seed", range(4))
def test_kmeans_finds_separated_clusters(seed):
    rng = np.random.default_rng(seed)
    X, y, centres = _three_clusters(rng)
    C, assign = spherical_kmeans(X, 3, seed=seed)
    assert C.shape == (3, 8)
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1.0, rtol=1e-5)
    # the partition equals the true one up to relabelling; sorted by size: 6, 5, 4
    np.testing.assert_array_equal(assign, y)
    for c in range(3):
        assert np.dot(C[c], centres[c]) > 0.95


def test_kmeans_is_deterministic_for_a_seed():
    X, _, _ = _three_clusters(np.random.default_rng(7), spread=0.5)
    np.testing.assert_array_equal(kmeans_prototypes(X, 3, seed=3), kmeans_prototypes(X, 3, seed=3))


def test_kmeans_objective_not_worse_than_any_partition_of_small_set():
    # 7 points, k=2: every 2-partition can be enumerated; the result must be a local optimum no worse than
    # the one found by brute force beyond rounding when clusters are well separated
    rng = np.random.default_rng(3)
    X, _, _ = _three_clusters(rng, per=(4, 3, 0))
    C, assign = spherical_kmeans(X, 2, seed=0)

    def cost(labels):
        total = 0.0
        for c in set(labels):
            m = X[np.array(labels) == c].mean(0)
            m /= np.linalg.norm(m)
            total += np.sum(2 - 2 * X[np.array(labels) == c] @ m)
        return total

    best = min(cost(list(p)) for p in itertools.product([0, 1], repeat=len(X)) if len(set(p)) == 2)
    assert cost(list(assign)) <= best + 1e-9


def test_kmeans_k_capped_at_points_and_distinct_points():
    X = _unit([[1.0, 0.0], [0.0, 1.0]])
    assert kmeans_prototypes(X, 5).shape == (2, 2)
    dup = _unit([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    P = kmeans_prototypes(dup, 3)
    assert P.shape == (2, 2)
    np.testing.assert_allclose(P, [[1.0, 0.0], [0.0, 1.0]], atol=1e-7)


def test_compute_prototypes_shapes_and_errors():
    rng = np.random.default_rng(0)
    X = _unit(rng.normal(size=(10, 128)))
    assert compute_prototypes(X, "medoid").shape == (1, 128)
    assert compute_prototypes(X, "centroid").shape == (1, 128)
    assert compute_prototypes(X, "kmeans", k=3).shape == (3, 128)
    assert compute_prototypes(X, "all").shape == (10, 128)
    assert compute_prototypes(X, "medoid").dtype == np.float32
    with pytest.raises(GalleryError, match="unknown prototype method 'mode'"):
        compute_prototypes(X, "mode")
    with pytest.raises(GalleryError, match="non-empty"):
        compute_prototypes(np.zeros((0, 128)))
    with pytest.raises(GalleryError, match="NaN"):
        compute_prototypes(np.full((2, 3), np.nan))
    with pytest.raises(GalleryError, match="k must be"):
        compute_prototypes(X, "kmeans", k=0)
