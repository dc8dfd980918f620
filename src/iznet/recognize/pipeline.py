"""The IZ*Net system: photo -> detect -> crop -> embed -> match the gallery -> names (and a labelled image).

:class:`Pipeline` strings together a face detector, an embedder and a gallery:

1. the detector finds boxes in the photo (any object with ``detect(image (H, W, 3) uint8) -> Detections``,
   or a plain callable doing the same);
2. every box is cut with :func:`iznet.data.crops.crop_face` (or aligned on its landmarks for an embedder
   trained on aligned faces, :func:`iznet.data.align.face_pixels`; the crop convention, so the
   crops look like the training crops) at the embedder's ``input_size``;
3. all faces of a photo are embedded in one batch;
4. a :class:`~iznet.recognize.matcher.Matcher` built from the gallery's prototypes for the embedder's tag
   (:func:`embedder_tag`) names each face, or answers ``"unknown"`` above the threshold.

The steps live beside it (:mod:`~iznet.recognize.faces`: detection and face pixels;
:mod:`~iznet.recognize.tags`: the embedder's gallery tag; :mod:`~iznet.recognize.results`: what a label
returns), as do the gallery chores built on them (:mod:`~iznet.recognize.enrol`: enrolling, re-embedding);
this module re-exports them. Models are loaded by :mod:`iznet.loading`; the LFW calibration of the
unknown-face threshold is :mod:`iznet.eval.calibration`. See ``docs/system.md``.

>>> p = Pipeline(detector, load_embedder("raw"), "gallery.db")     # doctest: +SKIP
>>> result = p.label_file("team.jpg")                               # doctest: +SKIP
>>> [f.name for f in result.faces]                                  # doctest: +SKIP
['Alice', 'unknown']
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from iznet.data.crops import FACE_CROP_SCALE
from iznet.data.images import load_image
from iznet.errors import GalleryError, ModelError
from iznet.recognize.gallery import EMPTY_MESSAGE, SOURCE_META_PREFIX, Gallery
from iznet.recognize.matcher import Match, Matcher, SpreadRule, gallery_threshold
from iznet.recognize.prototypes import DEFAULT_METHOD
from iznet.utils.assets import (ASSETS_DIR, DEFAULT_DETECTOR_FILE, DEFAULT_EMBEDDER_FILE, DEMO_DIR, DEMO_GALLERY,
                                DEMO_PHOTO, DemoAssets, default_detector_spec, default_embedder_spec, demo_assets)

# the steps the pipeline strings together, and the gallery chores built on them (re-exported: this module is
# the system's front door, ``from iznet.recognize.pipeline import enroll_files`` keeps working)
from iznet.recognize.enrol import (ENROLL_HINT, EnrollReport, FaceCrop, RebuildReport, check_gallery_embedder,
                                   count_images, enroll_files, enroll_folder, face_crop_from_file,
                                   ignored_in_folder, person_folders, rebuild_embeddings)
from iznet.recognize.faces import (NO_FACE_RETRY_PAD, FaceDetector, _check_image, crops_to_batch, detect_faces,
                                   embedder_batch,
                                   detect_faces_with_landmarks, detect_on_canvas, embedder_crops, face_crops,
                                   whole_image_crop)
from iznet.recognize.results import LABEL_SCHEMA, FaceResult, LabelResult
from iznet.recognize.tags import embedder_tag

if TYPE_CHECKING:  # the embedder module imports torch; the label path must not need it
    from iznet.recognize.embedder import Embedder

_logger = logging.getLogger(__name__)

GALLERY_ENV = "IZNET_GALLERY"


# ---------------------------------------------------------------------------------------------- defaults
def default_gallery_path(explicit: str | Path | None = None) -> Path:
    """Where the gallery lives: ``explicit``, else ``$IZNET_GALLERY``, else
    ``$XDG_DATA_HOME/iznet/gallery.db`` (``XDG_DATA_HOME`` defaults to ``~/.local/share``)."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(GALLERY_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "iznet" / "gallery.db"


# ---------------------------------------------------------------------------------------------- pipeline
class Pipeline:
    """Detect, crop, embed and name the faces of a photo.

    Args:
        detector: ``detect(image (H, W, 3) uint8) -> Detections`` (or a callable).
        embedder: an :class:`~iznet.recognize.embedder.Embedder` (see :func:`iznet.loading.load_embedder`).
        gallery: a :class:`Gallery` (left open) or the path of one (opened read-only for each
            :meth:`reload`; a missing file counts as an empty gallery and is not created).
        prototype_method: ``medoid`` (the write-up's choice), ``centroid``, ``kmeans`` or ``all``.
        k: centres per person for ``kmeans``.
        threshold: ``"stored"`` (the one calibrated for this embedder, see ``iznet gallery calibrate``;
            none stored means no threshold), None (no threshold: always the nearest person), or a distance.
        margin_scale: crop side relative to the face box (the crop convention's ``scale``).
        batch_size: faces per forward pass of the embedder.

    Raises:
        GalleryError: the gallery holds embeddings, but none from this embedder (use the embedder it was
            enrolled with, or ``iznet gallery rebuild``).

    An empty gallery is not an error: faces are found and all answered ``"unknown"``, with a warning in
    :attr:`warnings` and in every result.
    """

    def __init__(
        self,
        detector: Any,
        embedder: Embedder,
        gallery: Gallery | str | Path,
        prototype_method: str = DEFAULT_METHOD,
        k: int = 3,
        threshold: float | str | None = "stored",
        margin_scale: float = FACE_CROP_SCALE,
        batch_size: int = 64,
    ):
        if isinstance(threshold, str) and threshold != "stored":
            raise GalleryError(f"threshold must be 'stored', None or a number, got {threshold!r}")
        if not margin_scale > 0:
            raise ModelError(f"margin_scale must be positive, got {margin_scale}")
        self.detector = detector
        self.embedder = embedder
        self.tag = embedder_tag(embedder)
        self.gallery = gallery
        self.prototype_method = prototype_method
        self.k = int(k)
        self.threshold_setting = threshold
        self.margin_scale = float(margin_scale)
        self.batch_size = int(batch_size)
        self.matcher: Matcher | None = None
        self.threshold: float | None = None
        self.min_margin = 0.0
        self.self_rule = None  # the rule the gallery chose on its own photos, when it did
        self.warnings: list[str] = []
        self.reload()

    @property
    def gallery_path(self) -> Path:
        return self.gallery.path if isinstance(self.gallery, Gallery) else Path(self.gallery)

    def reload(self) -> None:
        """Re-read the gallery's prototypes and threshold (call after enrolling people)."""
        if isinstance(self.gallery, Gallery):
            self._build_matcher(self.gallery)
        elif not Path(self.gallery).exists():
            self._set_empty()
        else:
            with Gallery(self.gallery, create=False, readonly=True) as g:
                self._build_matcher(g)

    def _set_empty(self) -> None:
        self.matcher, self.threshold, self.min_margin, self.self_rule = None, None, 0.0, None
        msg = f"gallery {self.gallery_path} is empty: every face is 'unknown'; {ENROLL_HINT}"
        self.warnings = [msg]  # the caller shows them; logged at debug level only to avoid saying it twice
        _logger.debug("%s", msg)

    def _build_matcher(self, g: Gallery) -> None:
        tags = g.embedders()
        if not tags:
            self._set_empty()
            return
        # raises GalleryError naming the tags the gallery holds when this embedder is not among them
        setting, margin, spread = self.threshold_setting, 0.0, None
        cal = getattr(self.embedder, "calibration", None) or {}
        shipped = setting == "stored" and g.threshold(self.tag) is None
        if shipped:
            # nothing calibrated in this gallery: the rule the embedder was shipped with, if any
            setting = getattr(self.embedder, "calibrated_threshold", None)
            margin = float(cal.get("margin", 0.0) or 0.0)
            if setting is not None and cal.get("spread_rule") is not None:
                spread = SpreadRule.from_dict(cal["spread_rule"])
        self.matcher = Matcher.from_gallery(g, self.tag, method=self.prototype_method, k=self.k, threshold=setting,
                                            min_margin=margin, spread_rule=spread)
        self.self_rule = None
        if shipped and setting is not None:
            tighten = cal.get("gallery_far") is not None
            own_rule = cal.get("self_rule") is not None and self.prototype_method == "centroid"
            if tighten or own_rule:
                X, labels, names = g.embeddings(self.tag)
            if tighten:  # where the gallery's own people are look-alikes (iznet.recognize.matcher.gallery_threshold)
                tg = gallery_threshold(self.matcher, X, [names[i] for i in labels], float(cal["gallery_far"]))
                if tg < self.matcher.threshold:
                    self.matcher.threshold = float(tg)
            if own_rule:  # a gallery with enough photos chooses its own threshold and margin
                from iznet.recognize.self_rule import choose_self_rule

                self.self_rule = choose_self_rule(X, labels, **cal["self_rule"])
                if self.self_rule is not None:
                    self.matcher.threshold = self.self_rule.threshold
                    self.matcher.min_margin = self.self_rule.margin
        self.threshold = self.matcher.threshold
        self.min_margin = self.matcher.min_margin
        self.warnings = []
        if self.threshold is None:
            msg = (f"no unknown-face threshold for embedder {self.tag}: every face gets the nearest person's name,"
                   " strangers too; calibrate one with `iznet gallery calibrate` or pass --threshold")
            self.warnings.append(msg)
            _logger.debug("%s", msg)

    def embed_boxes(self, image: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """Embeddings (N, D) float32 of the faces at ``boxes`` (N, 4) in ``image``, in one batch per
        ``batch_size`` faces; crops follow the embedder's convention (:func:`iznet.data.align.face_pixels`:
        the box crop, or the aligned crop from ``landmarks`` (N, 5, 2) for an embedder trained on those)."""
        crops = embedder_crops(self.embedder, image, boxes, landmarks, self.margin_scale)
        return self.embedder.embed(embedder_batch(self.embedder, crops), batch_size=self.batch_size)

    def label(self, image: np.ndarray, source: str | Path | None = None) -> LabelResult:
        """Find and name every face in ``image``.

        Args:
            image: uint8 (H, W, 3) RGB.
            source: the file it came from (stored in the result).

        Returns:
            A :class:`LabelResult`; no face gives an empty ``faces`` list, not an error.
        """
        img = _check_image(image)
        boxes, scores, points = detect_faces_with_landmarks(self.detector, img, retry_pad=NO_FACE_RETRY_PAD)
        matches: list[Match | None] = [None] * len(boxes)
        if len(boxes) and self.matcher is not None:
            matches = self.matcher.match(self.embed_boxes(img, boxes, points))
        pts = list(points) if points is not None else [None] * len(boxes)
        faces = [FaceResult.from_match(b, s, m, p) for b, s, m, p in zip(boxes, scores, matches, pts)]
        return LabelResult(
            faces=faces,
            image_size=(int(img.shape[1]), int(img.shape[0])),
            source=None if source is None else str(source),
            embedder=self.tag,
            prototype_method=self.prototype_method,
            threshold=self.threshold,
            warnings=list(self.warnings),
            min_margin=self.min_margin,
        )

    def label_file(self, path: str | Path) -> LabelResult:
        """:meth:`label` on an image file. Raises :class:`ImageError` naming the file when it cannot be read."""
        return self.label(load_image(path), source=path)


__all__ = [
    "ASSETS_DIR", "check_gallery_embedder", "DemoAssets", "EMPTY_MESSAGE", "EnrollReport",
    "detect_faces_with_landmarks", "FaceCrop", "FaceDetector", "FaceResult", "LabelResult", "Pipeline",
    "RebuildReport", "count_images", "crops_to_batch", "default_detector_spec", "default_embedder_spec",
    "default_gallery_path", "demo_assets", "detect_faces", "detect_on_canvas", "embedder_crops", "embedder_tag",
    "enroll_files", "enroll_folder", "face_crop_from_file", "face_crops", "ignored_in_folder", "person_folders",
    "rebuild_embeddings", "whole_image_crop", "NO_FACE_RETRY_PAD", "LABEL_SCHEMA", "ENROLL_HINT", "GALLERY_ENV",
    "DEFAULT_DETECTOR_FILE", "DEFAULT_EMBEDDER_FILE", "DEMO_DIR", "DEMO_GALLERY", "DEMO_PHOTO", "FACE_CROP_SCALE",
    "SOURCE_META_PREFIX",
]
