"""Uniformly random same / not-same pairs, for contrastive or pair-classifier training.

A pair is unordered: {a, b} with a ≠ b. With class sizes n_i and N items there are

    P+ = Σ_i C(n_i, 2)                   positive (same-class) pairs,
    P− = Σ_{i<j} n_i·n_j = (N² − Σ_i n_i²) / 2   negative pairs.

Positives: class i with probability C(n_i,2)/P+, then two distinct members uniformly: each positive pair
has probability 1/P+. Negatives: class i with probability n_i·(N−n_i)/(2P−), then a uniformly in class i
and b uniformly outside it. The ordered pair (a, b) then has probability
n_i(N−n_i)/(2P−) · 1/n_i · 1/(N−n_i) = 1/(2P−), and the unordered {a, b} (drawn as (a, b) or (b, a))
1/P−: uniform. The orientation of every row is a fair coin.
"""

from __future__ import annotations

from math import comb

import numpy as np

from iznet.sampling._layout import (
    ClassLayout,
    SamplingError,
    WeightedIndex,
    check_count,
    class_layout,
    draw_item_in_class,
    draw_item_outside_class,
    draw_ordered_pair_in_class,
    make_rng,
)

__all__ = ["UniformPairSampler"]


class UniformPairSampler:
    """Positive pairs uniform over all same-class pairs, negative pairs uniform over all others.

    Args:
        labels: (N,) integer class of each item.
        positive_fraction: share of positives in each call to :meth:`sample`, in [0, 1]. A call of n
            draws returns exactly round(n·positive_fraction) positives, shuffled among the negatives.
        seed: int, numpy Generator or None.

    Attributes:
        num_positive_pairs: P+, exact.
        num_negative_pairs: P−, exact.

    >>> s = UniformPairSampler([0, 0, 1, 1, 1], seed=0)
    >>> (s.num_positive_pairs, s.num_negative_pairs)
    (4, 6)
    """

    def __init__(self, labels, positive_fraction: float = 0.5, seed=None):
        self.layout: ClassLayout = class_layout(labels)
        fraction = float(positive_fraction)
        if not 0.0 <= fraction <= 1.0:
            raise SamplingError(f"positive_fraction must be in [0, 1], got {positive_fraction!r}")
        self.positive_fraction = fraction
        sizes = [int(n) for n in self.layout.sizes]
        n_total = self.layout.num_items
        self.num_positive_pairs: int = sum(comb(n, 2) for n in sizes)
        self.num_negative_pairs: int = (n_total * n_total - sum(n * n for n in sizes)) // 2
        if fraction > 0 and self.num_positive_pairs == 0:
            raise SamplingError(
                f"no positive pair: all {self.layout.num_classes} classes have a single item; "
                "use positive_fraction=0 or labels with a class of at least 2 items")
        if fraction < 1 and self.num_negative_pairs == 0:
            raise SamplingError("no negative pair: all items share one label; use positive_fraction=1 "
                                "or labels with at least two classes")
        self._positive_index = WeightedIndex([comb(n, 2) for n in sizes])
        self._negative_index = WeightedIndex([n * (n_total - n) for n in sizes])
        self.rng = make_rng(seed)

    def sample_positive(self, n: int) -> np.ndarray:
        """(n, 2) int64 positive pairs, uniform over the P+ same-class pairs."""
        n = check_count(n)
        cls = self._positive_index.draw(self.rng, n)
        a, b = draw_ordered_pair_in_class(self.layout, self.rng, cls)
        return np.stack([a, b], axis=1).reshape(n, 2)

    def sample_negative(self, n: int) -> np.ndarray:
        """(n, 2) int64 negative pairs, uniform over the P− different-class pairs."""
        n = check_count(n)
        cls = self._negative_index.draw(self.rng, n)
        a = draw_item_in_class(self.layout, self.rng, cls)
        b = draw_item_outside_class(self.layout, self.rng, cls)
        return np.stack([a, b], axis=1).reshape(n, 2)

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw n pairs, round(n·positive_fraction) of them positive, in random order.

        Returns:
            pairs: (n, 2) int64 item indices.
            same: (n,) bool, True for a positive (same-class) pair.
        """
        n = check_count(n)
        n_pos = int(np.floor(n * self.positive_fraction + 0.5))
        pairs = np.concatenate([self.sample_positive(n_pos), self.sample_negative(n - n_pos)], axis=0)
        same = np.zeros(n, dtype=np.bool_)
        same[:n_pos] = True
        perm = self.rng.permutation(n)
        return pairs[perm].astype(np.int64, copy=False), same[perm]

    def __repr__(self) -> str:
        return (f"UniformPairSampler(items={self.layout.num_items}, positives={self.num_positive_pairs}, "
                f"negatives={self.num_negative_pairs}, positive_fraction={self.positive_fraction})")
