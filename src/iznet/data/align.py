"""Aligned faces: five landmarks mapped onto one canonical 112x112 template by a similarity transform.

The five points are, in this order: the eye on the image's left (the person's right eye), the other eye,
the nose tip, the mouth corner on the image's left, the other mouth corner (YuNet's and RetinaFace's
order). :data:`TEMPLATE_112` is the de-facto standard template of the ArcFace family of recognisers
(their 112x112 crops). The transform (rotation, uniform scale, translation; no shear) is the
least-squares fit of Umeyama (1991), written out in :func:`similarity_transform`; pixels outside the image
are black, as in :func:`iznet.data.crops.crop_face`.

Aligned crops and the unaligned 1.3x box crop (:mod:`iznet.data.crops`) are two conventions; a model is
trained and used with one of them (its checkpoint records which, see docs/data.md).
"""

from __future__ import annotations

import cv2
import numpy as np

#: Canonical landmark positions (x, y) in a 112x112 crop: eyes, nose tip, mouth corners.
TEMPLATE_112 = np.array([
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
], dtype=np.float64)


def _check_points(points, name: str) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] < 2:
        raise ValueError(f"{name}: expected (N, 2) points with N >= 2, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError(f"{name}: points are not finite: {p.tolist()}")
    return p


def similarity_transform(src, dst) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, translation) that best maps ``src`` onto ``dst``.

    Least squares over all points (Umeyama 1991, without reflection).

    Args:
        src, dst: (N, 2) corresponding points, N >= 2.

    Returns:
        (2, 3) float64 matrix ``M`` with ``dst ≈ src @ M[:, :2].T + M[:, 2]``.

    Raises:
        ValueError: shapes differ, fewer than 2 points, non-finite values, or all ``src`` points coincide.
    """
    src, dst = _check_points(src, "src"), _check_points(dst, "dst")
    if src.shape != dst.shape:
        raise ValueError(f"src and dst must have the same shape, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("src points coincide; a similarity transform is undefined")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1.0
    r = u @ e @ vt
    scale = float((sig * np.diag(e)).sum() / var_s)
    m = np.zeros((2, 3))
    m[:, :2] = scale * r
    m[:, 2] = mu_d - scale * r @ mu_s
    return m


def align_face(img: np.ndarray, landmarks, size: int = 112) -> np.ndarray:
    """Warp a face so its five landmarks land on :data:`TEMPLATE_112` (scaled to ``size``).

    Args:
        img: (H, W, 3) uint8 RGB image.
        landmarks: (5, 2) points in pixels of ``img`` (order: see the module docstring).
        size: output side; the template is scaled by ``size / 112``.

    Returns:
        (size, size, 3) uint8 aligned face; parts outside ``img`` are black.
    """
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {tuple(img.shape)}")
    if size < 8:
        raise ValueError(f"aligned face size must be >= 8, got {size}")
    pts = _check_points(landmarks, "landmarks")
    if pts.shape != (5, 2):
        raise ValueError(f"expected 5 landmarks (eyes, nose, mouth corners), got {pts.shape[0]}")
    m = similarity_transform(pts, TEMPLATE_112 * (size / 112.0))
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    # Shrinking by more than 2x: area-average first so the warp does not alias.
    if scale < 0.5:
        f = 1.0 / scale / 1.5
        small = cv2.resize(img, (max(1, int(round(img.shape[1] / f))), max(1, int(round(img.shape[0] / f)))),
                           interpolation=cv2.INTER_AREA)
        m = m.copy()
        m[:, :2] *= f
        img = small
    return cv2.warpAffine(np.ascontiguousarray(img), m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


#: The two face crop conventions a model is trained and used with.
CROP_CONVENTIONS = ("box", "aligned")


def face_pixels(img: np.ndarray, box, landmarks, size: int, convention: str = "box",
                scale: float | None = None) -> np.ndarray:
    """The face crop an embedder expects: its ``convention`` applied to one detected face.

    Args:
        img: (H, W, 3) uint8 RGB image.
        box: ``x1, y1, x2, y2`` of the face in pixels.
        landmarks: (5, 2) points of the face, or None when the detector gives none.
        size: crop side.
        convention: ``box`` (:func:`iznet.data.crops.crop_face`, ``scale`` × the box) or ``aligned``
            (:func:`align_face`). An aligned crop needs landmarks: without them the box crop is returned (the
            caller reports it; see :func:`needs_landmarks`).
        scale: box crop scale (default :data:`iznet.data.crops.FACE_CROP_SCALE`).

    Raises:
        ValueError: unknown convention.
    """
    from iznet.data.crops import FACE_CROP_SCALE, crop_face

    if convention not in CROP_CONVENTIONS:
        raise ValueError(f"unknown face crop convention {convention!r}; expected one of {', '.join(CROP_CONVENTIONS)}")
    if convention == "aligned" and landmarks is not None:
        return align_face(img, landmarks, size)
    return crop_face(img, box, size, scale=FACE_CROP_SCALE if scale is None else float(scale))


def needs_landmarks(convention: str, landmarks) -> bool:
    """True when an ``aligned`` crop is asked for a face without landmarks (it falls back to the box crop)."""
    return convention == "aligned" and landmarks is None
