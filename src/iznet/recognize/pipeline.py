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

The same module holds the gallery chores built on those steps (enrolling photos, re-embedding a gallery
with another model, calibrating the unknown-face threshold) and the defaults the command line uses
(gallery location, bundled models). See ``docs/system.md``.

>>> p = Pipeline(detector, load_embedder("raw"), "gallery.db")     # doctest: +SKIP
>>> result = p.label_file("team.jpg")                               # doctest: +SKIP
>>> [f.name for f in result.faces]                                  # doctest: +SKIP
['Alice', 'unknown']
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np
import torch

from iznet.data.crops import FACE_CROP_SCALE, crop_face
from iznet.data.images import list_images, load_image
from iznet.detect.results import Detections
from iznet.errors import DataError, GalleryError, ImageError, IznetError, ModelError
from iznet.recognize.embedder import (Embedder, EnsembleEmbedder, NetworkEmbedder, PCAEmbedder, RawPixelEmbedder,
                                      load_embedder)
from iznet.recognize.gallery import EMPTY_MESSAGE, SOURCE_META_PREFIX, Gallery, sha256_file, validate_name
from iznet.recognize.matcher import UNKNOWN, Match, Matcher, calibrate_threshold, gallery_threshold

_logger = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
"""``src/iznet/assets``: models and demo files shipped inside the package."""

DEFAULT_EMBEDDER_FILE = ASSETS_DIR / "embedder.pt"
DEFAULT_DETECTOR_FILE = ASSETS_DIR / "detector.pt"
DEMO_DIR = ASSETS_DIR / "demo"
DEMO_PHOTO = DEMO_DIR / "photo.jpg"
DEMO_GALLERY = DEMO_DIR / "gallery.db"

GALLERY_ENV = "IZNET_GALLERY"
LABEL_SCHEMA = "iznet-label-v1"

ENROLL_HINT = "enrol people with `iznet enroll NAME PHOTOS...` or `iznet enroll --from-folder ROOT`"


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


def default_embedder_spec() -> str:
    """Path of the bundled embedder checkpoint (``iznet/assets/embedder.pt``).

    Raises:
        ModelError: no embedder is bundled with this installation yet.
    """
    if DEFAULT_EMBEDDER_FILE.is_file():
        return str(DEFAULT_EMBEDDER_FILE)
    raise ModelError(
        f"no default embedder is bundled yet (expected {DEFAULT_EMBEDDER_FILE}); pass --embedder with a"
        " checkpoint you trained (iznet train ...) or a baseline such as 'raw'"
    )


def default_detector_spec() -> str:
    """Path of the bundled face detector checkpoint (``iznet/assets/detector.pt``).

    Raises:
        ModelError: no detector is bundled with this installation yet.
    """
    if DEFAULT_DETECTOR_FILE.is_file():
        return str(DEFAULT_DETECTOR_FILE)
    raise ModelError(
        f"no default detector is bundled yet (expected {DEFAULT_DETECTOR_FILE}); pass --detector with"
        " 'haar' (OpenCV's cascade), 'yunet:PATH' or a detector checkpoint"
    )


@dataclass(frozen=True)
class DemoAssets:
    """The bundled demo: a photo and a gallery enrolled with the bundled embedder."""

    photo: Path
    gallery: Path


def demo_assets() -> DemoAssets:
    """The bundled demo files (``iznet/assets/demo/photo.jpg`` and ``gallery.db``).

    Raises:
        IznetError: they are not bundled with this installation yet.
    """
    missing = [p for p in (DEMO_PHOTO, DEMO_GALLERY) if not p.is_file()]
    if missing:
        raise IznetError(
            f"no demo is bundled yet (missing {', '.join(str(p) for p in missing)}); label your own photos with"
            " `iznet label PHOTO --embedder ... --detector ...`"
        )
    return DemoAssets(photo=DEMO_PHOTO, gallery=DEMO_GALLERY)


def load_embedder_spec(spec: str | None = None, device: str | None = None) -> Embedder:
    """An embedder usable for enrolment and labelling from a ``--embedder`` value (None: the bundled default).

    Raises:
        ModelError: unknown spec, missing file, or a baseline that must be fitted first (``pca``): the
            gallery needs an embedder that gives the same vector for the same face every time.
    """
    emb = load_embedder(spec if spec else default_embedder_spec(), device=device)
    if emb.needs_fit:
        raise ModelError(
            f"embedder {spec!r} must be fitted on training faces before use; the gallery needs a fixed model:"
            " use a trained checkpoint or 'raw'"
        )
    if not emb.trained:
        _logger.warning("embedder %s has random weights (untrained): its names mean nothing", emb.name)
    return emb


def load_detector_spec(spec: str | None = None, tta: Any = None) -> Any:
    """A face detector from a ``--detector`` value: ``haar``, ``yunet:PATH`` or a detector checkpoint
    (None: the bundled default). Delegates to :func:`iznet.detect.detector.load_detector`; ``tta`` is the
    test-time augmentation of iznet detectors (``off``, ``flip``, ``full``; None: ``full``).

    Raises:
        ModelError: unknown spec or missing file.
    """
    spec = spec if spec else default_detector_spec()
    try:
        from iznet.detect.detector import load_detector
    except ImportError as e:
        raise ModelError(f"cannot load detector {spec!r}: iznet.detect.detector is unavailable ({e})") from None
    return load_detector(spec, tta=tta)


# ---------------------------------------------------------------------------------------------- embedder tag
def _hash_state_dict(h: "hashlib._Hash", state: dict[str, torch.Tensor]) -> None:
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())


def embedder_tag(embedder: Embedder) -> str:
    """The name under which a gallery stores this embedder's vectors.

    The rule, the one place it is defined:

    * an embedder with a non-empty string attribute ``tag`` gives it;
    * :class:`RawPixelEmbedder`: its ``name``, which fixes it (e.g. ``raw(size=32;gray=True;crop=1)``);
    * a network: ``<model>@<h>`` where ``<h>`` is the first 12 hex digits of a SHA-256 over the model class,
      the input size, the flip-TTA flag and every weight tensor (name, dtype, shape, bytes). The checkpoint's
      file name and metadata do not count: the same weights give the same tag wherever the file lies, and
      any change of weights gives a new tag;
    * a fitted :class:`PCAEmbedder`: ``pca@<h>`` over its settings and fitted mean and components;
    * an :class:`EnsembleEmbedder`: ``ensemble@<h>`` over its members' tags in order;
    * anything else: ``<name>@<h>`` over its :meth:`~Embedder.describe` output.

    Commas become semicolons: the gallery lists a picture's tags comma-separated.

    >>> embedder_tag(RawPixelEmbedder(size=16))
    'raw(size=16;gray=True;crop=1)'
    """
    tag = getattr(embedder, "tag", None)
    if isinstance(tag, str) and tag.strip():
        return tag.replace(",", ";")
    if isinstance(embedder, RawPixelEmbedder):
        return embedder.name.replace(",", ";")
    h = hashlib.sha256()
    head = str(getattr(embedder, "name", type(embedder).__name__)).split("@")[0].split("(")[0] or "embedder"
    if isinstance(embedder, NetworkEmbedder):
        h.update(f"{type(embedder.model).__name__}|{embedder.input_size}|tta={embedder.tta}".encode())
        _hash_state_dict(h, embedder.model.state_dict())
    elif isinstance(embedder, EnsembleEmbedder):
        h.update("|".join(embedder_tag(m) for m in embedder.members).encode())
        head = "ensemble"
    elif isinstance(embedder, PCAEmbedder):
        if embedder.pca is None:
            raise ModelError(f"{embedder.name} is not fitted; a gallery needs a fitted embedder")
        h.update(f"{embedder.size}|{embedder.gray}|{embedder.crop}|{embedder.whiten}".encode())
        for a in (embedder.pca.mean_, embedder.pca.components_, embedder.pca.explained_variance_):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        head = "pca"
    else:
        desc = {k: v for k, v in embedder.describe().items() if k not in ("device", "name")}
        h.update(json.dumps(desc, sort_keys=True, default=str).encode())
    return f"{head.replace(',', ';')}@{h.hexdigest()[:12]}"


# ---------------------------------------------------------------------------------------------- detector glue
class FaceDetector(Protocol):
    """What the pipeline needs from a detector."""

    def detect(self, image: np.ndarray) -> Detections:
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
    boxes, scores, _ = _detect_on_canvas(detector, image, pad)
    return boxes, scores


def _detect_on_canvas(detector: Any, image: np.ndarray, pad: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
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
    if isinstance(dets, Detections):
        xyxy, scores = dets.numpy()
    else:
        xyxy, scores = getattr(dets, "xyxy", None), getattr(dets, "scores", None)
        if xyxy is None or scores is None:
            raise ModelError(f"the detector returned {type(dets).__name__}; expected a Detections (xyxy, scores)")
        xyxy = xyxy.detach().cpu().numpy() if isinstance(xyxy, torch.Tensor) else xyxy
        scores = scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else scores
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ModelError(f"the detector returned {len(boxes)} boxes but {len(scores)} scores")
    if points is not None:
        points = points.detach().cpu().numpy() if isinstance(points, torch.Tensor) else points
        points = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2)
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
        return _detect_on_canvas(detector, image, retry_pad)
    return boxes[order], scores[order], (points[order] if points is not None else None)


def _check_image(image: Any) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ImageError("<array>", f"expected a uint8 (H, W, 3) RGB image, got {img.dtype} {img.shape}")
    return img


def crops_to_batch(crops: Sequence[np.ndarray]) -> torch.Tensor:
    """(S, S, 3) uint8 crops -> the embedders' uint8 (N, 3, S, S) tensor."""
    if not crops:
        raise ModelError("no crops to embed")
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()


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
        warnings: messages for the user (empty gallery, no calibrated threshold...).
    """

    faces: list[FaceResult]
    image_size: tuple[int, int]
    source: str | None = None
    embedder: str | None = None
    prototype_method: str = "medoid"
    threshold: float | None = None
    warnings: list[str] = field(default_factory=list)

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


# ---------------------------------------------------------------------------------------------- pipeline
class Pipeline:
    """Detect, crop, embed and name the faces of a photo.

    Args:
        detector: ``detect(image (H, W, 3) uint8) -> Detections`` (or a callable).
        embedder: an :class:`~iznet.recognize.embedder.Embedder` (see :func:`load_embedder_spec`).
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
        prototype_method: str = "medoid",
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
        self.matcher, self.threshold = None, None
        msg = f"gallery {self.gallery_path} is empty: every face is 'unknown'; {ENROLL_HINT}"
        self.warnings = [msg]  # the caller shows them; logged at debug level only to avoid saying it twice
        _logger.debug("%s", msg)

    def _build_matcher(self, g: Gallery) -> None:
        tags = g.embedders()
        if not tags:
            self._set_empty()
            return
        # raises GalleryError naming the tags the gallery holds when this embedder is not among them
        setting, margin = self.threshold_setting, 0.0
        cal = getattr(self.embedder, "calibration", None) or {}
        shipped = setting == "stored" and g.threshold(self.tag) is None
        if shipped:
            # nothing calibrated in this gallery: the rule the embedder was shipped with, if any
            setting = getattr(self.embedder, "calibrated_threshold", None)
            margin = float(cal.get("margin", 0.0) or 0.0)
        self.matcher = Matcher.from_gallery(g, self.tag, method=self.prototype_method, k=self.k, threshold=setting,
                                            min_margin=margin)
        if shipped and setting is not None and cal.get("gallery_far") is not None:
            # tightened where the gallery's own people are look-alikes (iznet.recognize.matcher.gallery_threshold)
            X, labels, names = g.embeddings(self.tag)
            tg = gallery_threshold(self.matcher, X, [names[i] for i in labels], float(cal["gallery_far"]))
            if tg < self.matcher.threshold:
                self.matcher.threshold = float(tg)
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
        return self.embedder.embed(crops_to_batch(crops), batch_size=self.batch_size)

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
        )

    def label_file(self, path: str | Path) -> LabelResult:
        """:meth:`label` on an image file. Raises :class:`ImageError` naming the file when it cannot be read."""
        return self.label(load_image(path), source=path)


# ---------------------------------------------------------------------------------------------- enrolment
@dataclass
class FaceCrop:
    """One picture turned into a face crop for enrolment.

    Attributes:
        path: the file.
        sha256: hex SHA-256 of its bytes.
        crop: uint8 (S, S, 3).
        box: the detected face box (None: the whole image was the crop).
        n_faces: faces the detector found (1 when not detecting).
        landmarks: the face's five points when the detector gives them.
    """

    path: Path
    sha256: str
    crop: np.ndarray
    box: tuple[float, float, float, float] | None
    n_faces: int = 1
    landmarks: np.ndarray | None = None


def face_crop_from_file(path: str | Path, size: int, detector: Any | None = None,
                        margin_scale: float = FACE_CROP_SCALE, convention: str = "box") -> FaceCrop:
    """Read a picture of one person and cut their face.

    Args:
        path: the image file.
        size: crop side (the embedder's ``input_size``).
        detector: None when the image already is a face crop (its centre square is used); otherwise the
            most confident face is kept (``n_faces`` tells how many there were).
        margin_scale: crop convention scale.
        convention: ``box`` or ``aligned`` (the embedder's :attr:`~iznet.recognize.embedder.Embedder.face_crop`).

    Raises:
        ImageError: unreadable file. NoFaceError: the detector found no face.
    """
    from iznet.errors import NoFaceError

    path = Path(path)
    img = load_image(path)
    if detector is None:
        return FaceCrop(path, sha256_file(path), whole_image_crop(img, size), None, 1)
    boxes, _, points = detect_faces_with_landmarks(detector, img, retry_pad=NO_FACE_RETRY_PAD)
    if len(boxes) == 0:
        raise NoFaceError(path)
    box = tuple(float(v) for v in boxes[0])
    lm = points[0] if points is not None else None
    crop = face_crops(img, boxes[:1], None if lm is None else lm[None], size, convention, margin_scale)[0]
    return FaceCrop(path, sha256_file(path), crop, box, len(boxes), lm)


@dataclass
class EnrollReport:
    """What :func:`enroll_files` did for one person.

    Attributes:
        name: the person's stored name ('' when nothing could be enrolled).
        created: the person is new.
        added: files enrolled.
        duplicates: files that person already had (same content).
        skipped: ``(file, reason)`` for each file not enrolled (unreadable, no face).
        several_faces: ``(file, n)`` for photos with n > 1 faces, where the most confident was kept.
    """

    name: str
    created: bool = False
    added: list[Path] = field(default_factory=list)
    duplicates: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    several_faces: list[tuple[Path, int]] = field(default_factory=list)


def enroll_files(
    gallery: Gallery,
    name: str,
    paths: Iterable[str | Path],
    embedder: Embedder,
    detector: Any | None = None,
    method: str = "medoid",
    k: int = 3,
    margin_scale: float = FACE_CROP_SCALE,
    progress: Callable[[int], None] | None = None,
) -> EnrollReport:
    """Enrol pictures of one person: crop (detecting the most confident face unless ``detector`` is None),
    embed in batches, store in ONE gallery transaction, and remember each crop box for rebuilds.

    Files that cannot be read or hold no face are skipped and listed, never silently dropped.

    Args:
        gallery: the gallery written.
        name: the person.
        paths: image files (photos of that one person, or face crops when ``detector`` is None).
        embedder: the embedder (its :func:`embedder_tag` must match the gallery's, unless it is empty).
        detector: face detector, or None for face crops.
        method, k: prototypes stored for the person.
        margin_scale: crop convention scale.
        progress: called with 1 per file handled.

    Raises:
        GalleryError: bad name, wrong embedder for the gallery, or no file of the person could be used.
    """
    from iznet.errors import NoFaceError

    validate_name(name)
    tag = embedder_tag(embedder)
    check_gallery_embedder(gallery, tag)
    report = EnrollReport(name="")
    crops: list[FaceCrop] = []
    for p in paths:
        p = Path(p)
        try:
            fc = face_crop_from_file(p, int(embedder.input_size), detector, margin_scale,
                                     getattr(embedder, "face_crop", "box"))
        except ImageError as e:
            report.skipped.append((p, e.reason))
        except NoFaceError:
            report.skipped.append((p, "no face found"))
        except GalleryError as e:  # sha256_file on a file that vanished meanwhile
            report.skipped.append((p, str(e)))
        else:
            crops.append(fc)
            if fc.n_faces > 1:
                report.several_faces.append((p, fc.n_faces))
        if progress is not None:
            progress(1)
    if not crops:
        shown = report.skipped[:10]
        why = "; ".join(f"{p.name}: {r}" for p, r in shown) or "no images were given"
        if len(report.skipped) > len(shown):
            why += f"; and {len(report.skipped) - len(shown)} more"
        raise GalleryError(f"nothing to enrol for {name!r}: {why}")
    emb = embedder.embed(crops_to_batch([c.crop for c in crops]), batch_size=64)
    items = [(str(c.path.resolve()), c.sha256, e) for c, e in zip(crops, emb)]
    # the crop records go in the enrolment's own transaction: a crash cannot keep one without the other
    sources = {c.sha256: _source_record(c, margin_scale) for c in crops}
    res = gallery.enroll(name, items, embedder_tag=tag, method=method, k=k, sources=sources)
    by_label = {str(c.path.resolve()): c for c in crops}
    report.name, report.created = res.name, res.created
    report.added = [by_label[a].path for a in res.added]
    report.duplicates = [by_label[d].path for d in res.duplicates]
    return report


def _source_record(c: FaceCrop, margin_scale: float) -> dict:
    """How an enrolled picture was cut (its box, margin and landmarks), so a rebuild cuts it the same way."""
    rec = {"box": None if c.box is None else [round(v, 3) for v in c.box], "margin": margin_scale}
    if c.landmarks is not None:
        rec["landmarks"] = [[round(float(x), 3), round(float(y), 3)] for x, y in c.landmarks]
    return rec


def check_gallery_embedder(gallery: Gallery, tag: str) -> None:
    """Raise :class:`GalleryError` when ``gallery`` holds embeddings but none from ``tag`` (enrolling would mix
    models whose distances mean different things)."""
    tags = gallery.embedders()
    if tags and tag not in tags:
        raise GalleryError(
            f"gallery {gallery.path} holds embeddings from {', '.join(repr(t) for t in tags)}, not from {tag!r};"
            " use the embedder it was enrolled with, or `iznet gallery rebuild --embedder ...` first"
        )


def person_folders(root: str | Path) -> list[tuple[str, list[Path]]]:
    """``root/<person>/<image>``: (folder name, its images sorted) per person folder, sorted by name.

    Hidden folders are ignored, and ``unsorted/`` in a folder written by ``iznet cluster`` (it holds
    ``clusters.json``); folders without images are kept with an empty list (the caller reports them).

    Raises:
        DataError: ``root`` is not a folder, or holds no sub-folders.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; expected ROOT/<person>/<image>")
    # a folder written by `iznet cluster` keeps the faces it could not place in unsorted/: not a person
    clustered = (root / "clusters.json").is_file()
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
                  and not (clustered and d.name == "unsorted"))
    if not dirs:
        raise DataError(f"{root} has no person sub-folders; expected ROOT/<person>/<image>")
    return [(d.name, list_images(d, recursive=False)) for d in dirs]


def ignored_in_folder(root: str | Path) -> list[str]:
    """What ``--from-folder ROOT`` does not enrol because it is not ``ROOT/<person>/<image>``: images lying in
    ROOT itself and folders nested inside a person's folder (said to the user, never silently skipped)."""
    root = Path(root)
    out = [f"{p}: an image at the top level belongs to no person folder" for p in list_images(root, recursive=False)]
    for name, _ in person_folders(root):
        for sub in sorted(d for d in (root / name).iterdir() if d.is_dir() and not d.name.startswith(".")):
            out.append(f"{sub}: a folder inside a person's folder is not searched")
    return out


def enroll_folder(
    gallery: Gallery,
    root: str | Path,
    embedder: Embedder,
    detector: Any | None = None,
    method: str = "medoid",
    k: int = 3,
    margin_scale: float = FACE_CROP_SCALE,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[EnrollReport], list[tuple[Path, str]]]:
    """Enrol everyone in ``root/<person>/<image>`` (one transaction per person).

    Returns:
        ``(reports, problems)``: one :class:`EnrollReport` per person enrolled, and ``(path, reason)`` for
        every file skipped and every person folder that could not be enrolled (empty, bad name, no usable
        image). Raises only for a wrong embedder or an unusable ``root``.
    """
    check_gallery_embedder(gallery, embedder_tag(embedder))  # a wrong embedder would fail every person
    reports: list[EnrollReport] = []
    problems: list[tuple[Path, str]] = []
    for person, files in person_folders(root):
        folder = Path(root) / person
        if not files:
            problems.append((folder, "no images in this folder"))
            continue
        try:
            rep = enroll_files(gallery, person, files, embedder, detector, method, k, margin_scale, progress)
        except GalleryError as e:
            problems.append((folder, str(e)))
            continue
        reports.append(rep)
        problems.extend(rep.skipped)
    return reports, problems


def count_images(root: str | Path) -> int:
    """Number of images in the person folders of ``root`` (for a progress bar)."""
    return sum(len(files) for _, files in person_folders(root))


# ---------------------------------------------------------------------------------------------- rebuild
@dataclass
class RebuildReport:
    """What :func:`rebuild_embeddings` did.

    Attributes:
        tag: the new embedder tag.
        written: embeddings written (0 when nothing could be written).
        missing: ``(stored path, reason)`` for images whose file vanished, changed or cannot be read.
        without_box: images enrolled without a recorded crop box (re-cropped as whole-image crops).
    """

    tag: str
    written: int = 0
    missing: list[tuple[str, str]] = field(default_factory=list)
    without_box: int = 0


def rebuild_embeddings(gallery: Gallery, embedder: Embedder,
                       progress: Callable[[int], None] | None = None) -> RebuildReport:
    """Re-embed every enrolled picture with another embedder, all or nothing.

    Each stored path is read again, its SHA-256 checked against the enrolled one, cropped with the box
    recorded at enrolment (or as a whole-image crop when none was recorded) at the new embedder's input
    size and crop convention (aligned from the recorded landmarks when it was trained on aligned faces), and
    embedded. If any picture is missing, changed or unreadable, nothing is written and the
    report lists them; otherwise the embeddings and prototypes are written in one transaction
    (:meth:`Gallery.replace_embeddings`).
    """
    tag = embedder_tag(embedder)
    report = RebuildReport(tag=tag)
    size = int(embedder.input_size)
    ids: list[int] = []
    crops: list[np.ndarray] = []
    for rec in gallery.images():
        try:
            p = Path(rec.path)
            if not p.is_file():
                raise ImageError(p, "file no longer exists")
            if sha256_file(p) != rec.sha256:
                raise ImageError(p, "file content changed since it was enrolled")
            img = load_image(p)
            info = gallery.get_meta(SOURCE_META_PREFIX + rec.sha256) or {}
            box = info.get("box")
            if box is None:
                report.without_box += 1 if not info else 0
                crops.append(whole_image_crop(img, size))
            else:
                lm = info.get("landmarks")
                lm = None if lm is None else np.asarray(lm, dtype=np.float64)[None]
                crops.append(embedder_crops(embedder, img, np.asarray([box], dtype=np.float64), lm,
                                            float(info.get("margin", FACE_CROP_SCALE)))[0])
            ids.append(rec.id)
        except (ImageError, GalleryError) as e:
            report.missing.append((rec.path, getattr(e, "reason", str(e))))
        if progress is not None:
            progress(1)
    if report.missing:
        return report
    if not ids:
        raise GalleryError(f"gallery {gallery.path} has no images to rebuild; {ENROLL_HINT}")
    vecs = embedder.embed(crops_to_batch(crops), batch_size=64)
    report.written = gallery.replace_embeddings(tag, dict(zip(ids, vecs)))
    return report


# ---------------------------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class Calibration:
    """An unknown-face threshold chosen on verification pairs.

    Attributes:
        threshold: distances ``<=`` it are accepted as the same person.
        target_far: the false-accept rate aimed at.
        far: the impostor share accepted at ``threshold`` on these pairs.
        tar: the genuine share accepted at ``threshold`` on these pairs.
        n_genuine, n_impostor: pair counts.
        source: where the pairs came from.
    """

    threshold: float
    target_far: float
    far: float
    tar: float
    n_genuine: int
    n_impostor: int
    source: str


def lfw_pairs_for(pairs: str, lfw_root: str | Path | None = None) -> tuple[Any, list[Any], str]:
    """The LFW tree and the pairs for calibration.

    Args:
        pairs: ``view1`` (pairsDevTrain + pairsDevTest), ``view2`` (pairs.txt) or an LFW-format pair file.
        lfw_root: the LFW folder or the data root holding ``lfw/`` (default: the data root).

    Returns:
        ``(lfw, pairs, description)``.
    """
    from iznet.data.lfw import LFW, find_lfw, load_view1, load_view2, read_pairs

    lfw = LFW(find_lfw(lfw_root))
    if pairs == "view1":
        a, b = load_view1(lfw.root)
        plist, desc = list(a) + list(b), f"LFW View 1 pairs in {lfw.root}"
    elif pairs == "view2":
        plist, desc = [p for fold in load_view2(lfw.root) for p in fold], f"LFW View 2 pairs in {lfw.root}"
    else:
        plist, desc = [p for fold in read_pairs(pairs) for p in fold], f"pairs {pairs} over {lfw.root}"
    lfw.check_pairs(plist)
    return lfw, plist, desc


def calibrate_on_lfw(embedder: Embedder, pairs: str = "view1", lfw_root: str | Path | None = None,
                     target_far: float = 1e-3, batch_size: int = 128) -> Calibration:
    """Choose the unknown-face threshold for ``embedder`` on LFW-format pairs (people not in the gallery).

    Every image is cut with :func:`iznet.data.crops.lfw_crop` at the embedder's input size (the same framing
    as a detected face), embedded once, and :func:`~iznet.recognize.matcher.calibrate_threshold` picks the
    largest threshold whose false-accept rate on the impostor pairs is at most ``target_far``.
    """
    from concurrent.futures import ThreadPoolExecutor

    from iznet.data.crops import lfw_crop

    lfw, plist, desc = lfw_pairs_for(pairs, lfw_root)
    keys = list(dict.fromkeys([(p.name1, p.idx1) for p in plist] + [(p.name2, p.idx2) for p in plist]))
    size = int(embedder.input_size)

    def one(key: tuple[str, int]) -> np.ndarray:
        return lfw_crop(load_image(lfw.image_path(*key)), size)

    with ThreadPoolExecutor(max_workers=4) as ex:  # decoding and resizing release the GIL
        crops = list(ex.map(one, keys, chunksize=32))
    emb = embedder.embed(crops_to_batch(crops), batch_size=batch_size)
    row = {k: i for i, k in enumerate(keys)}
    ia = np.array([row[(p.name1, p.idx1)] for p in plist])
    ib = np.array([row[(p.name2, p.idx2)] for p in plist])
    dist = np.linalg.norm(emb[ia] - emb[ib], axis=1).astype(np.float64)
    same = np.array([p.same for p in plist], dtype=bool)
    t = calibrate_threshold(dist, same, target_far)
    return Calibration(
        threshold=t,
        target_far=float(target_far),
        far=float(np.mean(dist[~same] <= t)),
        tar=float(np.mean(dist[same] <= t)) if same.any() else float("nan"),
        n_genuine=int(same.sum()),
        n_impostor=int((~same).sum()),
        source=desc,
    )


__all__ = [
    "ASSETS_DIR", "Calibration", "check_gallery_embedder", "DemoAssets", "EMPTY_MESSAGE", "EnrollReport", "detect_faces_with_landmarks", "FaceCrop", "FaceDetector",
    "FaceResult", "LabelResult", "Pipeline", "RebuildReport", "calibrate_on_lfw", "count_images",
    "crops_to_batch", "default_detector_spec", "default_embedder_spec", "default_gallery_path", "demo_assets",
    "detect_faces", "embedder_tag", "enroll_files", "enroll_folder", "face_crop_from_file", "lfw_pairs_for",
    "load_detector_spec", "load_embedder_spec", "person_folders", "rebuild_embeddings", "whole_image_crop",
]
