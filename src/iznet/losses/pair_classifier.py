"""DeepFace's verification head (§4.2): a learned weighting of per-dimension differences → one logit.

Two metrics, both followed by a learned weight per dimension and a bias (``nn.Linear(dim, 1)``):

- "abs": the Siamese head, feature |f1 − f2|.
- "chi2": the weighted χ², feature (f1 − f2)² / (f1 + f2). DeepFace's features are non-negative; ours are
  signed unit vectors (components in [−1, 1]) where f1 + f2 can be 0 or negative. So χ² is applied to
  u = (f + 1)/2 ∈ [0, 1]: (u1 − u2)² / (u1 + u2 + eps) = ½(f1 − f2)² / (f1 + f2 + 2 + 2·eps), which is
  finite, non-negative and smooth everywhere on the unit sphere.

The weights start at −1/dim and the bias at 0, so before training the logit is minus the mean feature,
a (negated) distance: closer pairs already score higher.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from iznet.losses.base import LossError

__all__ = ["PairClassifier", "PairClassificationLoss", "METRICS"]

METRICS = ("abs", "chi2")


class PairClassifier(nn.Module):
    """Maps two embeddings to a "same person" logit.

    Args:
        dim: embedding size.
        metric: "abs" or "chi2" (see the module docstring).
        eps: keeps the χ² denominator away from 0.

    >>> head = PairClassifier(dim=4, metric="chi2")
    >>> f = torch.nn.functional.normalize(torch.randn(3, 4), dim=1)
    >>> head(f, f.flip(0)).shape
    torch.Size([3])
    """

    def __init__(self, dim: int = 128, metric: str = "abs", eps: float = 1e-6):
        super().__init__()
        if metric not in METRICS:
            raise LossError(f"unknown pair metric {metric!r}; choose one of {', '.join(METRICS)}")
        if not (isinstance(dim, int) and dim >= 1):
            raise LossError(f"dim must be an int >= 1, got {dim!r}")
        self.dim = dim
        self.metric = metric
        self.eps = float(eps)
        self.fc = nn.Linear(dim, 1)
        nn.init.constant_(self.fc.weight, -1.0 / dim)
        nn.init.zeros_(self.fc.bias)

    def pair_features(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        """(P, dim) per-dimension difference features of the metric."""
        if f1.ndim != 2 or f1.shape != f2.shape or f1.shape[1] != self.dim:
            raise LossError(f"f1 and f2 must both be (P, {self.dim}), got {tuple(f1.shape)} and {tuple(f2.shape)}")
        if self.metric == "abs":
            return (f1 - f2).abs()
        u1, u2 = (f1 + 1) / 2, (f2 + 1) / 2
        return (u1 - u2) ** 2 / (u1 + u2 + self.eps)

    def forward(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        """Logits.

        Args:
            f1, f2: (P, dim) embeddings of the two sides.

        Returns:
            (P,) logits; sigmoid(logit) is the probability of "same person".
        """
        return self.fc(self.pair_features(f1, f2)).squeeze(1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, metric={self.metric!r}"


class PairClassificationLoss(nn.Module):
    """Binary cross-entropy with logits on (logit, same), averaged over pairs.

    Args:
        pos_weight: optional weight of the positive class (e.g. #negatives/#positives when unbalanced).
    """

    def __init__(self, pos_weight: float | None = None):
        super().__init__()
        self.pos_weight = None if pos_weight is None else float(pos_weight)

    def forward(self, logits: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        """Args:
            logits: (P,) from :class:`PairClassifier`.
            same: (P,) bool or 0/1.

        Returns:
            scalar loss.
        """
        same = torch.as_tensor(same, device=logits.device)
        if logits.ndim != 1 or same.shape != logits.shape:
            raise LossError(f"logits and same must both be (P,), got {tuple(logits.shape)} and {tuple(same.shape)}")
        pw = None if self.pos_weight is None else torch.tensor(self.pos_weight, dtype=logits.dtype, device=logits.device)
        return F.binary_cross_entropy_with_logits(logits, same.to(logits.dtype), pos_weight=pw)
