"""From a photo to face pixels: detection (with a padded retry for headshots), crops cut the way the
embedder was trained (box or aligned), and the batch an embedder takes."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np

from iznet.data.crops import FACE_CROP_SCALE, crop_face
from iznet.errors import ImageError, ModelError

if TYPE_CHECKING:  # torch stays out of this module's imports: the torch-free label path uses it
    import torch

    from iznet.detect.results import Detections


_logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------- detector glue
class FaceDetector(Protocol):
    """What the pipeline needs from a detector."""

    def detect(self, image: np.ndarray) -> "Detections":
        """Faces in a uint8 (H, W, 3) RGB image, boxes in its pixels."""
        ...


#: When a picture yields no face, it is tried once more in the middle of a black canvas this many times its
#: size: a tight crop (the face fills the picture, as in a headshot folder) looks to a detector like a face cut
#: off at every edge, and with black around it like a face in a photo. Boxes are mapped back (they may reach
#: outside the picture; crops fill that part with black, as the canvas would).
NO_FACE_RETRY_PAD = 2.0


def detect_on_canvas(detector: Any, image: np.ndarray, pad: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`detect_faces` on ``image`` centred on a black canvas ``pad`` times its size; boxes in ``image``'s
    pixels."""
    boxes, scores, _ = detect_faces_on_canvas(detector, image, pad)
    return boxes, scores


def detect_faces_on_canvas(detector: Any, image: np.ndarray, pad: float
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`detect_on_canvas`, plus the faces' landmarks (N, 5, 2) in ``image``'s pixels (None when the
    detector gives none)."""
    if not pad >= 1.0:
        raise ModelError(f"pad must be >= 1 (canvas side / picture side), got {pad}")
    h, w = image.shape[:2]
    H, W = int(round(pad * h)), int(round(pad * w))
    y0, x0 = (H - h) // 2, (W - w) // 2
    canvas = image
    if (H, W) != (h, w):
        canvas = np.zeros((H, W, 3), dtype=np.uint8)
        canvas[y0:y0 + h, x0:x0 + w] = image
    boxes, scores, points = detect_faces_with_landmarks(detector, canvas)
    if points is not None:
        points = points - np.array([x0, y0], dtype=np.float64)
    return boxes - np.array([x0, y0, x0, y0], dtype=np.float64), scores, points


def detect_faces(detector: Any, image: np.ndarray, retry_pad: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run a detector (``.detect(image)`` or a callable) and return its faces sorted by score.

    With ``retry_pad`` (e.g. :data:`NO_FACE_RETRY_PAD`), a picture without a face is tried again on a padded
    canvas (:func:`detect_on_canvas`).

    Returns:
        ``(boxes, scores)``: float64 (N, 4) ``x1, y1, x2, y2`` pixels and float64 (N,), highest score first.
        Boxes that are empty or not finite are dropped (logged).
    """
    boxes, scores, _ = detect_faces_with_landmarks(detector, image, retry_pad)
    return boxes, scores


def detect_faces_with_landmarks(detector: Any, image: np.ndarray, retry_pad: float | None = None
                                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`detect_faces`, plus the faces' five landmarks (N, 5, 2) float64 when the detector gives them
    (None otherwise), in the same order."""
    fn = detector.detect if hasattr(detector, "detect") else detector
    if not callable(fn):
        raise ModelError(f"a detector must have .detect(image) or be callable, got {type(detector).__name__}")
    dets = fn(image)
    if dets is None:
        return np.zeros((0, 4)), np.zeros(0), None
    points = getattr(dets, "landmarks", None)
    xyxy, scores = getattr(dets, "xyxy", None), getattr(dets, "scores", None)
    if xyxy is None or scores is None:
        raise ModelError(f"the detector returned {type(dets).__name__}; expected a Detections (xyxy, scores)")
    boxes = _as_array(xyxy).reshape(-1, 4)
    scores = _as_array(scores).reshape(-1)
    if len(boxes) != len(scores):
        raise ModelError(f"the detector returned {len(boxes)} boxes but {len(scores)} scores")
    if points is not None:
        points = _as_array(points).reshape(-1, 5, 2)
        if len(points) != len(boxes):
            raise ModelError(f"the detector returned {len(boxes)} boxes but {len(points)} landmark sets")
    ok = np.isfinite(boxes).all(1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    if points is not None:
        ok &= np.isfinite(points).all((1, 2))
    if not ok.all():
        _logger.warning("dropped %d empty or non-finite box(es) from the detector", int((~ok).sum()))
        boxes, scores = boxes[ok], scores[ok]
        points = points[ok] if points is not None else None
    order = np.argsort(-scores, kind="stable")
    if len(boxes) == 0 and retry_pad and retry_pad > 1.0:
        return detect_faces_on_canvas(detector, image, retry_pad)
    return boxes[order], scores[order], (points[order] if points is not None else None)


#: The headshot fallback, for pictures that show one person (enrolment, ``extract-faces --keep best``): when
#: neither the picture nor its padded canvas (:data:`NO_FACE_RETRY_PAD`) shows a face, canvases of these other
#: sizes are searched too, and the most confident box whose side is at least :data:`HEADSHOT_MIN_SIDE` of the
#: picture's shorter side is taken. A face that fills a tight crop and turns away (a profile, a cap, a hand)
#: often shows only on a canvas of another size; a picture of one person has one face, and it is big, so a
#: small box found there is not taken. :data:`HEADSHOT_CONF` None: the detector's own confidence threshold.
#: Chosen on development pictures (the training collection's development people, 31 pictures the pipeline
#: misses among 4,710, and 1,000 face-free patches of the detector's training photos) by
#: ``scripts/choose_headshot_fallback.py``: canvases 1.5, 2.0 and 3.0 at the operating threshold 0.3 and a side
#: of half the picture, of a grid down to threshold 0.05 (docs/detection.md, "Headshots"). The 2.0 canvas is
#: the pipeline's own retry, not run twice.
HEADSHOT_PADS: tuple[float, ...] = (1.5, 3.0)
HEADSHOT_CONF: float | None = None
HEADSHOT_MIN_SIDE = 0.5


def with_confidence(detector: Any, conf: float) -> Any | None:
    """A shallow copy of ``detector`` whose confidence threshold is ``conf`` (the network is shared), or None
    for a detector without one (haar, yunet)."""
    import copy
    import dataclasses

    cfg = getattr(detector, "config", None)
    if cfg is None or not hasattr(cfg, "conf_threshold"):
        return None
    low = copy.copy(detector)
    low.config = dataclasses.replace(cfg, conf_threshold=float(conf))
    return low


def pick_headshot(candidates: Sequence[tuple[np.ndarray, np.ndarray]], short_side: float, conf: float,
                  min_side: float) -> tuple[int, int] | None:
    """The fallback's choice among the canvases' detections: ``(canvas, box)`` indices of the most confident box
    of the first canvas (in order) that has one scoring at least ``conf`` with a side (the longer of width and
    height) at least ``min_side`` × ``short_side``; None when no canvas has one."""
    for c, (boxes, scores) in enumerate(candidates):
        boxes, scores = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64).reshape(-1)
        side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        ok = np.flatnonzero((scores >= conf) & (side >= min_side * short_side))
        if len(ok):
            return c, int(ok[np.argmax(scores[ok])])
    return None


def detect_one_face(detector: Any, image: np.ndarray, pads: Sequence[float] = HEADSHOT_PADS,
                    conf: float | None = HEADSHOT_CONF, min_side: float = HEADSHOT_MIN_SIDE
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, bool]:
    """Faces in a picture of one person: :func:`detect_faces_with_landmarks` with the padded retry, then, when
    that finds nothing, the headshot fallback (:data:`HEADSHOT_PADS`; ``conf`` None: the detector's own
    threshold, and a detector without one gets the fallback at its own settings). Returns boxes, scores,
    landmarks (as :func:`detect_faces_with_landmarks`; the fallback gives one face) and whether the fallback
    found it."""
    boxes, scores, points = detect_faces_with_landmarks(detector, image, retry_pad=NO_FACE_RETRY_PAD)
    if len(boxes) or not pads:
        return boxes, scores, points, False
    low = detector if conf is None else with_confidence(detector, conf)
    if low is None:
        return boxes, scores, points, False
    if conf is None:
        cfg = getattr(detector, "config", None)
        conf = float(getattr(cfg, "conf_threshold", 0.0))  # its boxes already passed it
    for pad in pads:  # canvas by canvas, as pick_headshot reads them: the first with a pick ends the search
        b, s, p = detect_faces_on_canvas(low, image, float(pad))
        pick = pick_headshot([(b, s)], min(image.shape[:2]), conf, min_side)
        if pick is not None:
            i = pick[1]
            return b[i:i + 1], s[i:i + 1], (None if p is None else p[i:i + 1]), True
    return boxes, scores, points, False


def _as_array(x: Any) -> np.ndarray:
    """A tensor (any device) or array as a float64 numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _check_image(image: Any) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ImageError("<array>", f"expected a uint8 (H, W, 3) RGB image, got {img.dtype} {img.shape}")
    return img


def crops_to_batch(crops: Sequence[np.ndarray]) -> "torch.Tensor":
    """(S, S, 3) uint8 crops -> the embedders' uint8 (N, 3, S, S) tensor."""
    import torch

    return torch.from_numpy(crops_to_array(crops))


def embedder_batch(embedder: Any, crops: Sequence[np.ndarray]) -> Any:
    """The batch ``embedder.embed`` takes: a uint8 (N, 3, S, S) tensor for an
    :class:`~iznet.recognize.embedder.Embedder` (its contract), an array for the others (the torch-free
    exported embedder of :mod:`iznet.export.lite`), so labelling imports torch only when the embedder needs it."""
    module = sys.modules.get("iznet.recognize.embedder")  # not loaded: the embedder cannot be one of its classes
    if module is not None and isinstance(embedder, module.Embedder):
        return crops_to_batch(crops)
    return crops_to_array(crops)


def crops_to_array(crops: Sequence[np.ndarray]) -> np.ndarray:
    """(S, S, 3) uint8 crops -> a uint8 (N, 3, S, S) array (every embedder takes one)."""
    if not crops:
        raise ModelError("no crops to embed")
    return np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2))


def embedder_crops(embedder: Any, image: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray | None,
                   margin_scale: float = FACE_CROP_SCALE) -> list[np.ndarray]:
    """The crops ``embedder`` expects for the faces at ``boxes`` (N, 4): box crops, or aligned crops from
    ``landmarks`` (N, 5, 2) when the embedder was trained on aligned faces. An aligned embedder given faces
    without landmarks (a detector that gives none) gets box crops, with a warning logged once per call."""
    return face_crops(image, boxes, landmarks, int(embedder.input_size), getattr(embedder, "face_crop", "box"),
                      margin_scale)


def face_crops(image: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray | None, size: int,
               convention: str = "box", margin_scale: float = FACE_CROP_SCALE) -> list[np.ndarray]:
    """:func:`embedder_crops` for a crop ``convention`` and ``size`` given directly."""
    from iznet.data.align import face_pixels, needs_landmarks

    pts = list(landmarks) if landmarks is not None else [None] * len(boxes)
    if len(boxes) and needs_landmarks(convention, landmarks):
        _logger.warning("the embedder expects aligned faces but the detector gives no landmarks; using box crops "
                        "(use a detector with landmarks, e.g. the bundled one)")
    return [face_pixels(image, b, p, size, convention, margin_scale) for b, p in zip(boxes, pts)]


def whole_image_crop(image: np.ndarray, size: int) -> np.ndarray:
    """An image that already is a face crop, as a ``size`` x ``size`` crop: its centre square, resized.

    Used for ``--no-detect`` (folders of crops such as :func:`iznet.recognize.extract.extract_faces` writes).
    """
    h, w = image.shape[:2]
    side = min(h, w)
    x0, y0 = (w - side) / 2, (h - side) / 2
    return crop_face(image, (x0, y0, x0 + side, y0 + side), size, scale=1.0)
