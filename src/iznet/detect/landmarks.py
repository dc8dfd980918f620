"""Five facial landmarks per detected face: encoding, decoding, loss and error.

Points, in this order (the order YuNet and the insightface template use): the eye on the image's left, the
other eye, the nose tip, the mouth corner on the image's left, the other mouth corner.

Encoding (relative to the predictor's cell and anchor through its box): a predictor whose box has centre
``(cx, cy)`` and size ``(w, h)`` encodes point ``(px, py)`` as ``u = (px - cx) / w``, ``v = (py - cy) / h``;
the 10 raw landmark channels of the network (see :mod:`iznet.detect.model`) regress ``u1, v1, …, u5, v5``
linearly. Decoding uses the same predictor's *decoded* box, so the points follow whatever box the detector
gives, at any input side and through test-time augmentation. A mirrored input mirrors the points and swaps
left and right (:data:`FLIP_ORDER`).

The loss is a smooth-L1 (Huber) term on ``u, v`` of the predictors that answer for a labelled face (a robust
regression: a teacher's occasional wrong point costs linearly, not quadratically).
"""

from __future__ import annotations

import torch
from torch import nn

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")  # "left" = image left
FLIP_ORDER = (1, 0, 2, 4, 3)  # which point becomes which under a horizontal mirror


def box_centre_size(xyxy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(centre (..., 2), size (..., 2))`` of ``x1, y1, x2, y2`` boxes (..., 4)."""
    return (xyxy[..., :2] + xyxy[..., 2:]) / 2, (xyxy[..., 2:] - xyxy[..., :2])


def encode_landmarks(points: torch.Tensor, xyxy: torch.Tensor) -> torch.Tensor:
    """Points (..., 5, 2) in pixels → ``u, v`` offsets (..., 10) relative to boxes (..., 4) in the same pixels."""
    centre, size = box_centre_size(xyxy.float())
    return ((points.float() - centre[..., None, :]) / size[..., None, :].clamp(min=1e-6)).flatten(-2)


def decode_landmarks(uv: torch.Tensor, xyxy: torch.Tensor) -> torch.Tensor:
    """Offsets (..., 10) and boxes (..., 4) → points (..., 5, 2) in the boxes' pixels."""
    centre, size = box_centre_size(xyxy.float())
    return centre[..., None, :] + uv.float().unflatten(-1, (5, 2)) * size[..., None, :]


def flip_landmarks(points: torch.Tensor, side: float) -> torch.Tensor:
    """Points (..., 5, 2) found on a mirrored ``side``-wide image → points on the original image."""
    out = points[..., list(FLIP_ORDER), :].clone()
    out[..., 0] = side - out[..., 0]
    return out


def landmark_points(raw: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor | None:
    """Decoded points of every predictor, or None when ``raw`` has no landmark channels.

    Args:
        raw: (N, S, S, B, 15) raw network outputs (channels 5..14 are the landmarks).
        boxes: (N, S*S*B, 4) the same predictors' decoded boxes (:func:`iznet.detect.targets.decode`).

    Returns:
        (N, S*S*B, 5, 2) points in the boxes' pixels.
    """
    if raw.shape[-1] < 15:
        return None
    uv = raw[..., 5:15].float().reshape(raw.shape[0], -1, 10)
    return decode_landmarks(uv, boxes)


class LandmarkLoss(nn.Module):
    """Smooth-L1 on the landmark offsets of the predictors that answer for a labelled face.

    ``loss = weight · Σ_{predictors with a label} Σ_{10 offsets} huber(u - û; beta) / N`` (per-image sum,
    like the YOLO terms of :class:`iznet.detect.loss.YoloLoss`).

    Args:
        weight: the term's weight.
        beta: where the Huber curve turns from quadratic to linear (offsets are fractions of the box; 0.02
            is about one pixel of a 50-pixel face).
    """

    def __init__(self, weight: float = 1.0, beta: float = 0.02):
        super().__init__()
        if weight < 0 or beta <= 0:
            raise ValueError(f"weight must be ≥ 0 and beta > 0, got {weight}, {beta}")
        self.weight = float(weight)
        self.beta = float(beta)

    def forward(self, uv: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Args:
            uv: (N, ..., 10) predicted offsets.
            target: (N, ..., 10) target offsets.
            mask: (N, ...) bool, the predictors with a label.
        """
        if uv.shape != target.shape or uv.shape[:-1] != mask.shape or uv.shape[-1] != 10:
            raise ValueError(f"uv {tuple(uv.shape)}, target {tuple(target.shape)} and mask {tuple(mask.shape)} "
                             "must be (N, ..., 10), (N, ..., 10) and (N, ...)")
        per = nn.functional.smooth_l1_loss(uv, target.to(uv.dtype), beta=self.beta, reduction="none")
        return self.weight * (per * mask[..., None].to(uv.dtype)).sum() / max(uv.shape[0], 1)


def interocular_nme(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean point error of each face divided by its true inter-ocular distance (eye centre to eye centre).

    Args:
        pred, truth: (K, 5, 2) points.

    Returns:
        (K,) normalised mean errors.
    """
    pred, truth = torch.as_tensor(pred, dtype=torch.float64), torch.as_tensor(truth, dtype=torch.float64)
    iod = (truth[:, 0] - truth[:, 1]).norm(dim=-1).clamp(min=1e-6)
    return (pred - truth).norm(dim=-1).mean(-1) / iod


__all__ = ["LANDMARK_NAMES", "FLIP_ORDER", "encode_landmarks", "decode_landmarks", "flip_landmarks",
           "landmark_points", "LandmarkLoss", "interocular_nme"]
