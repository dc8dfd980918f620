"""The detector's post-processing in numpy: raw network outputs -> boxes, scores and landmarks, no PyTorch.

The same steps as :mod:`iznet.detect.postprocess` and :mod:`iznet.detect.tta` (activate, decode, landmarks,
mirror, NMS, the fusion of test-time augmentation passes), for a network run by onnxruntime: the fast label
path (:mod:`iznet.export.lite`) answers without importing torch, whose import alone takes longer than
labelling a photo. The fusion of passes (:func:`fuse_passes`) and NMS (:func:`nms`) exist only here: the
PyTorch path calls them too. Activation and decoding are a few lines of arithmetic written twice (tensors
there, arrays here); ``tests/detect/test_numpy_post.py`` holds the two to the same answers.

Shapes follow the PyTorch side: raw outputs (N, S, S, B, 5) or (N, S, S, B, 15) with landmarks; boxes
``x1, y1, x2, y2``; points (…, 5, 2) in the order of :data:`iznet.detect.landmarks.LANDMARK_NAMES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from iznet.detect.letterbox import Letterbox, letterbox_array
from iznet.detect.settings import PostprocessConfig, TTAConfig

#: Which point becomes which under a horizontal mirror (the same as iznet.detect.landmarks.FLIP_ORDER).
FLIP_ORDER = (1, 0, 2, 4, 3)

Pass = tuple  # (boxes (M, 4), scores (M,)) or (boxes, scores, points (M, 5, 2)), float32 arrays


@dataclass
class FoundFaces:
    """Faces found in one image, as numpy arrays (what :class:`iznet.detect.results.Detections` holds as
    tensors): ``xyxy`` (N, 4) float32, ``scores`` (N,) float32 by decreasing score, ``landmarks`` (N, 5, 2)
    float32 or None, ``image_size`` ``(width, height)``."""

    xyxy: np.ndarray
    scores: np.ndarray
    image_size: tuple[int, int] | None = None
    landmarks: np.ndarray | None = None

    def __len__(self) -> int:
        return int(len(self.scores))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)  # no overflow for large |x|


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4); (N, M)."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    with np.errstate(invalid="ignore", divide="ignore"):  # empty boxes give NaN, as in PyTorch: never above a threshold
        return inter / (area_a[:, None] + area_b[None, :] - inter)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, highest score first (ties keep their
    order). A box is dropped when its IoU with a kept, higher-scoring box is above ``iou_threshold``."""
    boxes = np.asarray(boxes).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-np.asarray(scores).reshape(-1), kind="stable")
    iou = box_iou(boxes[order], boxes[order])
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[np.asarray(keep, dtype=np.int64)]


def decode_raw(raw: np.ndarray, side: int, trained: int | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Raw outputs (N, S, S, B, 5 or 15) at input ``side`` -> every predictor's boxes (N, S*S*B, 4) in input
    pixels, scores (N, S*S*B) and points (N, S*S*B, 5, 2) (None without landmark channels).

    Widths and heights are multiplied by ``trained / side`` when the network runs at another side than it was
    trained at (:mod:`iznet.detect.tta`).
    """
    raw = np.asarray(raw, dtype=np.float32)
    n, grid = raw.shape[0], raw.shape[1]
    conf = _sigmoid(raw[..., 0])
    xy = _sigmoid(raw[..., 1:3])
    wh = np.clip(raw[..., 3:5], 0, 1) ** 2
    if trained is not None and side != trained:
        wh = wh * np.float32(trained / side)
    idx = np.arange(grid, dtype=np.float32)
    rows, cols = np.meshgrid(idx, idx, indexing="ij")
    cx = (xy[..., 0] + cols[..., None]) / grid
    cy = (xy[..., 1] + rows[..., None]) / grid
    half_w, half_h = wh[..., 0] / 2, wh[..., 1] / 2
    boxes = (np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1) * np.float32(side))
    boxes = boxes.reshape(n, -1, 4).astype(np.float32)
    scores = conf.reshape(n, -1).astype(np.float32)
    points = None
    if raw.shape[-1] >= 15:
        uv = raw[..., 5:15].reshape(n, -1, 5, 2)
        centre, size = (boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]
        points = (centre[..., None, :] + uv * size[..., None, :]).astype(np.float32)
    return boxes, scores, points


def flip_back(boxes: np.ndarray, points: np.ndarray | None, side: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Boxes (…, 4) and points (…, 5, 2) found on a mirrored ``side``-wide input -> on the original input."""
    boxes = np.stack([side - boxes[..., 2], boxes[..., 1], side - boxes[..., 0], boxes[..., 3]], axis=-1)
    if points is not None:
        points = points[..., list(FLIP_ORDER), :].copy()
        points[..., 0] = side - points[..., 0]
    return boxes, points


def fuse_passes(passes: Sequence[Pass], config: PostprocessConfig, tta: TTAConfig
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Fuse one image's test-time augmentation passes (the steps are listed in :mod:`iznet.detect.tta`):
    kept boxes (K, 4), fused scores (K,) by decreasing score, and fused points (K, 5, 2) when every pass
    carries points (else None). A kept face's box and points are the confidence-weighted means over the
    candidates that overlap it at IoU ≥ ``tta.vote_iou``.
    """
    if not passes:
        raise ValueError("fuse_passes needs at least one pass")
    with_points = all(len(p) == 3 for p in passes)
    boxes = np.concatenate([np.asarray(p[0], dtype=np.float32).reshape(-1, 4) for p in passes])
    scores = np.concatenate([np.asarray(p[1], dtype=np.float32).reshape(-1) for p in passes])
    points = (np.concatenate([np.asarray(p[2], dtype=np.float32).reshape(-1, 10) for p in passes])
              if with_points else None)
    owner = np.concatenate([np.full(np.asarray(p[1]).size, i, dtype=np.int64) for i, p in enumerate(passes)])
    keep = scores >= min(tta.candidate_threshold, config.conf_threshold)
    boxes, scores, owner = boxes[keep], scores[keep], owner[keep]
    if len(scores) == 0:
        return (np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                np.zeros((0, 5, 2), np.float32) if with_points else None)
    kept = nms(boxes, scores, config.iou_threshold)
    weight = (box_iou(boxes[kept], boxes) >= tta.vote_iou).astype(np.float32) * scores[None]  # (K, M)
    norm = weight.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):  # an empty kept box votes for nothing: NaN, dropped later
        fused_boxes = (weight @ boxes) / norm
        fused_points = (weight @ points[keep]) / norm if points is not None else None
    best = np.zeros((len(kept), len(passes)), dtype=np.float32)
    for i in range(len(passes)):
        cols = weight[:, owner == i]
        if cols.shape[1]:
            best[:, i] = cols.max(1)
    fused_scores = best.mean(1)
    ok = fused_scores >= config.conf_threshold
    fused_boxes, fused_scores = fused_boxes[ok], fused_scores[ok]
    again = nms(fused_boxes, fused_scores, config.iou_threshold)[: config.max_detections]
    out_points = None if fused_points is None else fused_points[ok][again].reshape(-1, 5, 2)
    return fused_boxes[again], fused_scores[again], out_points


def detect_arrays(forward: Callable[[np.ndarray], np.ndarray], images: Sequence[np.ndarray], trained: int,
                  config: PostprocessConfig, tta: TTAConfig, batch_size: int = 16) -> list[FoundFaces]:
    """Faces in (H, W, 3) uint8 RGB images with a network given as ``forward`` (float32 (N, 3, s, s) in [0, 1]
    -> raw (N, s/32, s/32, B, 5 or 15)), the numpy twin of :func:`iznet.detect.tta.detect_images`.

    A single pass at the trained side without mirror keeps the predictors above the threshold, NMS and the
    top-k (:func:`iznet.detect.postprocess.postprocess`); several passes are fused (:func:`fuse_passes`).
    """
    out: list[FoundFaces] = []
    single = tta.is_single_pass(trained)
    for i in range(0, len(images), batch_size):
        chunk = images[i:i + batch_size]
        per_image: list[list[Pass]] = [[] for _ in chunk]
        for side in ((trained,) if single else tta.sides(trained)):
            placed = [letterbox_array(im, side) for im in chunk]
            x = np.stack([p[0] for p in placed]).transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
            lbs = [p[1] for p in placed]
            flips = (False, True) if tta.flip and not single else (False,)
            if len(flips) == 2:
                x = np.concatenate([x, x[..., ::-1]])
            raw = np.asarray(forward(np.ascontiguousarray(x)))
            for f, flipped in enumerate(flips):
                boxes, scores, points = decode_raw(raw[f * len(chunk):(f + 1) * len(chunk)], side, trained)
                if flipped:
                    boxes, points = flip_back(boxes, points, side)
                for k, lb in enumerate(lbs):
                    found = (boxes[k], scores[k]) if points is None else (boxes[k], scores[k], points[k])
                    if single:  # NMS on input pixels, as the PyTorch path does, then back to the image
                        found = _select(found, config)
                    per_image[k].append(_to_original(lb, *found))
        for passes, im in zip(per_image, chunk):
            size = (int(im.shape[1]), int(im.shape[0]))
            if single:
                b, s, p = passes[0] if len(passes[0]) == 3 else (*passes[0], None)
            else:
                b, s, p = fuse_passes(passes, config, tta)
            out.append(FoundFaces(b.astype(np.float32), s.astype(np.float32), size,
                                  None if p is None else p.astype(np.float32)))
    return out


def _to_original(lb: Letterbox, boxes: np.ndarray, scores: np.ndarray, points: np.ndarray | None = None) -> Pass:
    if points is None:
        return lb.to_original(boxes), scores
    return lb.to_original(boxes), scores, lb.points_to_original(points)


def _select(found: Pass, config: PostprocessConfig) -> Pass:
    """One pass: confidence threshold, NMS, top-k, by decreasing score."""
    boxes, scores = found[0], found[1]
    idx = np.nonzero(scores >= config.conf_threshold)[0]
    keep = idx[nms(boxes[idx], scores[idx], config.iou_threshold)[: config.max_detections]]
    return (boxes[keep], scores[keep]) if len(found) == 2 else (boxes[keep], scores[keep], found[2][keep])
