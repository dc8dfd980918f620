"""The contrastive (pair) loss of seeds/002 (Hadsell, Chopra & LeCun 2006, without the ½ factors).

For a pair at Euclidean distance D (not squared):

    L = D²                 if the two are the same person,
    L = max(0, m − D)²     if not,

so different people only count while they are closer than the margin m.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from iznet.losses.base import LossError, as_index, check_embeddings, zero_loss
from iznet.utils.distances import row_distances, safe_sqrt

__all__ = ["ContrastiveLoss", "contrastive_loss"]


def contrastive_loss(d2: torch.Tensor, same: torch.Tensor, margin: float) -> torch.Tensor:
    """Per-pair contrastive loss from squared distances.

    Args:
        d2: (P,) squared distances.
        same: (P,) bool, True for same-person pairs.
        margin: m, on the (non-squared) distance.

    Returns:
        (P,) losses.
    """
    neg = torch.relu(margin - safe_sqrt(d2)) ** 2
    return torch.where(same, d2, neg)


class ContrastiveLoss(nn.Module):
    """Contrastive loss over the pairs of a batch (all of them, or the ones given).

    Args:
        margin: m on the Euclidean distance (unit vectors are 0..2 apart; two random 128-d unit vectors
            are about √2 apart).
        reduction: "mean" over pairs or "sum" (the seeds' form). With all pairs of a P×K batch the
            negatives far outnumber the positives; pass chosen pairs to balance them.

    After each forward, ``last_stats`` holds ``num_pairs``, ``num_positive``, ``num_negative`` and
    ``num_active_negative`` (negatives closer than the margin).

    >>> loss_fn = ContrastiveLoss(margin=1.0)
    >>> x = torch.nn.functional.normalize(torch.randn(6, 8), dim=1)
    >>> loss = loss_fn(x, torch.tensor([0, 0, 1, 1, 2, 2]))
    >>> loss_fn.last_stats["num_pairs"], loss_fn.last_stats["num_positive"]
    (15, 3)
    """

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise LossError(f"unknown reduction {reduction!r}; choose 'mean' or 'sum'")
        if not margin > 0:
            raise LossError(f"margin must be > 0, got {margin!r}")
        self.margin = float(margin)
        self.reduction = reduction
        self.last_stats: dict[str, Any] = {}

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, pairs=None) -> torch.Tensor:
        """Loss over pairs of one batch.

        Args:
            embeddings: (B, D).
            labels: (B,) integer labels; a pair is "same" when its labels match.
            pairs: (first, second) index tensors of length P, or None for all B(B−1)/2 pairs i < j.

        Returns:
            scalar loss; a zero in the graph when there is no pair.
        """
        embeddings, labels = check_embeddings(embeddings, labels)
        b = embeddings.shape[0]
        if pairs is None:
            i, j = torch.triu_indices(b, b, offset=1, device=embeddings.device)
        else:
            if not isinstance(pairs, (tuple, list)) or len(pairs) != 2:
                raise LossError("pairs must be a (first, second) tuple of index tensors or None")
            i, j = (as_index(t, embeddings.device, name) for t, name in zip(pairs, ("first", "second")))
            if i.shape != j.shape:
                raise LossError(f"first and second must have one length, got {i.shape[0]} and {j.shape[0]}")
            if i.numel():
                lo, hi = torch.stack([i, j]).aminmax()
                if int(lo) < 0 or int(hi) >= b:
                    raise LossError(f"pair indices must be in [0, {b}), got [{int(lo)}, {int(hi)}]")
        return self.forward_pairs(embeddings[i], embeddings[j], labels[i] == labels[j], _anchor=embeddings)

    def forward_pairs(self, x1: torch.Tensor, x2: torch.Tensor, same: torch.Tensor,
                      _anchor: torch.Tensor | None = None) -> torch.Tensor:
        """Loss over explicit pairs (e.g. from :class:`iznet.sampling.UniformPairSampler`).

        Args:
            x1, x2: (P, D) embeddings of the two sides.
            same: (P,) bool (or 0/1), True for same-person pairs.

        Returns:
            scalar loss.
        """
        x1, _ = check_embeddings(x1)
        x2, _ = check_embeddings(x2)
        same = torch.as_tensor(same, device=x1.device)
        if x1.shape != x2.shape or same.shape != x1.shape[:1]:
            raise LossError(f"x1 {tuple(x1.shape)}, x2 {tuple(x2.shape)} and same {tuple(same.shape)} do not match")
        same = same.to(torch.bool)
        if x1.shape[0] == 0:
            self.last_stats = {"num_pairs": 0, "num_positive": 0, "num_negative": 0, "num_active_negative": 0}
            return zero_loss(_anchor if _anchor is not None else x1) + zero_loss(x2)
        d2 = row_distances(x1, x2, squared=True)
        losses = contrastive_loss(d2, same, self.margin)
        counts = torch.stack([same.sum(), (~same & (losses > 0)).sum()]).tolist()
        num = int(same.numel())
        self.last_stats = {"num_pairs": num, "num_positive": counts[0], "num_negative": num - counts[0],
                           "num_active_negative": counts[1]}
        return losses.sum() if self.reduction == "sum" else losses.mean()

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"
