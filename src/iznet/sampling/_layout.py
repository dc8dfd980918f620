"""Shared pieces of the samplers: the class layout of a label array and exact weighted draws.

Items are sorted by class once (a stable argsort), so each class is one contiguous block of
``order``. That lets a sampler draw "an item of class i" as ``order[start_i + u]`` with
``u ~ U[0, n_i)`` and "an item outside class i" as ``order[u + n_i·[u >= start_i]]`` with
``u ~ U[0, N - n_i)``: no list of items or pairs is ever built.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
from typing import Sequence

import numpy as np

from iznet.errors import DataError

_INT64_LIMIT = 2**63 - 1


class SamplingError(DataError):
    """Labels or sampler arguments that cannot give what was asked (no triplet, bad shape, bad P or K)."""


@dataclass(frozen=True)
class ClassLayout:
    """Items grouped by class.

    Attributes:
        labels: (N,) int64, the labels as given.
        classes: (m,) int64, the distinct labels, sorted.
        class_of: (N,) int64, the class index (into ``classes``) of each item.
        order: (N,) int64, item indices sorted by class (stable, so by index within a class).
        starts: (m,) int64, where each class's block begins in ``order``.
        sizes: (m,) int64, n_i, the number of items of each class.
    """

    labels: np.ndarray
    classes: np.ndarray
    class_of: np.ndarray
    order: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray

    @property
    def num_items(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.classes.shape[0])

    def items_of(self, c: int) -> np.ndarray:
        """Item indices of class index ``c`` (ascending)."""
        s = int(self.starts[c])
        return self.order[s : s + int(self.sizes[c])]


def as_labels(labels) -> np.ndarray:
    """Check and convert labels to a 1-D int64 array.

    Raises:
        SamplingError: not 1-D, empty, or not integers.
    """
    try:
        arr = np.asarray(labels)
    except Exception as e:  # e.g. a CUDA tensor
        raise SamplingError(f"labels must be an array-like of int (move tensors to the CPU first): {e}") from None
    if arr.ndim != 1:
        raise SamplingError(f"labels must be 1-D (one label per item), got shape {tuple(arr.shape)}")
    if arr.shape[0] == 0:
        raise SamplingError("labels are empty: there is nothing to sample from")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise SamplingError(
            f"labels must be integers (class ids), got dtype {arr.dtype}; map names to ids first, "
            "e.g. with np.unique(names, return_inverse=True)[1]"
        )
    return arr.astype(np.int64, copy=False)


def class_layout(labels) -> ClassLayout:
    """Group items by label. See :class:`ClassLayout`."""
    arr = as_labels(labels)
    classes, class_of, sizes = np.unique(arr, return_inverse=True, return_counts=True)
    class_of = class_of.reshape(-1).astype(np.int64)
    order = np.argsort(class_of, kind="stable").astype(np.int64)
    sizes = sizes.astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return ClassLayout(arr, classes.astype(np.int64), class_of, order, starts, sizes)


def make_rng(seed) -> np.random.Generator:
    """A numpy Generator from an int, a SeedSequence, a Generator (used as is) or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def check_count(n) -> int:
    """Validate a number of draws."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
        raise SamplingError(f"the number of draws must be an int >= 0, got {n!r}")
    return int(n)


class WeightedIndex:
    """Draws an index i in [0, m) with probability w_i / Σw, for fixed non-negative integer weights.

    The weights stay exact Python ints. Cost: O(m) to build, O(log m) per draw (a binary search of
    the cumulative sums, vectorised with ``np.searchsorted``). When Σw < 2**63 a draw is *exact*:
    one uniform integer r in [0, Σw) and the class whose cumulative interval holds r. Above that
    (only for astronomically many triplets) it falls back to float64 cumulative sums, off by a
    relative ~1e-16.
    """

    def __init__(self, weights: Sequence[int]):
        self.weights = [int(w) for w in weights]
        if any(w < 0 for w in self.weights):
            raise SamplingError("weights must be non-negative")
        self.total = sum(self.weights)
        self.exact = self.total <= _INT64_LIMIT
        if self.exact:
            self._cum = np.fromiter(accumulate(self.weights), dtype=np.int64, count=len(self.weights))
        else:
            self._cum = np.cumsum(np.array(self.weights, dtype=np.float64) / float(self.total))

    def probabilities(self) -> np.ndarray:
        """(m,) float64 probabilities w_i / Σw."""
        if self.total == 0:
            return np.zeros(len(self.weights))
        return np.array([w / self.total for w in self.weights], dtype=np.float64)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n,) int64 indices."""
        if n == 0:
            return np.empty(0, dtype=np.int64)
        if self.total == 0:
            raise SamplingError("all weights are zero; nothing can be drawn")
        if self.exact:
            r = rng.integers(0, self.total, size=n, dtype=np.int64)
            return np.searchsorted(self._cum, r, side="right").astype(np.int64)
        u = rng.random(n)
        idx = np.searchsorted(self._cum, u, side="right")
        return np.minimum(idx, len(self.weights) - 1).astype(np.int64)


def draw_ordered_pair_in_class(layout: ClassLayout, rng: np.random.Generator, cls: np.ndarray):
    """Two distinct items of each drawn class, uniform over the n_c·(n_c−1) ordered pairs.

    Hence the unordered pair is uniform over the C(n_c, 2) pairs and its orientation is a fair coin.

    Args:
        cls: (n,) class indices whose sizes are all >= 2.

    Returns:
        first, second: (n,) int64 item indices.
    """
    sizes = layout.sizes[cls]
    i = rng.integers(0, sizes, dtype=np.int64)
    j = rng.integers(0, sizes - 1, dtype=np.int64)
    j = j + (j >= i)  # skip i: j uniform over the other n_c - 1 members
    starts = layout.starts[cls]
    return layout.order[starts + i], layout.order[starts + j]


def draw_item_in_class(layout: ClassLayout, rng: np.random.Generator, cls: np.ndarray) -> np.ndarray:
    """(n,) one item uniformly from each drawn class."""
    u = rng.integers(0, layout.sizes[cls], dtype=np.int64)
    return layout.order[layout.starts[cls] + u]


def draw_item_outside_class(layout: ClassLayout, rng: np.random.Generator, cls: np.ndarray) -> np.ndarray:
    """(n,) one item uniformly from the N − n_c items not in each drawn class.

    u ~ U[0, N − n_c) indexes ``order`` with the class's block cut out: positions before the block
    are kept, positions from the block's start on are shifted past it by n_c.
    """
    sizes = layout.sizes[cls]
    starts = layout.starts[cls]
    u = rng.integers(0, layout.num_items - sizes, dtype=np.int64)
    return layout.order[u + sizes * (u >= starts)]
