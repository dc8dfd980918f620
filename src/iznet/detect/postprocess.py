"""From network outputs to ``Detections``: activate, decode, confidence threshold, NMS, top-k, un-letterbox.

Defaults are the write-up's (section 4): NMS at IoU 0.4, at most 12 boxes, confidence ≥ 0.3.
"""

from __future__ import annotations

from typing import Sequence

import torch
from iznet.detect.ops import nms

from iznet.detect.landmarks import landmark_points
from iznet.detect.letterbox import Letterbox
from iznet.detect.loss import activate
from iznet.detect.results import Detections
from iznet.detect.settings import PostprocessConfig  # noqa: F401 - re-exported
from iznet.detect.targets import decode


def select(boxes: torch.Tensor, scores: torch.Tensor, config: PostprocessConfig = PostprocessConfig()
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Threshold, NMS and top-k for one image.

    Args:
        boxes: (M, 4) ``x1, y1, x2, y2``.
        scores: (M,).

    Returns:
        kept boxes (K, 4) and scores (K,), sorted by score, K ≤ ``config.max_detections``.
    """
    keep = select_indices(boxes, scores, config)
    return boxes[keep].float(), scores[keep].float()


def select_indices(boxes: torch.Tensor, scores: torch.Tensor, config: PostprocessConfig = PostprocessConfig()
                   ) -> torch.Tensor:
    """The indices :func:`select` keeps, in its order (so that landmarks can follow their boxes)."""
    idx = torch.nonzero(scores >= config.conf_threshold).reshape(-1)
    keep = nms(boxes[idx].float(), scores[idx].float(), config.iou_threshold)[: config.max_detections]
    return idx[keep]


def postprocess(raw: torch.Tensor, image_size: int, config: PostprocessConfig = PostprocessConfig(),
                letterboxes: Sequence[Letterbox | None] | None = None) -> list[Detections]:
    """Raw network outputs → one :class:`Detections` per image.

    Args:
        raw: (N, S, S, B, 5) raw outputs of a detector, or (N, S, S, B, 15) with landmarks (the
            :class:`Detections` then carry them).
        image_size: side of the square network input in pixels.
        config: thresholds.
        letterboxes: per image, how it was placed in the input; boxes are mapped back to the original
            image. ``None`` keeps input-pixel coordinates.

    Returns:
        list of N :class:`Detections` (on the CPU).
    """
    boxes, scores = decode(activate(raw.detach()), image_size)
    points = landmark_points(raw.detach(), boxes)
    out = []
    for i in range(raw.shape[0]):
        keep = select_indices(boxes[i], scores[i], config)
        b, s = boxes[i][keep].float(), scores[i][keep].float()
        p = points[i][keep] if points is not None else None
        lb = letterboxes[i] if letterboxes is not None else None
        if lb is not None:
            b = lb.to_original(b)
            p = lb.points_to_original(p) if p is not None else None
            size = (lb.width, lb.height)
        else:
            size = (image_size, image_size)
        out.append(Detections(b.cpu(), s.cpu(), size, None if p is None else p.cpu()))
    return out
