"""A second look at small faces, for their landmarks.

The detector reads the whole photo at its input side (416): a face 60 pixels wide in a 1,500-pixel group photo
is 17 pixels there, and its five landmarks, read from stride-32 features, are coarse (median error about a
fifth of the eye distance; docs/detection.md). An aligned embedder cuts its crop on those points, so the
face's identity suffers although the photo holds enough pixels. The second look cuts a square of
``zoom`` × the face's box around each face the detector saw under ``below`` input pixels, hands the squares
to the same detector (which resizes each to its input, so the face is seen large), and takes the landmarks of
the face found there that overlaps the first box (IoU ≥ ``min_iou`` once mapped back; nearest the square's
centre when several do). Boxes, scores and which faces were found stay those of the first look; a face the
second look does not find keeps its coarse points.

Torch-free: the three detector paths (:class:`iznet.detect.detector.YoloFaceDetector`,
:class:`iznet.export.onnx_runtime.OnnxDetector`, :class:`iznet.export.lite.LiteDetector`) call
:func:`relook_found` with their own single-look function.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

from iznet.detect.settings import RelookConfig


def seen_sides(boxes: np.ndarray, image_size: tuple[int, int], trained: int) -> np.ndarray:
    """(N,) longer side of each box (N, 4) in the detector's input pixels: the letterbox scales an image of
    ``image_size`` ``(width, height)`` by ``trained / max(width, height)``."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return side * trained / float(max(image_size))


def square_around(image: np.ndarray, box: np.ndarray, zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """The square of side ``zoom`` × the box's longer side centred on the box (black where it leaves the
    image) and its top-left corner ``(x0, y0)`` in image pixels (a point ``p`` of the square is ``p + x0y0``)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(int(round(zoom * max(x2 - x1, y2 - y1))), 2)
    x0, y0 = int(round((x1 + x2 - side) / 2)), int(round((y1 + y2 - side) / 2))
    h, w = image.shape[:2]
    square = np.zeros((side, side, 3), np.uint8)
    ax0, ay0, ax1, ay1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if ax1 > ax0 and ay1 > ay0:
        square[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0] = image[ay0:ay1, ax0:ax1]
    return square, np.array([x0, y0], np.float64)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box ``a`` (4,) with boxes ``b`` (M, 4)."""
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def pick_face(box: np.ndarray, boxes: np.ndarray, centre: np.ndarray, min_iou: float) -> int:
    """Index of the face among ``boxes`` (M, 4) that is the first look's ``box`` (both in the same pixels):
    overlapping it at IoU ≥ ``min_iou``, the one whose centre is nearest ``centre``; -1 when none."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return -1
    ok = box_iou(np.asarray(box, np.float64), boxes) >= min_iou
    if not ok.any():
        return -1
    d = (((boxes[:, :2] + boxes[:, 2:]) / 2 - centre) ** 2).sum(1)
    return int(np.argmin(np.where(ok, d, np.inf)))


def relook_points(look: Callable[[list[np.ndarray]], list[tuple[np.ndarray, np.ndarray | None]]],
                  image: np.ndarray, boxes: np.ndarray, points: np.ndarray, trained: int,
                  config: RelookConfig) -> tuple[np.ndarray, int]:
    """One image's landmarks after the second look, and how many faces got new ones.

    Args:
        look: detects faces in a list of squares: per square ``(boxes (M, 4), points (M, 5, 2) or None)`` in
            the square's pixels.
        image: (H, W, 3) uint8 RGB.
        boxes: (N, 4) the first look's boxes; points: (N, 5, 2) its landmarks.
        trained: the detector's input side.
    """
    points = np.array(points, np.float32, copy=True).reshape(-1, 5, 2)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    small = np.flatnonzero(seen_sides(boxes, (image.shape[1], image.shape[0]), trained) < config.below)
    if len(small) == 0:
        return points, 0
    cut = [square_around(image, boxes[i], config.zoom) for i in small]
    found = look([c[0] for c in cut])
    changed = 0
    for i, (square, origin), (b, p) in zip(small, cut, found):
        if p is None:
            continue
        b = np.asarray(b, np.float64).reshape(-1, 4) + np.tile(origin, 2)
        k = pick_face(boxes[i], b, (boxes[i, :2] + boxes[i, 2:]) / 2, config.min_iou)
        if k >= 0:
            points[i] = np.asarray(p, np.float64).reshape(-1, 5, 2)[k] + origin
            changed += 1
    return points, changed


def relook_found(look: Callable[[list[np.ndarray]], list[Any]], images: Sequence[np.ndarray], found: list[Any],
                 trained: int, config: RelookConfig | None) -> list[Any]:
    """The detections of ``images`` (``Detections`` or ``FoundFaces``: ``xyxy``, ``landmarks``) with the
    landmarks of their small faces from a second look; ``look(squares)`` gives the same kind of results.
    Detections without landmarks, and ``config`` None, are returned as they are."""
    if config is None:
        return list(found)

    def arrays(squares: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        return [(np.asarray(f.xyxy), None if f.landmarks is None else np.asarray(f.landmarks))
                for f in look(squares)]

    out = []
    for im, f in zip(images, found):
        if f.landmarks is not None and len(f):
            pts, changed = relook_points(arrays, im, np.asarray(f.xyxy), np.asarray(f.landmarks), trained, config)
            if changed:
                f = dataclasses.replace(f, landmarks=pts)
        out.append(f)
    return out


__all__ = ["RelookConfig", "box_iou", "pick_face", "relook_found", "relook_points", "seen_sides", "square_around"]
