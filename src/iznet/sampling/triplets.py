"""Uniformly random triplets from a labelled set, without listing them (write-up, Appendix A).

Convention. A *triplet* is an unordered positive pair {a, p} of two distinct items of one class and a
negative n of another class. With class sizes n_1..n_m and N items there are

    T = Σ_i C(n_i, 2) · (N − n_i)

triplets (the write-up's example, C1 = {Γ, Λ}, C2 = {⋆, ◇, □}: 1·3 + 3·2 = 9). A draw returns the
row (anchor, positive, negative) with the pair's orientation chosen by a fair coin, so the rows are
also uniform over the 2T *ordered* triplets.

:class:`UniformTripletSampler` draws class i with probability C(n_i,2)·(N−n_i) / T, then a pair
uniformly inside the class and a negative uniformly outside it: every triplet has probability
1/T. :class:`Algorithm2TripletSampler` is the write-up's Algorithm 2 (class weight ∝ C(n_i, 2)),
kept for comparison: it is not uniform when classes differ in size (1/12 and 1/8 instead of 1/9
in the example). See docs/sampling.md for the derivation.
"""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np

from iznet.sampling._layout import (
    ClassLayout,
    SamplingError,
    WeightedIndex,
    check_count,
    class_layout,
    draw_item_outside_class,
    draw_ordered_pair_in_class,
    make_rng,
)

__all__ = [
    "UniformTripletSampler",
    "Algorithm2TripletSampler",
    "count_triplets",
    "enumerate_triplets",
    "exact_distribution",
]


def count_triplets(labels) -> int:
    """T = Σ_i C(n_i, 2)·(N − n_i), exact (a Python int).

    >>> count_triplets([0, 0, 1, 1, 1])
    9
    """
    layout = class_layout(labels)
    n_total = layout.num_items
    return sum(comb(int(n), 2) * (n_total - int(n)) for n in layout.sizes)


class _ClassWeightedTripletSampler:
    """Class i with probability ∝ weight(n_i); a uniform pair inside it; a uniform negative outside it."""

    def __init__(self, labels, seed=None):
        self.layout: ClassLayout = class_layout(labels)
        sizes = [int(n) for n in self.layout.sizes]
        n_total = self.layout.num_items
        self._per_class = [comb(n, 2) * (n_total - n) for n in sizes]  # triplets owned by each class
        self.num_triplets: int = sum(self._per_class)
        if self.num_triplets == 0:
            raise SamplingError(
                f"these labels ({n_total} items, {self.layout.num_classes} classes, largest class "
                f"{max(sizes)}) have no triplet: a triplet needs a class with at least 2 items and at "
                "least one item of another class"
            )
        self._index = WeightedIndex(self._class_weights(sizes, n_total))
        self.rng = make_rng(seed)

    def _class_weights(self, sizes: list[int], n_total: int) -> list[int]:
        raise NotImplementedError

    @property
    def classes(self) -> np.ndarray:
        """(m,) the distinct labels, in the order of :meth:`probabilities_of_classes`."""
        return self.layout.classes

    def probabilities_of_classes(self, exact: bool = False):
        """Probability that a draw's anchor class is each class.

        Args:
            exact: return a list of :class:`fractions.Fraction` instead of a float64 array.

        Returns:
            (m,) float64 array (or list of Fraction), ordered like :attr:`classes`.
        """
        if exact:
            return [Fraction(w, self._index.total) for w in self._index.weights]
        return self._index.probabilities()

    def triplet_probability(self, a: int, p: int, n: int) -> Fraction:
        """Exact probability that one draw is the triplet ({a, p}, n), either orientation of the pair.

        Zero when (a, p, n) is not a triplet (a == p, a and p in different classes, n in a's class).
        """
        c = self.layout.class_of
        a, p, n = int(a), int(p), int(n)
        if a == p or c[a] != c[p] or c[n] == c[a]:
            return Fraction(0)
        i = int(c[a])
        size = int(self.layout.sizes[i])
        return Fraction(self._index.weights[i], self._index.total) / comb(size, 2) / (self.layout.num_items - size)

    def sample(self, n: int) -> np.ndarray:
        """Draw n independent triplets (with replacement).

        Returns:
            (n, 3) int64 array of item indices: anchor, positive, negative.
        """
        n = check_count(n)
        cls = self._index.draw(self.rng, n)
        anchor, positive = draw_ordered_pair_in_class(self.layout, self.rng, cls)
        negative = draw_item_outside_class(self.layout, self.rng, cls)
        return np.stack([anchor, positive, negative], axis=1).astype(np.int64, copy=False).reshape(n, 3)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(items={self.layout.num_items}, classes={self.layout.num_classes}, "
                f"triplets={self.num_triplets})")


class UniformTripletSampler(_ClassWeightedTripletSampler):
    """Exactly uniform triplets: each of the T triplets has probability 1/T per draw.

    Class i is drawn with probability C(n_i,2)·(N−n_i)/T (the share of all triplets whose pair lies in
    class i) with one exact integer draw and a binary search (O(log m)); the pair and the negative are
    drawn by index arithmetic over the class-sorted items (O(1)). Nothing is enumerated.

    Args:
        labels: (N,) integer class of each item; item indices are positions in this array.
        seed: int, numpy Generator or None.

    Attributes:
        num_triplets: T, exact.

    >>> s = UniformTripletSampler([0, 0, 1, 1, 1], seed=0)
    >>> s.num_triplets
    9
    >>> s.sample(4).shape
    (4, 3)
    """

    def _class_weights(self, sizes, n_total):
        return [comb(n, 2) * (n_total - n) for n in sizes]


class Algorithm2TripletSampler(_ClassWeightedTripletSampler):
    """The write-up's Algorithm 2: class i with probability C(n_i,2)/Σ_j C(n_j,2). Not uniform.

    It forgets that a pair of class i has N − n_i possible negatives, so a triplet of class i gets
    probability 1/(Σ_j C(n_j,2)·(N − n_i)): in the write-up's example 1/12 for C1's triplets and 1/8
    for C2's instead of 1/9. Kept to test and document the correction.
    """

    def _class_weights(self, sizes, n_total):
        return [comb(n, 2) if n_total - n > 0 else 0 for n in sizes]


def enumerate_triplets(labels, max_triplets: int = 1_000_000) -> np.ndarray:
    """All triplets by brute force, for tests and small sets.

    Returns:
        (T, 3) int64 rows (a, p, n) with a < p, in lexicographic order.

    Raises:
        SamplingError: more than ``max_triplets`` triplets.
    """
    t = count_triplets(labels)
    if t > max_triplets:
        raise SamplingError(f"{t} triplets is more than max_triplets={max_triplets}; enumerate smaller sets")
    lab = class_layout(labels).labels
    rows = [(a, p, n)
            for a in range(len(lab)) for p in range(a + 1, len(lab)) if lab[a] == lab[p]
            for n in range(len(lab)) if lab[n] != lab[a]]
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def exact_distribution(labels, sampler: _ClassWeightedTripletSampler) -> dict[tuple[int, int, int], Fraction]:
    """Exact probability of every triplet (key (a, p, n) with a < p) under ``sampler``'s scheme."""
    return {tuple(int(v) for v in row): sampler.triplet_probability(*row) for row in enumerate_triplets(labels)}
