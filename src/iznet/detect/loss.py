"""The YOLOv1 multi-part loss (Redmon et al. 2016, Eq. 3) for one class, on anchored predictors.

Raw network outputs ``t`` (N, S, S, B, 5) are read as ``conf = σ(t0)``, ``x = σ(t1)``, ``y = σ(t2)`` and
``√w = t3``, ``√h = t4``: like YOLOv1, the network regresses the square roots of width and height
linearly, which is exactly what the Eq. 3 size term compares (no square root of a prediction, and no
saturating activation that could freeze a size; a sigmoid there was seen to stick at 1). Decoding clamps
``√w, √h`` to [0, 1].

With 1obj the responsible predictors (conf = 1 in the target, see :mod:`iznet.detect.targets`)::

    xy    = λcoord Σ 1obj [(x - x̂)² + (y - ŷ)²]
    wh    = λcoord Σ 1obj [(√w - √ŵ)² + (√h - √ĥ)²]
    obj   =        Σ 1obj (C - Ĉ)²        Ĉ = IoU(predicted box, face), detached ("iou"), or 1 ("one")
    noobj = λnoobj Σ 1noobj C²

Each term is summed over cells and predictors and divided by the batch size (a per-image sum, as in the
paper); ``loss`` is their sum.
"""

from __future__ import annotations

import torch
from torch import nn

from iznet.detect.targets import to_xyxy


def activate(raw: torch.Tensor) -> torch.Tensor:
    """Raw outputs (N, S, S, B, 5 or 15) → target layout ``conf, x, y, w, h`` (w, h relative to the image).

    Landmark channels (5..14, see :mod:`iznet.detect.landmarks`) are not part of the result."""
    raw = raw[..., :5].float()
    return torch.cat([torch.sigmoid(raw[..., :3]), raw[..., 3:].clamp(0, 1) ** 2], dim=-1)


def paired_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of matching rows of two (..., 4) ``x1, y1, x2, y2`` tensors; shape (...)."""
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    return inter / (area_a + area_b - inter).clamp(min=1e-9)


CONF_TARGETS = ("iou", "one")  # what the object confidence learns: the IoU of its box, or 1


class YoloLoss(nn.Module):
    """YOLOv1 Eq. 3 for faces, every term returned separately.

    Args:
        lambda_coord: weight of the two coordinate terms (the write-up's best model used 25; the paper 5).
        lambda_noobj: weight of the no-object confidence term (0.5 in both).
        conf_target: ``"iou"`` (the paper: the object confidence learns the IoU of the predicted box with
            the face, detached) or ``"one"`` (it learns 1).

    Example:
        >>> loss = YoloLoss()
        >>> out = loss(torch.zeros(2, 13, 13, 2, 5), torch.zeros(2, 13, 13, 2, 5))
        >>> sorted(out)
        ['loss', 'noobj', 'obj', 'wh', 'xy']
    """

    def __init__(self, lambda_coord: float = 25.0, lambda_noobj: float = 0.5, conf_target: str = "iou"):
        super().__init__()
        if conf_target not in CONF_TARGETS:
            raise ValueError(f"conf_target must be 'iou' or 'one', got {conf_target!r}")
        self.lambda_coord = float(lambda_coord)
        self.lambda_noobj = float(lambda_noobj)
        self.conf_target = conf_target

    def forward(self, raw: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Compute the loss.

        Args:
            raw: (N, S, S, B, 5) raw network outputs (before :func:`activate`).
            target: (N, S, S, B, 5) encoded targets of the same shape.

        Returns:
            dict of scalar tensors ``loss`` (the total), ``xy``, ``wh``, ``obj``, ``noobj``.
        """
        if raw.shape != target.shape or raw.dim() != 5 or raw.shape[-1] != 5:
            raise ValueError(f"raw {tuple(raw.shape)} and target {tuple(target.shape)} must both be (N, S, S, B, 5)")
        target = target.to(device=raw.device, dtype=torch.float32)
        raw = raw.float()
        s = torch.sigmoid(raw[..., :3])
        conf, xy, sqrt_wh = s[..., 0], s[..., 1:3], raw[..., 3:5]
        obj = target[..., 0] > 0.5
        objf = obj.float()
        n = max(raw.shape[0], 1)

        xy_term = (objf[..., None] * (xy - target[..., 1:3]) ** 2).sum()
        wh_term = (objf[..., None] * (sqrt_wh - target[..., 3:5].clamp(min=0).sqrt()) ** 2).sum()
        if self.conf_target == "iou":
            with torch.no_grad():
                pred = torch.cat([s, sqrt_wh.clamp(0, 1) ** 2], dim=-1)
                conf_hat = paired_iou(to_xyxy(pred), to_xyxy(target))
        else:
            conf_hat = torch.ones_like(conf)
        obj_term = (objf * (conf - conf_hat) ** 2).sum()
        noobj_term = ((1.0 - objf) * conf ** 2).sum()

        parts = {
            "xy": self.lambda_coord * xy_term / n,
            "wh": self.lambda_coord * wh_term / n,
            "obj": obj_term / n,
            "noobj": self.lambda_noobj * noobj_term / n,
        }
        parts["loss"] = parts["xy"] + parts["wh"] + parts["obj"] + parts["noobj"]
        return parts


__all__ = ["YoloLoss", "activate", "paired_iou"]
