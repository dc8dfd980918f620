"""What labelling a photo returns: :class:`FaceResult` per face and :class:`LabelResult` per photo (JSON,
drawing)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from iznet.recognize.matcher import UNKNOWN, Match
from iznet.recognize.prototypes import DEFAULT_METHOD


LABEL_SCHEMA = "iznet-label-v1"


# ---------------------------------------------------------------------------------------------- results
def _fin(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


@dataclass(frozen=True)
class FaceResult:
    """One face found in a photo and who it is.

    Attributes:
        box: ``(x1, y1, x2, y2)`` in pixels of the photo.
        det_score: the detector's confidence.
        name: the person, or ``"unknown"`` (above the threshold, or an empty gallery).
        distance: Euclidean distance of the face's embedding to the best person (None: empty gallery).
        nearest: the best person even when ``name`` is ``"unknown"`` (None: empty gallery).
        second_name: the runner-up person, or None.
        second_distance: the runner-up's distance, or None.
        margin: ``second_distance - distance`` (None without a runner-up).
        landmarks: five ``(x, y)`` points (eyes, nose tip, mouth corners) when the detector gives them.
    """

    box: tuple[float, float, float, float]
    det_score: float
    name: str
    distance: float | None = None
    nearest: str | None = None
    second_name: str | None = None
    second_distance: float | None = None
    margin: float | None = None
    landmarks: tuple[tuple[float, float], ...] | None = None

    @property
    def known(self) -> bool:
        return self.name != UNKNOWN

    @classmethod
    def from_match(cls, box: Sequence[float], score: float, m: Match | None,
                   landmarks: np.ndarray | None = None) -> FaceResult:
        b = tuple(float(v) for v in box)
        lm = None if landmarks is None else tuple((float(x), float(y)) for x, y in np.asarray(landmarks).reshape(5, 2))
        if m is None:
            return cls(box=b, det_score=float(score), name=UNKNOWN, landmarks=lm)
        return cls(
            box=b,
            landmarks=lm,
            det_score=float(score),
            name=m.name,
            distance=float(m.distance),
            nearest=m.nearest,
            second_name=m.second_name,
            second_distance=float(m.second_distance) if math.isfinite(m.second_distance) else None,
            margin=float(m.margin) if math.isfinite(m.margin) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (box in pixels to 2 decimals, scores and distances to 4; ``landmarks`` as five
        ``[x, y]`` when the detector gives them)."""
        out = {
            "box": [round(v, 2) for v in self.box],
            "det_score": _fin(self.det_score),
            "name": self.name,
            "distance": _fin(self.distance),
            "nearest": self.nearest,
            "second_name": self.second_name,
            "second_distance": _fin(self.second_distance),
            "margin": _fin(self.margin),
        }
        if self.landmarks is not None:
            out["landmarks"] = [[round(x, 2), round(y, 2)] for x, y in self.landmarks]
        return out


@dataclass
class LabelResult:
    """Everything found in one photo.

    Attributes:
        faces: one :class:`FaceResult` per detected face, highest detector score first (empty: no face).
        image_size: ``(width, height)`` of the photo.
        source: the file labelled, when known.
        embedder: the embedder tag used for matching.
        prototype_method: how people were summarised (``medoid``...).
        threshold: the unknown-face threshold used (None: every face gets the nearest person's name).
        min_margin: the runner-up margin a name also needs (0: none; a face under the threshold that wins by
            less is "unknown").
        warnings: messages for the user (empty gallery, no calibrated threshold...).
    """

    faces: list[FaceResult]
    image_size: tuple[int, int]
    source: str | None = None
    embedder: str | None = None
    prototype_method: str = DEFAULT_METHOD
    threshold: float | None = None
    warnings: list[str] = field(default_factory=list)
    min_margin: float = 0.0

    def __len__(self) -> int:
        return len(self.faces)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.faces]

    @property
    def boxes(self) -> np.ndarray:
        """float64 (N, 4) boxes ``x1, y1, x2, y2``."""
        return np.asarray([f.box for f in self.faces], dtype=np.float64).reshape(-1, 4)

    def to_json(self) -> dict[str, Any]:
        """The JSON document written per photo (schema in ``docs/system.md``)."""
        return {
            "schema": LABEL_SCHEMA,
            "source": self.source,
            "image_size": list(self.image_size),
            "embedder": self.embedder,
            "prototype_method": self.prototype_method,
            "threshold": _fin(self.threshold, 6),
            "min_margin": _fin(self.min_margin, 6),
            "faces": [f.to_dict() for f in self.faces],
            "warnings": list(self.warnings),
        }

    def labels(self, digits: int = 2) -> list[str]:
        """``"Alice 0.62"`` per face (just the name when there is no distance)."""
        from iznet.viz.draw import format_label

        return [format_label(f.name, f.distance, digits) for f in self.faces]

    def draw(self, image: np.ndarray, color: tuple[int, int, int] = (255, 0, 0), landmarks: bool = False,
             **kwargs: Any) -> np.ndarray:
        """A copy of ``image`` (uint8 (H, W, 3)) with a red box and ``name distance`` on every face, and with
        ``landmarks`` its five points as dots (faces without points get none).

        Extra keyword arguments go to :func:`iznet.viz.draw.draw_detections` (``font=``, ``line_width=``...).
        """
        from iznet.viz.draw import draw_detections

        points = None
        if landmarks:
            points = [f.landmarks for f in self.faces]
        return draw_detections(image, self.boxes, self.labels(), color=color, landmarks=points, **kwargs)
