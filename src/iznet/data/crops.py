"""The project's one face-crop convention, shared by training data and the recognition pipeline.

A face is described by a *tight* box ``(x0, y0, x1, y1)`` in pixels (the box a detector such as
YuNet draws: brow-to-chin, cheek-to-cheek). The crop is the square centred on that box with side
``scale * max(w, h)`` (``scale`` = :data:`FACE_CROP_SCALE`), resized to ``size x size``. Parts of
the square outside the image are filled with black (zeros), never with stretched edge pixels.

For LFW deep-funneled images (250x250, face roughly centred) the tight box was measured once with
``scripts/measure_lfw_face_box.py`` (see docs/data.md) and fixed as :data:`LFW_FACE_BOX`, so
:func:`lfw_crop` gives the same framing as a detected face cropped with :func:`crop_face`.
"""

from __future__ import annotations

import functools
from typing import Sequence

import cv2
import numpy as np

from iznet.errors import ModelError

#: Side of the square crop relative to the longer side of the tight face box.
FACE_CROP_SCALE = 1.3

#: Median tight face box (x0, y0, x1, y1) of LFW deep-funneled images in their 250x250 frame,
#: from YuNet on 500 images (``python scripts/measure_lfw_face_box.py --n 500``). 95 x 122 px,
#: centre (125.5, 128); the crop at scale 1.3 is the 159-px square (46, 48, 205, 207).
LFW_FACE_BOX: tuple[int, int, int, int] = (78, 67, 173, 189)

#: OpenCV's Haar cascade draws a square box; on the same LFW faces YuNet's tight box is 1.076x its
#: side on its longer side and centred 0.033 sides lower (same script). Used by :func:`haar_face_box`.
HAAR_SIDE_RATIO = 1.076
HAAR_CENTRE_DY = 0.033

#: Size of the frame :data:`LFW_FACE_BOX` refers to.
LFW_FRAME = 250


def crop_box(box_xyxy: Sequence[float], scale: float = FACE_CROP_SCALE) -> tuple[int, int, int, int]:
    """The square crop region for a tight face box, in integer pixels.

    Args:
        box_xyxy: tight face box (x0, y0, x1, y1) with x1 > x0 and y1 > y0.
        scale: crop side relative to ``max(w, h)`` of the box.

    Returns:
        (x0, y0, x1, y1) of the square (x1 - x0 == y1 - y0 >= 1); it may reach outside the image.

    Raises:
        ValueError: the box is empty or not finite, or ``scale`` is not positive.
    """
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    w, h = x1 - x0, y1 - y0
    if not np.isfinite([x0, y0, x1, y1]).all() or w <= 0 or h <= 0:
        raise ValueError(f"face box {tuple(box_xyxy)} is empty or not finite; expected x1 > x0 and y1 > y0")
    if not scale > 0:
        raise ValueError(f"crop scale must be positive, got {scale}")
    side = max(1, int(round(scale * max(w, h))))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    return left, top, left + side, top + side


def crop_face(img: np.ndarray, box_xyxy: Sequence[float], size: int, scale: float = FACE_CROP_SCALE) -> np.ndarray:
    """Cut the square face crop around a tight face box and resize it.

    Args:
        img: (H, W, 3) uint8 RGB image.
        box_xyxy: tight face box (x0, y0, x1, y1) in pixels of ``img``.
        size: output side in pixels.
        scale: crop side relative to ``max(w, h)`` of the box (default :data:`FACE_CROP_SCALE`).

    Returns:
        (size, size, 3) uint8; the part of the square outside ``img`` is black.

    >>> crop_face(np.zeros((250, 250, 3), np.uint8), LFW_FACE_BOX, 112).shape
    (112, 112, 3)
    """
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {tuple(img.shape)}")
    if size < 1:
        raise ValueError(f"crop size must be >= 1, got {size}")
    x0, y0, x1, y1 = crop_box(box_xyxy, scale)
    side = x1 - x0
    h, w = img.shape[:2]
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h:
        square = img[y0:y1, x0:x1]
    else:
        square = np.zeros((side, side, 3), dtype=img.dtype)
        if ix1 > ix0 and iy1 > iy0:
            square[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = img[iy0:iy1, ix0:ix1]
    if side == size:
        return np.ascontiguousarray(square)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(square), (size, size), interpolation=interp)


def lfw_face_box(height: int = LFW_FRAME, width: int = LFW_FRAME) -> tuple[float, float, float, float]:
    """:data:`LFW_FACE_BOX` scaled to an LFW-style frame of another size (identity at 250x250)."""
    sx, sy = width / LFW_FRAME, height / LFW_FRAME
    x0, y0, x1, y1 = LFW_FACE_BOX
    return x0 * sx, y0 * sy, x1 * sx, y1 * sy


def lfw_crop(img: np.ndarray, size: int) -> np.ndarray:
    """The standard face crop of an LFW deep-funneled image: ``crop_face(img, LFW_FACE_BOX, size)``.

    Args:
        img: (250, 250, 3) uint8 RGB LFW image (another size is treated as the same frame, scaled).
        size: output side in pixels.

    Returns:
        (size, size, 3) uint8.
    """
    return crop_face(img, lfw_face_box(img.shape[0], img.shape[1]), size)


@functools.lru_cache(maxsize=1)
def _haar_cascade() -> "cv2.CascadeClassifier":
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise ModelError(f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 dropped them); "
                         "install opencv-python-headless<5 to crop faces with --crop face")
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise ModelError("OpenCV's Haar face cascade could not be loaded (is opencv-python-headless 4.x installed?)")
    return cascade


def haar_face_box(img: np.ndarray) -> tuple[float, float, float, float] | None:
    """Find the largest face with OpenCV's Haar cascade and return it as a tight box, or None.

    A fallback for cropping folders of one-person photos without a trained detector. The Haar box
    is mapped to the tight-box convention (:data:`HAAR_SIDE_RATIO`, :data:`HAAR_CENTRE_DY`) so
    ``crop_face(img, haar_face_box(img), size)`` frames faces like :func:`lfw_crop`.

    Args:
        img: (H, W, 3) uint8 RGB.

    Returns:
        (x0, y0, x1, y1) square tight box in pixels of ``img``, or None when no face is found.
    """
    gray = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    min_side = max(20, min(gray.shape) // 10)
    found = _haar_cascade().detectMultiScale(gray, 1.1, 5, minSize=(min_side, min_side))
    if len(found) == 0:
        return None
    x, y, w, h = max((tuple(map(float, f)) for f in found), key=lambda f: f[2] * f[3])
    side = HAAR_SIDE_RATIO * max(w, h)
    cx, cy = x + w / 2, y + h / 2 + HAAR_CENTRE_DY * h
    return cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2
