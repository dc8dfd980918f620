"""What the losses share: input checks, the index tuple, and a zero that stays in the graph."""

from __future__ import annotations

import torch

from iznet.errors import IznetError

__all__ = ["LossError", "zero_loss", "check_embeddings"]


class LossError(IznetError):
    """Bad input to a loss (shapes, dtypes, an index tuple of the wrong form) or bad loss arguments."""


def zero_loss(embeddings: torch.Tensor) -> torch.Tensor:
    """A scalar 0 connected to ``embeddings``: ``backward()`` works and gives zero gradients."""
    return (embeddings * 0).sum()


def check_embeddings(embeddings, labels=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Validate (B, D) embeddings and (B,) integer labels; move the labels to the embeddings' device.

    Raises:
        LossError: wrong types, shapes or dtypes.
    """
    if not isinstance(embeddings, torch.Tensor) or embeddings.ndim != 2 or not embeddings.is_floating_point():
        shape = tuple(embeddings.shape) if isinstance(embeddings, torch.Tensor) else type(embeddings).__name__
        raise LossError(f"embeddings must be a floating (B, D) tensor, got {shape}")
    if labels is None:
        return embeddings, None
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
        raise LossError(f"labels must have shape ({embeddings.shape[0]},), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise LossError(f"labels must be integers, got dtype {labels.dtype}")
    return embeddings, labels.to(device=embeddings.device, dtype=torch.int64)


def as_index(t, device: torch.device, name: str) -> torch.Tensor:
    """A 1-D int64 index tensor on ``device``."""
    t = torch.as_tensor(t, device=device)
    if t.ndim != 1 or t.is_floating_point() or t.dtype == torch.bool:
        raise LossError(f"{name} must be a 1-D integer index tensor, got shape {tuple(t.shape)}, dtype {t.dtype}")
    return t.to(torch.int64)
