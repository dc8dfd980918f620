"""Detector settings that need no PyTorch: the post-processing thresholds and the test-time augmentation.

They live apart from the code that uses them (:mod:`iznet.detect.postprocess`, :mod:`iznet.detect.tta`, which
re-export them) so that the torch-free label path (:mod:`iznet.detect.numpy_post`, :mod:`iznet.export.lite`)
reads the same defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Pixels of input per grid cell (the backbone downsamples by 32: 416 -> 13x13).
STRIDE = 32


@dataclass(frozen=True)
class PostprocessConfig:
    """Thresholds of :func:`postprocess`.

    Attributes:
        conf_threshold: keep boxes whose confidence is at least this.
        iou_threshold: NMS drops a box overlapping a higher-scored kept box by more than this IoU.
        max_detections: keep at most this many boxes per image (highest scores).
    """

    conf_threshold: float = 0.3
    iou_threshold: float = 0.4
    max_detections: int = 12



@dataclass(frozen=True)
class TTAConfig:
    """Which passes a detector runs and how they are fused.

    Attributes:
        scales: input sides as multiples of the trained side (each rounded to a multiple of 32).
        flip: also run every side on the mirror image.
        vote_iou: candidates overlapping a kept box at least this much vote on its coordinates.
        candidate_threshold: lowest confidence of a candidate (the operating threshold, if lower, wins).
    """

    scales: tuple[float, ...] = (1.0, 1.3)
    flip: bool = True
    vote_iou: float = 0.5
    candidate_threshold: float = 0.01

    def __post_init__(self) -> None:
        if not self.scales or any(not (0.25 <= float(s) <= 4.0) for s in self.scales):
            raise ValueError(f"TTA scales must be between 0.25 and 4 (at least one), got {self.scales}")
        if not 0.0 < self.vote_iou <= 1.0:
            raise ValueError(f"vote_iou must be in (0, 1], got {self.vote_iou}")
        if not 0.0 <= self.candidate_threshold < 1.0:
            raise ValueError(f"candidate_threshold must be in [0, 1), got {self.candidate_threshold}")

    def sides(self, trained: int) -> tuple[int, ...]:
        """The input sides for a detector trained at ``trained`` pixels (distinct, ascending)."""
        return tuple(sorted({max(STRIDE, STRIDE * round(float(s) * trained / STRIDE)) for s in self.scales}))

    def passes(self, trained: int) -> int:
        """How many forward passes one image takes."""
        return len(self.sides(trained)) * (2 if self.flip else 1)

    def is_single_pass(self, trained: int) -> bool:
        return self.sides(trained) == (trained,) and not self.flip


TTA_MODES = {
    "off": TTAConfig(scales=(1.0,), flip=False),
    "flip": TTAConfig(scales=(1.0,), flip=True),
    "full": TTAConfig(scales=(1.0, 1.3), flip=True),
}
DEFAULT_TTA_MODE = "full"


def tta_config(mode: str | TTAConfig | None) -> TTAConfig:
    """A :class:`TTAConfig` from a mode name (``off``, ``flip``, ``full``; None: the default, ``full``).

    Raises:
        ValueError: an unknown mode name.
    """
    if isinstance(mode, TTAConfig):
        return mode
    key = DEFAULT_TTA_MODE if mode is None else str(mode).strip().lower()
    if key not in TTA_MODES:
        raise ValueError(f"unknown test-time augmentation {mode!r}; choose one of {', '.join(TTA_MODES)}")
    return TTA_MODES[key]


def tta_mode_name(tta: TTAConfig) -> str:
    """The mode name of ``tta``, or ``custom``."""
    return next((k for k, v in TTA_MODES.items() if v == tta), "custom")


@dataclass(frozen=True)
class RelookConfig:
    """The second look at small faces for their landmarks (:mod:`iznet.detect.relook`).

    Attributes:
        zoom: side of the square cut around a face / the longer side of its box.
        below: faces whose box is under this many pixels of the detector's input (its longer side) get it.
        tta: the test-time augmentation of the second look (a mode name).
        min_iou: the face found in the square must overlap the first look's box at least this much.
        conf: the confidence threshold of the second look (None: the detector's own); the face is already
            found, so a lower one only lets more of them get new points.
    """

    zoom: float = 3.0
    below: float = 64.0
    tta: str = "off"
    min_iou: float = 0.3
    conf: float | None = None

    def __post_init__(self) -> None:
        if not 1.0 <= float(self.zoom) <= 16.0:
            raise ValueError(f"relook zoom must be between 1 and 16 (square side / box side), got {self.zoom}")
        if not float(self.below) > 0:
            raise ValueError(f"relook below must be a positive number of input pixels, got {self.below}")
        if str(self.tta) not in TTA_MODES:
            raise ValueError(f"relook tta {self.tta!r}: choose one of {', '.join(TTA_MODES)}")
        if not 0.0 <= float(self.min_iou) <= 1.0:
            raise ValueError(f"relook min_iou must lie in 0..1, got {self.min_iou}")
        if self.conf is not None and not 0.0 <= float(self.conf) <= 1.0:
            raise ValueError(f"relook conf must lie in 0..1, got {self.conf}")

    def second_look(self, config: PostprocessConfig) -> tuple[PostprocessConfig, TTAConfig]:
        """How the second look runs: the first look's post-processing ``config`` with this look's confidence
        threshold, and this look's test-time augmentation."""
        if self.conf is not None:
            config = PostprocessConfig(float(self.conf), config.iou_threshold, config.max_detections)
        return config, tta_config(self.tta)


#: The second look the loaded detectors use (``iznet.loading``; chosen on development people,
#: docs/detection.md, "A second look at small faces").
DEFAULT_RELOOK = RelookConfig()
