"""The triplet loss (FaceNet eq. 2): [d(a,p) − d(a,n) + α]₊ over mined triplets."""

from __future__ import annotations

from typing import Any, Callable, Union

import torch
from torch import nn

from iznet.losses.base import LossError, as_index, check_embeddings, zero_loss
from iznet.utils.distances import pairwise_distances

__all__ = ["TripletLoss", "REDUCTIONS"]

REDUCTIONS = ("mean_active", "mean", "sum")
IndicesOrMiner = Union[None, tuple, Callable[[torch.Tensor, torch.Tensor], tuple]]


class TripletLoss(nn.Module):
    """Triplet margin loss on Euclidean distances between embeddings (squared by default, as FaceNet).

    Args:
        margin: α (FaceNet: 0.2 on squared distances between unit vectors).
        squared: use squared distances.
        reduction: "mean_active" (mean over the triplets with a non-zero loss, so easy triplets do
            not dilute the gradient), "mean" (over all triplets) or "sum".

    After each forward, ``last_stats`` holds ``num_triplets``, ``num_active`` (loss > 0) and
    ``active_share`` (num_active / num_triplets, 0 when there is none).

    >>> loss_fn = TripletLoss(margin=0.2)
    >>> x = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    >>> loss = loss_fn(x, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    >>> loss.ndim, loss_fn.last_stats["num_triplets"]
    (0, 48)
    """

    def __init__(self, margin: float = 0.2, squared: bool = True, reduction: str = "mean_active"):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise LossError(f"unknown reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}")
        if not margin >= 0:
            raise LossError(f"margin must be >= 0, got {margin!r}")
        self.margin = float(margin)
        self.squared = bool(squared)
        self.reduction = reduction
        self.last_stats: dict[str, Any] = {"num_triplets": 0, "num_active": 0, "active_share": 0.0}

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None,
                indices_tuple: IndicesOrMiner = None) -> torch.Tensor:
        """Loss over the triplets of a batch.

        Args:
            embeddings: (B, D).
            labels: (B,) integer labels; needed unless ``indices_tuple`` is a tuple.
            indices_tuple: (anchor, positive, negative) index tensors of equal length (T,); or a miner,
                called as ``miner(embeddings, labels)``; or None for every triplet in the batch.

        Returns:
            scalar loss; a zero that stays in the graph when there is no triplet.
        """
        embeddings, labels = check_embeddings(embeddings, labels)
        a, p, n = self._triplets(embeddings, labels, indices_tuple)
        if a.numel() == 0:
            self.last_stats = {"num_triplets": 0, "num_active": 0, "active_share": 0.0}
            return zero_loss(embeddings)
        d = pairwise_distances(embeddings, squared=self.squared)
        losses = torch.relu(d[a, p] - d[a, n] + self.margin)
        num_active = (losses > 0).sum()
        num = int(a.numel())
        active = int(num_active)  # the one host sync of a forward
        self.last_stats = {"num_triplets": num, "num_active": active, "active_share": active / num}
        if self.reduction == "sum":
            return losses.sum()
        if self.reduction == "mean":
            return losses.mean()
        return losses.sum() / num_active.clamp_min(1)  # no active triplet: 0 / 1, still in the graph

    def _triplets(self, embeddings, labels, indices_tuple):
        if indices_tuple is None or callable(indices_tuple):
            if labels is None:
                raise LossError("labels are needed to mine triplets; pass labels or an (a, p, n) tuple")
            if indices_tuple is None:
                from iznet.mining.all_triplets import AllTripletsMiner  # lazy: mining imports losses

                indices_tuple = AllTripletsMiner(squared=self.squared)
            indices_tuple = indices_tuple(embeddings, labels)
        if not isinstance(indices_tuple, (tuple, list)) or len(indices_tuple) != 3:
            raise LossError("indices_tuple must be (anchor, positive, negative), a miner, or None")
        a, p, n = (as_index(t, embeddings.device, name) for t, name in zip(indices_tuple, ("anchor", "positive", "negative")))
        if not (a.shape == p.shape == n.shape):
            raise LossError(f"anchor, positive and negative must have one length, got {a.shape[0]}, {p.shape[0]}, {n.shape[0]}")
        b = embeddings.shape[0]
        if a.numel():
            lo, hi = torch.stack([a, p, n]).aminmax()
            lo, hi = int(lo), int(hi)
            if lo < 0 or hi >= b:
                raise LossError(f"triplet indices must be in [0, {b}) for a batch of {b}, got [{lo}, {hi}]")
        return a, p, n

    def extra_repr(self) -> str:
        return f"margin={self.margin}, squared={self.squared}, reduction={self.reduction!r}"
