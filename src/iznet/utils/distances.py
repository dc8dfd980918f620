"""Euclidean distances between embeddings, safe to differentiate where the distance is 0.

Embeddings are expected L2-normalised (the models output unit vectors), so distances lie in [0, 2] and
squared distances in [0, 4]; nothing here normalises. A squared distance is always named so.
"""

from __future__ import annotations

import torch

__all__ = ["pairwise_distances", "safe_sqrt", "row_distances"]


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt(x) with value 0 and gradient 0 where x == 0 (plain sqrt has an infinite gradient there).

    Args:
        x: tensor of non-negative values (squared distances).
    """
    zero = x <= 0
    # sqrt of a harmless 1 where x is 0, then zeroed: no inf·0 in the backward pass, in any dtype
    return torch.sqrt(torch.where(zero, torch.ones_like(x), x)) * (~zero)


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def pairwise_distances(x: torch.Tensor, y: torch.Tensor | None = None, squared: bool = False) -> torch.Tensor:
    """Euclidean distance matrix, computed in at least float32 (also under autocast).

    Uses ||x||² + ||y||² − 2 x·y (one matrix product), clamped at 0; when ``y`` is None the diagonal is
    exactly 0. Gradients are finite everywhere, also on the diagonal and between identical rows.
    A bf16 matrix product puts errors of a few thousandths on squared distances between unit vectors
    (margins are 0.2 and triplet losses are differences of distances), so autocast is switched off
    here and half-precision inputs are upcast.

    Args:
        x: (B, D) embeddings.
        y: (C, D) embeddings, or None for ``x`` itself.
        squared: return squared distances.

    Returns:
        (B, C) distances (squared when asked), float32 for half-precision inputs, else x's dtype.

    >>> pairwise_distances(torch.eye(2)).round(decimals=4)
    tensor([[0.0000, 1.4142],
            [1.4142, 0.0000]])
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        return _pairwise(_at_least_float32(x), None if y is None else _at_least_float32(y), squared)


def _pairwise(x: torch.Tensor, y: torch.Tensor | None, squared: bool) -> torch.Tensor:
    same = y is None
    y = x if same else y
    x_sq = (x * x).sum(dim=1, keepdim=True)
    y_sq = x_sq if same else (y * y).sum(dim=1, keepdim=True)
    d2 = (x_sq + y_sq.t() - 2.0 * (x @ y.t())).clamp_min(0.0)
    if same:
        eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
        d2 = d2.masked_fill(eye, 0.0)
    return d2 if squared else safe_sqrt(d2)


def row_distances(x: torch.Tensor, y: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """Distance between matching rows, ||x_i − y_i||.

    Args:
        x, y: (B, D) embeddings.
        squared: return squared distances.

    Returns:
        (B,) distances (squared when asked).
    """
    d2 = ((_at_least_float32(x) - _at_least_float32(y)) ** 2).sum(dim=1)
    return d2 if squared else safe_sqrt(d2)
