"""Identity classification with an additive cosine margin (CosFace / AM-softmax), as a training signal.

Each training person ``c`` gets a learned direction ``w_c`` on the unit sphere. For an embedding ``f``
(unit length, as every embedder here returns) and its person ``y``, the logits are

    z_c = s · (cos θ_c − m · [c = y]),     cos θ_c = f · w_c / |w_c|

and the loss is the cross-entropy of ``z`` with ``y``, averaged over the batch. The margin ``m`` asks the
true person's cosine to beat every other person's by ``m`` before the loss lets go; the scale ``s`` makes
the softmax sharp enough to reach small losses with cosines in [−1, 1].

It is used as a second term next to the triplet loss (``--id-weight``) or alone (``--loss cosface``): the
triplet loss compares the few people in a batch, this term compares every image with *all* training
people at every step, which is a denser signal when a person has few photos. Only the embedder is kept
after training; the class directions are a training device and are not part of ``model.pt``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from iznet.losses.base import LossError, check_embeddings, zero_loss

__all__ = ["CosFaceLoss"]


class CosFaceLoss(nn.Module):
    """Additive-cosine-margin softmax over ``num_classes`` learned class directions.

    Args:
        dim: embedding size.
        num_classes: number of training people (labels are ``0 .. num_classes-1``).
        scale: ``s`` above (CosFace uses 30 for 512-d; 30 suits 128-d too).
        margin: ``m`` above, in cosine units (CosFace: 0.35). 0 gives the plain normalised softmax.

    >>> loss = CosFaceLoss(dim=4, num_classes=3)
    >>> f = torch.nn.functional.normalize(torch.randn(5, 4), dim=1)
    >>> float(loss(f, torch.tensor([0, 1, 2, 0, 1]))) > 0
    True
    """

    def __init__(self, dim: int, num_classes: int, scale: float = 30.0, margin: float = 0.35):
        super().__init__()
        if not (isinstance(dim, int) and dim >= 1) or not (isinstance(num_classes, int) and num_classes >= 2):
            raise LossError(f"dim must be >= 1 and num_classes >= 2, got dim={dim!r}, num_classes={num_classes!r}")
        if not (math.isfinite(scale) and scale > 0) or not (math.isfinite(margin) and 0 <= margin < 1):
            raise LossError(f"scale must be > 0 and margin in [0, 1), got scale={scale}, margin={margin}")
        self.dim, self.num_classes = dim, num_classes
        self.scale, self.margin = float(scale), float(margin)
        self.weight = nn.Parameter(F.normalize(torch.randn(num_classes, dim), dim=1))

    def cosines(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, num_classes) cosines between the (renormalised) embeddings and every class direction."""
        f = F.normalize(embeddings, dim=1)
        return f @ F.normalize(self.weight, dim=1).t()

    def forward(self, embeddings: torch.Tensor, labels) -> torch.Tensor:
        """Args:
            embeddings: (B, dim) embeddings (normalised here again, so any length works).
            labels: (B,) integer people in ``[0, num_classes)``.

        Returns:
            scalar loss, the mean cross-entropy over the batch.
        """
        embeddings, labels = check_embeddings(embeddings, labels)
        if embeddings.shape[1] != self.dim:
            raise LossError(f"embeddings must be (B, {self.dim}), got {tuple(embeddings.shape)}")
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise LossError(f"labels must lie in [0, {self.num_classes}), got "
                            f"{int(labels.min())}..{int(labels.max())}")
        if len(labels) == 0:
            return zero_loss(embeddings) + 0 * self.weight.sum()
        cos = self.cosines(embeddings.to(self.weight.dtype))
        logits = self.scale * (cos - self.margin * F.one_hot(labels, self.num_classes).to(cos.dtype))
        self.last_stats = {"id_acc": float((cos.detach().argmax(1) == labels).float().mean())}
        return F.cross_entropy(logits, labels)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_classes={self.num_classes}, scale={self.scale}, margin={self.margin}"
