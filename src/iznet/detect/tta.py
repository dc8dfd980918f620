"""Test-time augmentation for the YOLO face detector: several input sides and a mirror image, fused.

The network is fully convolutional, so it runs at any side that is a multiple of 32 (the grid follows:
544 → 17×17). Its widths and heights are fractions of the *input* it was trained at: a face of ``p``
input pixels gets the width it had at ``p`` pixels in training, ``p / trained_side``. At side ``s`` the
same face is ``p / s`` of the input, so predicted widths and heights are multiplied by
``trained_side / s``. Centres are offsets inside a cell and need no correction. A mirrored input gives
mirrored boxes, mapped back with ``x → s - x``.

Fusion of the passes (each pass: every predictor's box and confidence in original-image pixels):

1. candidates: boxes of all passes with confidence ≥ ``candidate_threshold`` (low, so that a face seen
   at 0.25 in one pass still counts next to 0.4 in another);
2. NMS over the union at the post-processing IoU (0.4) picks one box per face;
3. each kept box's coordinates become the confidence-weighted mean of the candidates (of any pass) that
   overlap it at IoU ≥ ``vote_iou`` (box voting);
4. its confidence becomes the mean over passes of each pass's best confidence among those candidates,
   0 for a pass that saw nothing there: a face found in only one of four passes keeps a quarter;
5. the post-processing threshold applies to the fused confidences;
6. NMS again, over the fused boxes by fused confidence at the same IoU: voting can pull two kept boxes
   towards the candidates they share until they overlap more than the NMS IoU (one face boxed twice),
   and the output keeps the post-processing promise that no two boxes overlap more than that;
7. the top-k cap.

Chosen on the *development* photos of faces-1750 (``scripts/detector_tta_sweep.py --split dev``; the table
is in docs/detection.md): sides 416 and 544 with the mirror image (four passes, about 5.4× one pass's
arithmetic).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from iznet.detect.landmarks import flip_landmarks, landmark_points
from iznet.detect.letterbox import Letterbox, letterbox
from iznet.detect.loss import activate
from iznet.detect.postprocess import postprocess
from iznet.detect.results import Detections
# the settings live in a torch-free module (the fast label path reads them); re-exported here
from iznet.detect.settings import (DEFAULT_TTA_MODE, TTA_MODES, PostprocessConfig, TTAConfig,  # noqa: F401
                                   tta_config, tta_mode_name)
from iznet.detect.targets import decode


Pass = tuple  # (boxes (M, 4), scores (M,)) or (boxes, scores, points (M, 5, 2))


def decode_pass(raw: torch.Tensor, side: int, trained: int, flipped: bool,
                letterboxes: Sequence[Letterbox]) -> list[Pass]:
    """One pass's raw outputs (N, S, S, B, 5 or 15) at input ``side`` → per image all boxes in original pixels.

    Widths and heights are rescaled by ``trained / side``; a mirrored pass is mapped back. With landmark
    channels each item also carries every predictor's points (decoded on the rescaled box, mirrored back
    with left and right swapped).
    """
    pred = activate(raw.detach())
    if side != trained:
        pred[..., 3:5] *= trained / side
    boxes, scores = decode(pred, side)
    points = landmark_points(raw.detach(), boxes)
    if flipped:
        boxes = torch.stack([side - boxes[..., 2], boxes[..., 1], side - boxes[..., 0], boxes[..., 3]], dim=-1)
        points = flip_landmarks(points, side) if points is not None else None
    if points is None:
        return [(lb.to_original(boxes[i]), scores[i].float()) for i, lb in enumerate(letterboxes)]
    return [(lb.to_original(boxes[i]), scores[i].float(), lb.points_to_original(points[i]))
            for i, lb in enumerate(letterboxes)]


def fuse_passes(passes: Sequence[Pass], config: PostprocessConfig,
                tta: TTAConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Fuse one image's passes (see the module doc): kept boxes (K, 4) and fused scores (K,), by score.

    Args:
        passes: per pass ``(boxes (M_i, 4), scores (M_i,))`` in the same pixel frame.
        config: the operating threshold, NMS IoU and top-k.
        tta: the voting IoU and the candidate threshold.
    """
    b, s, _ = fuse_passes_with_points(passes, config, tta)
    return b, s


def fuse_passes_with_points(passes: Sequence[Pass], config: PostprocessConfig, tta: TTAConfig
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """:func:`fuse_passes`, plus fused landmarks (K, 5, 2) when every pass carries points (else None).

    A kept face's points are the same confidence-weighted mean over the voting candidates as its box.
    """
    from iznet.detect.numpy_post import fuse_passes as fuse_arrays  # the one implementation (numpy)

    if not passes:
        raise ValueError("fuse_passes needs at least one pass")
    arrays = [tuple(np.asarray(x.detach().cpu().float() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
                    for x in p) for p in passes]
    b, s, pts = fuse_arrays(arrays, config, tta)
    return torch.from_numpy(b), torch.from_numpy(s), None if pts is None else torch.from_numpy(pts)


def detect_images(forward: Callable[[torch.Tensor], torch.Tensor], images: Sequence[np.ndarray], trained: int,
                  config: PostprocessConfig, tta: TTAConfig, batch_size: int = 16) -> list[Detections]:
    """Detections for (H, W, 3) uint8 RGB images with a network given as ``forward``.

    Args:
        forward: float32 (N, 3, s, s) in [0, 1] on the CPU → raw (N, s/32, s/32, B, 5 or 15) (any device;
            with 15 channels the detections carry landmarks).
        trained: the side the network was trained at (its ``image_size``).
        config: post-processing thresholds.
        tta: the passes; a single pass at the trained side without mirror is plain :func:`postprocess`.
        batch_size: images per forward call (a mirrored pass doubles it).
    """
    out: list[Detections] = []
    single = tta.is_single_pass(trained)
    for i in range(0, len(images), batch_size):
        chunk = images[i:i + batch_size]
        if single:
            x, lbs = _letterboxed(chunk, trained)
            out.extend(postprocess(forward(x).cpu(), trained, config, lbs))
            continue
        per_image: list[list[Pass]] = [[] for _ in chunk]
        for side in tta.sides(trained):
            x, lbs = _letterboxed(chunk, side)
            if tta.flip:
                x = torch.cat([x, x.flip(-1)])
            raw = forward(x).cpu()
            views = [(raw[: len(chunk)], False)] + ([(raw[len(chunk):], True)] if tta.flip else [])
            for part, flipped in views:
                for k, found in enumerate(decode_pass(part, side, trained, flipped, lbs)):
                    per_image[k].append(found)
        for passes, im in zip(per_image, chunk):
            b, s, p = fuse_passes_with_points(passes, config, tta)
            out.append(Detections(b, s, (int(im.shape[1]), int(im.shape[0])), p))
    return out


def _letterboxed(images: Sequence[np.ndarray], side: int) -> tuple[torch.Tensor, list[Letterbox]]:
    """The images letterboxed into ``side`` squares: float (N, 3, side, side) in [0, 1] and the placements."""
    placed = [letterbox(im, side) for im in images]
    return torch.stack([p[0] for p in placed]).float() / 255.0, [p[1] for p in placed]
