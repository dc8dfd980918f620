"""YOLO target encoding and decoding on an S×S grid with B anchors per cell.

Tensor layout (shared by targets, activated predictions and the loss), shape ``(N, S, S, B, 5)``
indexed ``[n, row, col, anchor, k]`` with ``k`` = ``conf, x, y, w, h``:

- ``conf``: 1 for the responsible predictor of a face, else 0 (targets); a probability (predictions).
- ``x, y``: the box centre as an offset inside its cell, in [0, 1) (``x`` along columns).
- ``w, h``: box width and height relative to the (square) input image, in (0, 1].

Anchors are aspect ratios ``(w, h)`` only (the write-up's 1:1 and 1:1.15 w:h); they carry no size, so
they decide which predictor of a cell answers for a face and the box size stays relative to the image.

Assignment rule: a face goes to the cell containing its centre and to the free anchor of that cell whose
aspect ratio is closest to the face's (distance ``|log(w/h) - log(aw/ah)|``). Faces are placed largest
first; when a face's preferred anchor is taken it gets the next-closest free one, and when every anchor of
the cell is taken the face is dropped from the targets (counted by :func:`encode_targets_with_stats`).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

DEFAULT_ANCHORS: tuple[tuple[float, float], ...] = ((1.0, 1.0), (1.0, 1.15))


def anchor_preference(w: float, h: float, anchors: Sequence[tuple[float, float]]) -> list[int]:
    """Anchor indices ordered from the closest aspect ratio to ``w:h`` to the farthest."""
    r = math.log(max(w, 1e-9) / max(h, 1e-9))
    dist = [abs(r - math.log(aw / ah)) for aw, ah in anchors]
    return sorted(range(len(anchors)), key=lambda i: (dist[i], i))


def encode_targets_with_stats(boxes_list: Sequence[torch.Tensor], grid: int = 13,
                              anchors: Sequence[tuple[float, float]] = DEFAULT_ANCHORS,
                              image_size: int = 416) -> tuple[torch.Tensor, int]:
    """Like :func:`encode_targets`, also returning how many faces were dropped (cell full)."""
    if grid < 1 or image_size < 1:
        raise ValueError(f"grid ({grid}) and image_size ({image_size}) must be positive")
    n_anchors = len(anchors)
    target = torch.zeros(len(boxes_list), grid, grid, n_anchors, 5)
    dropped = 0
    cell = image_size / grid
    for n, boxes in enumerate(boxes_list):
        boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        if boxes.numel() == 0:
            continue
        boxes = boxes.clamp(0, image_size)
        w = boxes[:, 2] - boxes[:, 0]
        h = boxes[:, 3] - boxes[:, 1]
        keep = (w > 0) & (h > 0)
        boxes, w, h = boxes[keep], w[keep], h[keep]
        for i in torch.argsort(w * h, descending=True, stable=True).tolist():
            cx = float(boxes[i, 0] + boxes[i, 2]) / 2
            cy = float(boxes[i, 1] + boxes[i, 3]) / 2
            col = min(int(cx / cell), grid - 1)
            row = min(int(cy / cell), grid - 1)
            for a in anchor_preference(float(w[i]), float(h[i]), anchors):
                if target[n, row, col, a, 0] == 0:
                    target[n, row, col, a] = torch.tensor([
                        1.0, cx / cell - col, cy / cell - row, float(w[i]) / image_size, float(h[i]) / image_size])
                    break
            else:
                dropped += 1
    return target, dropped


def encode_targets(boxes_list: Sequence[torch.Tensor], grid: int = 13,
                   anchors: Sequence[tuple[float, float]] = DEFAULT_ANCHORS,
                   image_size: int = 416) -> torch.Tensor:
    """Encode ground-truth boxes into YOLO targets.

    Args:
        boxes_list: one (K_n, 4) tensor of ``x1, y1, x2, y2`` pixel boxes per image (K_n may be 0), in the
            coordinates of the square ``image_size`` × ``image_size`` network input.
        grid: S, cells per side.
        anchors: B aspect ratios ``(w, h)``.
        image_size: side of the square input in pixels.

    Returns:
        (N, S, S, B, 5) float32 targets, layout in the module docstring.

    Example:
        >>> t = encode_targets([torch.tensor([[0., 0., 32., 37.]])], grid=13, image_size=416)
        >>> [round(v, 4) for v in t[0, 0, 0, 1].tolist()]  # a 32x37 face goes to the 1:1.15 anchor
        [1.0, 0.5, 0.5781, 0.0769, 0.0889]
    """
    return encode_targets_with_stats(boxes_list, grid, anchors, image_size)[0]


def cell_offsets(grid: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Column and row index of every cell, each shaped (S, S, 1) to broadcast over anchors."""
    idx = torch.arange(grid, device=device, dtype=torch.float32)
    rows, cols = torch.meshgrid(idx, idx, indexing="ij")
    return cols[..., None], rows[..., None]


def to_xyxy(pred: torch.Tensor, image_size: float = 1.0) -> torch.Tensor:
    """Boxes of every predictor as ``x1, y1, x2, y2``.

    Args:
        pred: (N, S, S, B, 5) tensor in target layout (``conf, x, y, w, h``).
        image_size: pixels per unit of the output (1.0 gives coordinates relative to the image).

    Returns:
        (N, S, S, B, 4) boxes.
    """
    grid = pred.shape[1]
    cols, rows = cell_offsets(grid, pred.device)
    cx = (pred[..., 1] + cols) / grid
    cy = (pred[..., 2] + rows) / grid
    half_w, half_h = pred[..., 3] / 2, pred[..., 4] / 2
    return torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=-1) * image_size


def decode(predictions: torch.Tensor, image_size: int = 416) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn target-layout predictions (or targets) into flat boxes and scores.

    The inverse of :func:`encode_targets` on the responsible predictors: boxes whose score is 1 in an
    encoded target are the encoded faces.

    Args:
        predictions: (N, S, S, B, 5) in target layout (use :func:`iznet.detect.loss.activate` on raw
            network outputs first).
        image_size: side of the square input in pixels.

    Returns:
        ``boxes`` (N, S*S*B, 4) ``x1, y1, x2, y2`` in input pixels and ``scores`` (N, S*S*B).
    """
    if predictions.dim() != 5 or predictions.shape[-1] != 5 or predictions.shape[1] != predictions.shape[2]:
        raise ValueError(f"expected (N, S, S, B, 5) predictions, got {tuple(predictions.shape)}")
    n = predictions.shape[0]
    boxes = to_xyxy(predictions.float(), float(image_size)).reshape(n, -1, 4)
    return boxes, predictions[..., 0].float().reshape(n, -1)
