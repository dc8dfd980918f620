"""Box IoU and non-maximum suppression on tensors.

The same results as ``torchvision.ops.box_iou`` and ``torchvision.ops.nms`` (tested against them), without
importing torchvision: its import takes over a second, most of ``iznet label``'s start-up otherwise. NMS is
a greedy loop on the CPU either way; it runs the numpy implementation (:func:`iznet.detect.numpy_post.nms`)
that the torch-free label path uses.
"""

from __future__ import annotations

import torch


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4), ``x1, y1, x2, y2``; (N, M)."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes kept by greedy non-maximum suppression, highest score first.

    A box is dropped when its IoU with a kept, higher-scoring box is above ``iou_threshold``.

    Args:
        boxes: (N, 4) ``x1, y1, x2, y2``.
        scores: (N,).
        iou_threshold: overlap above which the lower-scoring box goes.

    Returns:
        int64 (K,) indices into ``boxes``, by decreasing score.
    """
    from iznet.detect.numpy_post import nms as nms_arrays  # the one implementation (numpy)

    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    keep = nms_arrays(boxes.detach().float().cpu().numpy(), scores.detach().float().cpu().numpy(), iou_threshold)
    return torch.from_numpy(keep).to(boxes.device)
