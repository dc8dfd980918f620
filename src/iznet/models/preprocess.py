"""The one input normalisation every embedding network expects."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from iznet.errors import ModelError


def preprocess(images: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """uint8 RGB images -> float network input ``(x / 255 - 0.5) / 0.5`` in [-1, 1], resized to ``size``.

    Resizing (only when needed) is bilinear with antialiasing, straight to ``size x size`` (no aspect
    ratio kept: crop first). The result is float32 on the images' device.

    Args:
        images: (B, 3, H, W) or (3, H, W) uint8 tensor, RGB.
        size: output side; ``None`` keeps H x W.

    Returns:
        (B, 3, size, size) or (3, size, size) float32 tensor (same rank as the input).

    Raises:
        ModelError: not uint8, or not 3 channels in dimension -3.

    >>> preprocess(torch.full((1, 3, 8, 8), 255, dtype=torch.uint8), 4).shape
    torch.Size([1, 3, 4, 4])
    """
    if images.dtype != torch.uint8:
        raise ModelError(f"preprocess expects uint8 images (0..255), got {images.dtype}; for float images in "
                         "[0, 1] use (x * 255).round().to(torch.uint8) first")
    if images.ndim not in (3, 4) or images.shape[-3] != 3:
        raise ModelError(f"preprocess expects (B, 3, H, W) or (3, H, W) RGB images, got shape {tuple(images.shape)}")
    single = images.ndim == 3
    x = images.unsqueeze(0) if single else images
    x = x.float().div_(255.0)
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        if size < 1:
            raise ModelError(f"preprocess size must be positive, got {size}")
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    x = x.sub_(0.5).div_(0.5)
    return x[0] if single else x


def check_zooms(zooms: Any, where: str = "zooms") -> tuple[float, ...]:
    """``zooms`` as a tuple of floats, each in (0.5, 1): the test-time views of :func:`zoom_view`.

    Raises:
        ModelError: a value that is not a number in that range (named, with ``where``).
    """
    if zooms is None:
        return ()
    try:
        out = tuple(float(z) for z in zooms)
    except (TypeError, ValueError):
        raise ModelError(f"{where}: expected a list of numbers in (0.5, 1), got {zooms!r}") from None
    bad = [z for z in out if not 0.5 < z < 1.0]
    if bad:
        raise ModelError(f"{where}: zoom {bad[0]} is outside (0.5, 1); a zoom is the share of the crop's side kept")
    return out


def zoom_view(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """The centre ``zoom`` share of preprocessed crops (B, C, S, S), resized back to S × S (bilinear).

    One test-time view of an embedder (``NetworkEmbedder(zooms=...)``): a slightly tighter face. The kept
    square is ``round(S * zoom)`` pixels, centred (its offset rounded down), so PyTorch and the exported ONNX
    graph cut the same pixels.

    >>> zoom_view(torch.zeros(1, 3, 112, 112), 0.88).shape
    torch.Size([1, 3, 112, 112])
    """
    side = int(x.shape[-1])
    keep = int(round(side * float(zoom)))
    o = (side - keep) // 2
    y = x[..., o:o + keep, o:o + keep]
    return F.interpolate(y, size=(side, side), mode="bilinear", align_corners=False)


def sum_of_views(model: Any, x: torch.Tensor, tta: bool, zooms: tuple[float, ...] = (),
                 prepare: Any = None) -> torch.Tensor:
    """The sum of the unit embeddings of every test-time view of preprocessed crops ``x``: the crops, each
    :func:`zoom_view` of ``zooms``, and with ``tta`` the mirror of each (not renormalised). What
    ``NetworkEmbedder`` computes and the exported ONNX graph holds; ``prepare`` (e.g. a memory layout) is
    applied to each view before the network."""
    e = None
    for v in [x] + [zoom_view(x, z) for z in zooms]:
        if prepare is not None:
            v = prepare(v)
        u = F.normalize(model(v).float(), p=2.0, dim=1, eps=1e-12)
        if tta:
            u = u + F.normalize(model(torch.flip(v, dims=[3])).float(), p=2.0, dim=1, eps=1e-12)
        e = u if e is None else e + u
    return e
