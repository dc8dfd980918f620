"""dlib's face recognition models as a reference, run through iznet's own pipeline, gallery and matcher.

Optional: ``pip install 'iznet[dlib]'`` installs ``dlib-bin`` (a prebuilt dlib) and ``face-recognition-models``
(the model files). Nothing in iznet imports this module unless asked; without dlib every entry point raises
:class:`~iznet.errors.ModelError` saying what to install, and :func:`dlib_available` tells beforehand.

The reference is the usual dlib recipe, in three pieces:

- :class:`DlibHogDetector`: ``dlib.get_frontal_face_detector()`` (HOG + linear SVM), run with one
  upsampling (faces down to about 40 px); its score is the SVM margin, not a probability;
- :class:`DlibResNetEncoder`: for each face box the 5-point ``dlib.shape_predictor`` finds the landmarks in
  the *whole photo*, and ``dlib.face_recognition_model_v1`` (the ResNet model) aligns a 150x150 chip from
  them and returns a 128-d descriptor. The descriptors are left as dlib gives them (not rescaled to unit
  length), so dlib's usual same-person threshold, :data:`DLIB_THRESHOLD` = 0.6 (Euclidean), applies;
- :class:`DlibPipeline`: :class:`iznet.recognize.pipeline.Pipeline` with the encoder in place of the crop
  and embedder step. Detection, gallery, prototypes (use ``medoid`` or ``all``: ``centroid`` would rescale
  the mean to unit length), the matching rule and the label JSON are iznet's own, so a comparison with
  iznet's models differs only by the models.

The model files are located with :func:`importlib.util.find_spec`, without importing
``face_recognition_models`` (its ``__init__`` needs ``pkg_resources``, which recent setuptools no longer has).

>>> pipe = DlibPipeline(DlibHogDetector(), Gallery("dlib.db"))     # doctest: +SKIP
>>> pipe.label_file("team.jpg").names                              # doctest: +SKIP
['unknown', 'unknown']
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from iznet.detect.results import Detections
from iznet.errors import ModelError
from iznet.recognize.gallery import Gallery
from iznet.recognize.pipeline import Pipeline

DLIB_THRESHOLD = 0.6
"""dlib's usual same-person distance for its ResNet descriptors (Euclidean)."""

INSTALL_HINT = "pip install 'iznet[dlib]' (or: pip install dlib-bin face-recognition-models)"

MODEL_FILES = {
    "shape_predictor_5": "shape_predictor_5_face_landmarks.dat",
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
}
"""Keys of :func:`model_files` -> file names inside the ``face_recognition_models`` package."""


def _import_dlib() -> Any:
    try:
        import dlib
    except ImportError as e:
        raise ModelError(f"the dlib reference needs dlib, which is not installed ({e}); {INSTALL_HINT}") from None
    return dlib


def dlib_available() -> bool:
    """True when both dlib and the ``face_recognition_models`` files can be found."""
    try:
        _import_dlib()
        model_files()
    except ModelError:
        return False
    return True


def model_files() -> dict[str, Path]:
    """Paths of the dlib model files shipped by the ``face-recognition-models`` package (see :data:`MODEL_FILES`).

    Raises:
        ModelError: the package is not installed, or a file is missing from it.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the dlib reference needs the face_recognition_models package; {INSTALL_HINT}")
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    out = {key: folder / name for key, name in MODEL_FILES.items()}
    missing = [str(p) for p in out.values() if not p.is_file()]
    if missing:
        raise ModelError(f"face_recognition_models lacks {', '.join(missing)}; reinstall it: {INSTALL_HINT}")
    return out


def dlib_version() -> str | None:
    """dlib's version string, or None when it is not installed."""
    try:
        return str(_import_dlib().__version__)
    except ModelError:
        return None


def _rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ModelError(f"expected a uint8 (H, W, 3) RGB image, got {img.dtype} {img.shape}")
    return np.ascontiguousarray(img)


class DlibHogDetector:
    """dlib's frontal face detector (HOG features, linear SVM, sliding window over an image pyramid).

    Args:
        upsample: times the image is doubled before detection (1, as commonly used: faces from ~40 px).
        adjust_threshold: added to the SVM's decision threshold (0: dlib's default; lower finds more).

    ``detect`` returns boxes in the photo's pixels and the SVM scores (margins, higher = surer; not in [0, 1]).
    """

    def __init__(self, upsample: int = 1, adjust_threshold: float = 0.0):
        dlib = _import_dlib()
        self._det = dlib.get_frontal_face_detector()
        self.upsample = int(upsample)
        self.adjust_threshold = float(adjust_threshold)
        self.name = f"dlib-hog(upsample={self.upsample})"

    def detect(self, image: np.ndarray) -> Detections:
        """Faces in a uint8 (H, W, 3) RGB image, most confident first."""
        img = _rgb(image)
        rects, scores, _ = self._det.run(img, self.upsample, self.adjust_threshold)
        boxes = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], np.float32)
        sc = np.asarray(scores, np.float32).reshape(-1)
        order = np.argsort(-sc, kind="stable")
        return Detections(boxes.reshape(-1, 4)[order], sc[order], (img.shape[1], img.shape[0]))


class DlibResNetEncoder:
    """dlib's ResNet face descriptor (128-d), aligned with the 5-point landmark model.

    Args:
        num_jitters: dlib's test-time augmentation (1: none; 10 is ~10x slower and slightly better).

    Attributes:
        tag: the gallery tag of its vectors.
        input_size: the side of dlib's aligned chip (150); informational, the chip is cut by dlib.
    """

    dim = 128
    input_size = 150
    trained = True
    needs_fit = False

    def __init__(self, num_jitters: int = 1):
        dlib = _import_dlib()
        files = model_files()
        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(files["shape_predictor_5"]))
        self._net = dlib.face_recognition_model_v1(str(files["resnet"]))
        self.num_jitters = int(num_jitters)
        if self.num_jitters < 1:
            raise ModelError(f"num_jitters must be >= 1, got {num_jitters}")
        self.name = f"dlib-resnet-v1(jitters={self.num_jitters})"
        self.tag = f"dlib_resnet_v1@5pt;jitters={self.num_jitters}"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "num_jitters": self.num_jitters,
                "dlib": dlib_version(), "files": {k: p.name for k, p in model_files().items()}}

    def encode(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Descriptors of the faces at ``boxes`` in ``image``.

        Args:
            image: uint8 (H, W, 3) RGB photo (the whole photo: dlib aligns from it).
            boxes: (N, 4) ``x1, y1, x2, y2`` face boxes in its pixels (they may reach outside it; the photo
                is then padded with black so the landmark model sees the whole box).

        Returns:
            float32 (N, 128) as dlib computes them (not rescaled).
        """
        img = _rgb(image)
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(b) == 0:
            return np.zeros((0, self.dim), np.float32)
        h, w = img.shape[:2]
        pad = int(np.ceil(max(0.0, -b[:, 0].min(), -b[:, 1].min(), b[:, 2].max() - w, b[:, 3].max() - h)))
        if pad:
            img = np.ascontiguousarray(np.pad(img, ((pad, pad), (pad, pad), (0, 0))))
            b = b + pad
        dlib = self._dlib
        shapes = dlib.full_object_detections()
        for x1, y1, x2, y2 in b:
            rect = dlib.rectangle(int(round(x1)), int(round(y1)), int(round(x2)) - 1, int(round(y2)) - 1)
            shapes.append(self._shape(img, rect))
        desc = self._net.compute_face_descriptor(img, shapes, self.num_jitters)
        return np.asarray([np.asarray(d) for d in desc], dtype=np.float32).reshape(-1, self.dim)


class DlibPipeline(Pipeline):
    """iznet's :class:`~iznet.recognize.pipeline.Pipeline` with dlib's descriptor in place of crop + embed.

    Args:
        detector: any detector (default :class:`DlibHogDetector`).
        gallery: a :class:`Gallery` or its path (as for ``Pipeline``).
        encoder: default :class:`DlibResNetEncoder` ().
        threshold: unknown-face distance (default :data:`DLIB_THRESHOLD`).
        prototype_method: ``medoid`` (default, as iznet's) or ``all`` (nearest enrolled picture).
        k: unused unless ``kmeans``.
    """

    def __init__(self, detector: Any | None = None, gallery: Gallery | str | Path = "dlib_gallery.db",
                 encoder: DlibResNetEncoder | None = None, threshold: float | str | None = DLIB_THRESHOLD,
                 prototype_method: str = "medoid", k: int = 3):
        if prototype_method == "centroid":
            raise ModelError("dlib's descriptors are not unit vectors and the centroid prototype rescales to unit "
                             "length: use prototype_method='medoid' or 'all'")
        self.encoder = encoder if encoder is not None else DlibResNetEncoder()
        super().__init__(detector if detector is not None else DlibHogDetector(), self.encoder, gallery,
                         prototype_method=prototype_method, k=k, threshold=threshold)

    def embed_boxes(self, image: np.ndarray, boxes: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """(N, 128) dlib descriptors of the faces at ``boxes`` (N, 4) in ``image`` (dlib aligns with its own
        shape predictor; ``landmarks`` from another detector are not used)."""
        return self.encoder.encode(image, boxes)


__all__ = ["DLIB_THRESHOLD", "DlibHogDetector", "DlibPipeline", "DlibResNetEncoder", "INSTALL_HINT",
           "dlib_available", "dlib_version", "model_files"]
