"""Prototypes: the few vectors that stand for one person in the gallery.

A person enrolled with N embeddings ``X`` (N, D) is summarised by P prototype rows (P, D):

- ``medoid``: the member of ``X`` with the smallest summed Euclidean distance to the others (P = 1).
  It is always a real embedding of the person, so one odd photo cannot drag it away.
- ``centroid``: the mean of ``X``, L2-renormalised back onto the unit sphere (P = 1). Embeddings live on the
  sphere and distances are compared there, so an un-normalised mean (norm < 1) would sit closer to everything.
- ``kmeans``: the centres of spherical k-means (P = min(k, number of distinct points)), for people whose photos
  fall into a few looks (glasses/no glasses, young/old). The matcher takes the nearest of them.
- ``all``: every embedding is a prototype (nearest-neighbour matching; P = N).

All functions take float arrays with one embedding per row and return float32.
"""

from __future__ import annotations

import logging

import numpy as np

from iznet.errors import GalleryError

_logger = logging.getLogger(__name__)

METHODS = ("medoid", "centroid", "kmeans", "all")
"""Prototype methods understood by :func:`compute_prototypes`."""

_BLOCK = 1024  # rows per block when summing pairwise distances, to bound memory at _BLOCK * N floats


DEFAULT_METHOD = "centroid"
"""The prototype every command uses unless told otherwise: the unit mean of a person's embeddings. Chosen on the
collection's development people (``scripts/openset_rules.py --part dev --method centroid|medoid``): under
the shipped unknown-face rule it names more of them right than the medoid (48.7% vs 44.7% with 5 photos a
person, 45.8% vs 39.8% with 10) with no more wrong names (2.1% vs 2.4%, 3.1% vs 3.1%)."""


def _as_matrix(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise GalleryError(f"expected a non-empty (N, D) array of embeddings, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise GalleryError("embeddings contain NaN or infinite values")
    return X


def pairwise_distances(A, B) -> np.ndarray:
    """Euclidean distances between the rows of ``A`` (N, D) and ``B`` (M, D), as float64 (N, M)."""
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    sq = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * (A @ B.T)
    return np.sqrt(np.maximum(sq, 0.0))


def mean_pair_distance(X) -> float:
    """The mean Euclidean distance over the pairs of rows of ``X`` (N, D); 0.0 with fewer than two rows."""
    n = len(X)
    if n < 2:
        return 0.0
    return float(np.triu(pairwise_distances(X, X), 1).sum()) / (n * (n - 1) / 2)


def medoid(X) -> tuple[int, np.ndarray]:
    """The member of ``X`` minimising the summed Euclidean distance to all the others.

    Args:
        X: embeddings, shape (N, D).

    Returns:
        ``(index, vector)``: the row index in ``X`` (the lowest one on ties) and that row as float32 (D,).

    >>> medoid(np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]]))[0]
    1
    """
    X = _as_matrix(X)
    sums = np.empty(len(X))
    for start in range(0, len(X), _BLOCK):
        sums[start : start + _BLOCK] = pairwise_distances(X[start : start + _BLOCK], X).sum(1)
    i = int(np.argmin(sums))
    return i, X[i].astype(np.float32)


def centroid(X) -> np.ndarray:
    """The mean of ``X`` scaled to unit L2 norm, float32 (D,).

    When the mean is (numerically) the zero vector, e.g. two opposite embeddings, it has no direction;
    the medoid is returned instead and a warning is logged.
    """
    X = _as_matrix(X)
    mean = X.mean(0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-8:
        _logger.warning("the mean of %d embeddings is the zero vector; using the medoid instead", len(X))
        return medoid(X)[1]
    return (mean / norm).astype(np.float32)


def _unit_rows(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if np.any(norms < 1e-12):
        raise GalleryError("an embedding is the zero vector; it has no direction on the sphere")
    return X / norms


def _kmeanspp(U: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding on unit rows ``U``: each next centre is drawn with probability ∝ squared distance."""
    centres = [int(rng.integers(len(U)))]
    d2 = np.maximum(2.0 - 2.0 * (U @ U[centres[0]]), 0.0)
    for _ in range(1, k):
        total = d2.sum()
        # capping k at the number of distinct points keeps total > 0 here, bar rounding on near-duplicates
        nxt = int(rng.choice(len(U), p=d2 / total)) if total > 0 else int(np.argmax(d2))
        centres.append(nxt)
        d2 = np.minimum(d2, np.maximum(2.0 - 2.0 * (U @ U[nxt]), 0.0))
    return U[centres].copy()


def spherical_kmeans(X, k: int, seed: int = 0, n_init: int = 4, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means: rows are L2-normalised, assigned to the centre of largest cosine similarity
    (the nearest one in Euclidean distance on the sphere), and each centre is its members' renormalised mean.

    Args:
        X: embeddings, shape (N, D).
        k: wanted number of clusters; capped at the number of distinct rows of ``X``.
        seed: seed of the k-means++ seeding; the result is deterministic for a given seed.
        n_init: seedings tried; the one with the smallest within-cluster squared distance is kept.
        max_iter: iteration cap per seeding.

    Returns:
        ``(centres, assign)``: float32 (K, D) unit rows, sorted by cluster size (largest first),
        and int64 (N,) cluster index of every row.
    """
    if int(k) < 1:
        raise GalleryError(f"k must be at least 1, got {k}")
    U = _unit_rows(_as_matrix(X))
    k = min(int(k), len(np.unique(U, axis=0)))
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(max(1, n_init)):
        C = _kmeanspp(U, k, rng)
        assign = np.full(len(U), -1)
        for _ in range(max_iter):
            sim = U @ C.T
            new = sim.argmax(1)
            if np.array_equal(new, assign):
                break
            assign = new
            sums = np.zeros_like(C)
            np.add.at(sums, assign, U)
            counts = np.bincount(assign, minlength=k)
            for c in np.flatnonzero(counts == 0):
                # an empty cluster takes the point worst served by its own centre
                far = int(np.argmin(sim[np.arange(len(U)), assign]))
                sums[c] = U[far]
                assign[far] = c
                sim[far] = 1.0
            norms = np.linalg.norm(sums, axis=1, keepdims=True)
            C = np.where(norms > 1e-12, sums / np.maximum(norms, 1e-12), C)
        sim = U @ C.T
        assign = sim.argmax(1)
        cost = float(np.sum(2.0 - 2.0 * sim[np.arange(len(U)), assign]))
        if best is None or cost < best[0] - 1e-12:
            best = (cost, C, assign)
    _, C, assign = best
    counts = np.bincount(assign, minlength=k)
    first = np.array([np.flatnonzero(assign == c)[0] if counts[c] else len(U) for c in range(k)])
    order = np.lexsort((first, -counts))
    remap = np.empty(k, dtype=np.int64)
    remap[order] = np.arange(k)
    return C[order].astype(np.float32), remap[assign]


def kmeans_prototypes(X, k: int, seed: int = 0) -> np.ndarray:
    """Centres of spherical k-means on ``X`` (N, D): float32 (min(k, distinct rows), D) unit rows."""
    return spherical_kmeans(X, k, seed=seed)[0]


def compute_prototypes(X, method: str = "medoid", k: int = 3, seed: int = 0) -> np.ndarray:
    """Prototypes of one person.

    Args:
        X: that person's embeddings, shape (N, D).
        method: one of :data:`METHODS`.
        k: number of k-means centres (``kmeans`` only).
        seed: k-means seed (``kmeans`` only).

    Returns:
        float32 (P, D): P = 1 for medoid and centroid, min(k, distinct rows) for kmeans, N for all.
    """
    if method == "medoid":
        return medoid(X)[1][None, :]
    if method == "centroid":
        return centroid(X)[None, :]
    if method == "kmeans":
        return kmeans_prototypes(X, k, seed=seed)
    if method == "all":
        return _as_matrix(X).astype(np.float32)
    raise GalleryError(f"unknown prototype method {method!r}; choose one of {', '.join(METHODS)}")
