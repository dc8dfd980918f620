"""The miner contract: embeddings and labels of one batch in, (anchor, positive, negative) indices out.

A miner never computes a loss and never keeps a graph: it runs under ``torch.no_grad`` on a detached copy
(in float32 when the embeddings are half precision), and its output feeds a loss's ``indices_tuple``.
"Nothing to mine" (one identity in the batch, all singletons, no triplet meeting the condition) is a
normal outcome: three empty int64 tensors.

Distances are Euclidean between the embeddings as given (unit vectors from the models, so in [0, 2]);
``squared=True`` uses squared distances, as FaceNet's margins do.
"""

from __future__ import annotations

import torch

from iznet.errors import IznetError
from iznet.utils.distances import pairwise_distances

__all__ = ["Miner", "MiningError", "IndexTriplets"]

IndexTriplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class MiningError(IznetError):
    """Bad input to a miner (shapes, dtypes), an unknown miner name or bad miner arguments."""


def check_inputs(embeddings, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a batch and move the labels to the embeddings' device.

    Args:
        embeddings: (B, D) floating tensor.
        labels: (B,) integer labels (tensor, array or list).

    Returns:
        embeddings, labels as an int64 tensor on the embeddings' device.

    Raises:
        MiningError: wrong types, shapes or dtypes.
    """
    if not isinstance(embeddings, torch.Tensor):
        raise MiningError(f"embeddings must be a torch.Tensor of shape (B, D), got {type(embeddings).__name__}")
    if embeddings.ndim != 2 or not embeddings.is_floating_point():
        raise MiningError(f"embeddings must be a floating (B, D) tensor, got shape {tuple(embeddings.shape)} "
                          f"and dtype {embeddings.dtype}")
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
        raise MiningError(f"labels must have shape ({embeddings.shape[0]},) to match the embeddings, "
                          f"got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise MiningError(f"labels must be integers, got dtype {labels.dtype}")
    return embeddings, labels.to(device=embeddings.device, dtype=torch.int64)


def label_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, B) bool masks: ``positive[i, j]`` same label and i ≠ j; ``negative[i, j]`` different labels."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def empty_triplets(device) -> IndexTriplets:
    e = torch.empty(0, dtype=torch.int64, device=device)
    return e, e.clone(), e.clone()


class Miner:
    """Base class: :meth:`__call__` checks the batch, mines without gradients and checks the result.

    Subclasses implement :meth:`mine_triplets` on a detached (B, D) float tensor and int64 labels.

    Args:
        squared: use squared Euclidean distances (matters for margin conditions only).

    Attributes:
        last_num_triplets: how many triplets the last call returned.
    """

    name = "miner"

    def __init__(self, squared: bool = True):
        self.squared = bool(squared)
        self.last_num_triplets = 0

    def __call__(self, embeddings: torch.Tensor, labels) -> IndexTriplets:
        """Mine one batch.

        Args:
            embeddings: (B, D) embeddings.
            labels: (B,) integer labels.

        Returns:
            (anchor, positive, negative): three (T,) int64 tensors on the embeddings' device.
        """
        embeddings, labels = check_inputs(embeddings, labels)
        with torch.no_grad():
            x = embeddings.detach()
            if x.dtype in (torch.float16, torch.bfloat16):
                x = x.float()
            if x.shape[0] < 3:
                out = empty_triplets(x.device)
            else:
                out = self.mine_triplets(x, labels)
        check_triplets(out, labels)
        self.last_num_triplets = int(out[0].numel())
        return out

    def distances(self, x: torch.Tensor) -> torch.Tensor:
        """(B, B) distance matrix, squared when ``self.squared``."""
        return pairwise_distances(x, squared=self.squared)

    def mine_triplets(self, x: torch.Tensor, labels: torch.Tensor) -> IndexTriplets:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(squared={self.squared})"


def check_triplets(triplets, labels: torch.Tensor) -> None:
    """Check a miner's output: three 1-D int64 tensors of one length, valid (a, p, n) for ``labels``.

    Raises:
        MiningError: the output breaks the contract (a bug in the miner).
    """
    if not (isinstance(triplets, tuple) and len(triplets) == 3):
        raise MiningError("a miner must return a tuple (anchor, positive, negative)")
    a, p, n = triplets
    if any(t.dtype != torch.int64 or t.ndim != 1 for t in triplets) or not (a.shape == p.shape == n.shape):
        raise MiningError("a miner must return three 1-D int64 tensors of equal length, got "
                          f"{[(tuple(t.shape), t.dtype) for t in triplets]}")
    if a.numel() == 0:
        return
    ok = (a != p) & (labels[a] == labels[p]) & (labels[a] != labels[n])
    if not bool(ok.all()):
        raise MiningError("miner returned invalid triplets (anchor == positive, positive of another "
                          "class or negative of the anchor's class); this is a bug")


class GeneratorMixin:
    """A torch.Generator per device from one seed, or the global RNG when the seed is None."""

    def _init_generator(self, seed: int | None) -> None:
        self.seed = seed
        self._generators: dict[str, torch.Generator] = {}

    def _generator(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None:
            return None
        key = str(device)
        if key not in self._generators:
            g = torch.Generator(device=device)
            g.manual_seed(int(self.seed))
            self._generators[key] = g
        return self._generators[key]

    def random_choice(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One uniformly random True column per row of a (Q, B) bool mask.

        Returns:
            column: (Q,) int64 (meaningless where the row has no True), has: (Q,) bool.
        """
        scores = torch.rand(mask.shape, generator=self._generator(mask.device), device=mask.device)
        scores = scores.masked_fill(~mask, -1.0)
        return scores.argmax(dim=1), mask.any(dim=1)


def masked_argmin(values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column of the smallest value among the True entries of each row.

    Returns:
        column: (Q,) int64 (meaningless where the row has no True), has: (Q,) bool.
    """
    return values.masked_fill(~mask, float("inf")).argmin(dim=1), mask.any(dim=1)


def masked_argmax(values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column of the largest value among the True entries of each row (see :func:`masked_argmin`)."""
    return values.masked_fill(~mask, float("-inf")).argmax(dim=1), mask.any(dim=1)


def positive_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All ordered anchor–positive pairs (a ≠ p, same label), as two (Q,) int64 tensors."""
    pos, _ = label_masks(labels)
    a, p = pos.nonzero(as_tuple=True)
    return a, p
