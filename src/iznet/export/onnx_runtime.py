"""Running exported iznet models with onnxruntime, in the same pipeline as the PyTorch ones.

* :class:`OnnxEmbedder`: an :class:`~iznet.recognize.embedder.Embedder` over an exported embedder. Crops go
  through the same :func:`iznet.models.preprocess` as in PyTorch; only the network runs in onnxruntime. Its
  ``tag`` is the PyTorch embedder's (stored in the file), so galleries and calibrated thresholds carry over.
* :class:`OnnxDetector`: ``detect(image) -> Detections`` over an exported detector, with the PyTorch
  detector's letterboxing and post-processing (:mod:`iznet.detect.postprocess`).
* :func:`cached_export`: what ``--runtime onnx`` uses (through :mod:`iznet.loading`). A checkpoint (or the
  bundled default) is exported once into the ONNX cache (:func:`default_onnx_dir`) under a name made of its
  kind and SHA-256, and reused while the checkpoint is unchanged; when the cache cannot be written, the export
  goes to a temporary folder for this run only.

onnxruntime uses as many threads as torch (``torch.get_num_threads()``, so ``OMP_NUM_THREADS`` and
``torch.set_num_threads`` govern both) unless ``threads`` is given. The session helpers and the cache's names
live in :mod:`iznet.export.lite` (torch-free), which also runs exported models without torch for ``iznet label``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np
import torch

from iznet.detect.postprocess import PostprocessConfig
from iznet.detect.results import Detections
from iznet.detect.tta import tta_config
from iznet.errors import ModelError
# the session helpers and the cache's names are torch-free (the fast label path uses them); re-exported here
from iznet.export.lite import (ONNX_DIR_ENV, cache_name, default_onnx_dir, detector_metadata,  # noqa: F401
                               embedder_metadata,
                               flag as _flag, make_session, open_exported as _open, read_onnx_metadata,
                               require_onnxruntime)
from iznet.recognize.embedder import Embedder

_logger = logging.getLogger(__name__)

T = TypeVar("T")


class OnnxEmbedder(Embedder):
    """An exported embedder run by onnxruntime; same interface and results as the PyTorch one.

    Args:
        path: an ONNX file written by :func:`iznet.export.onnx_export.export_embedder`.
        threads: onnxruntime intra-op threads (default: ``torch.get_num_threads()``).

    Attributes:
        tag: the gallery tag of the PyTorch embedder it was exported from.
        metadata: the file's ``iznet.*`` metadata.
        threshold: a threshold the checkpoint held (None usually: galleries store their own).

    Shapes:
        ``embed``: uint8 (N, 3, H, W) -> float32 (N, D), unit rows.

    Raises:
        ModelError: missing file, not an iznet ONNX embedder, onnxruntime missing.
    """

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path, self.session, self.metadata = _open(path, "embedder", threads)
        info = embedder_metadata(self.metadata, self.path)
        self.input_size, self._dim, self.name = info["input_size"], info["dim"], info["name"]
        self.tta, self.trained, self.tag, self.face_crop = info["tta"], info["trained"], info["tag"], info["face_crop"]
        self.zooms = info["zooms"]
        self.threshold, self.calibration = info["threshold"], info["calibration"]
        if info["calibrated_threshold"] is not None:
            self.calibrated_threshold = info["calibrated_threshold"]
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    @property
    def dim(self) -> int:
        return self._dim

    def _embed_batch(self, images: torch.Tensor) -> torch.Tensor:
        from iznet.models import preprocess

        x = np.ascontiguousarray(preprocess(images.cpu(), self.input_size).numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run([self.output_name], {self.input_name: x})[0])

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": "onnx", "tta": self.tta, "zooms": list(self.zooms), "path": str(self.path),
                "runtime": "onnxruntime"}


class OnnxDetector:
    """An exported iznet detector run by onnxruntime, with the PyTorch detector's pre- and post-processing.

    Args:
        path: an ONNX file written by :func:`iznet.export.onnx_export.export_detector`.
        config: post-processing thresholds (default: those stored in the file).
        threads: onnxruntime intra-op threads (default: ``torch.get_num_threads()``).
        tta: test-time augmentation as for :class:`~iznet.detect.detector.YoloFaceDetector` (default ``full``);
            a file exported with a fixed side (before ``iznet.dynamic_side``) runs at its own side only.

    Shapes:
        network: float32 (B, 3, S, S) in [0, 1] -> raw (B, S/32, S/32, A, 5), or (…, 15) for a detector with
        landmarks (its detections then carry them); S any multiple of 32 when the file's
        ``iznet.dynamic_side`` is ``true``.

    Raises:
        ModelError: missing file, not an iznet ONNX detector, onnxruntime missing.
    """

    def __init__(self, path: str | Path, config: PostprocessConfig | None = None, threads: int | None = None,
                 tta: Any = None, relook: Any = None):
        self.path, self.session, self.metadata = _open(path, "detector", threads)
        md = self.metadata
        self.image_size, stored = detector_metadata(md, self.path)
        self.config = config if config is not None else stored
        self.name = md.get("iznet.name", self.path.name)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.dynamic_side = _flag(md.get("iznet.dynamic_side"), False)
        self.refiner = None
        if md.get("iznet.refiner"):
            side = self.path.with_name(md["iznet.refiner"])
            if side.is_file():
                session = make_session(side, threads)
                names = (session.get_inputs()[0].name, session.get_outputs()[0].name)
                self.refiner = lambda x: torch.from_numpy(session.run([names[1]], {names[0]: x.numpy()})[0])
            else:
                _logger.warning("%s: its landmark refiner %s is missing; landmarks stay the coarse ones (export "
                                "the detector again, or keep the two files together)", self.path, side.name)
        self.tta = tta_config(tta)
        self.relook = relook  # a RelookConfig (iznet.detect.relook) or None
        if not self.dynamic_side and self.tta.sides(self.image_size) != (self.image_size,):
            _logger.warning("%s was exported with a fixed input side: test-time augmentation runs at %d only; export"
                            " it again for several sides", self.path, self.image_size)
            self.tta = dataclasses.replace(self.tta, scales=(1.0,))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Raw network output for float32 (B, 3, S, S) inputs in [0, 1]."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        return self.session.run([self.output_name], {self.input_name: x})[0]

    def detect_batch(self, images: Sequence[np.ndarray], batch_size: int = 16,
                     config: PostprocessConfig | None = None) -> list[Detections]:
        """Faces in several (H, W, 3) uint8 RGB images; boxes in each image's pixels.

        Pre- and post-processing are the numpy ones of the torch-free path (:mod:`iznet.detect.numpy_post`),
        so both ONNX paths give the same boxes; the landmark refiner, when the file has one, runs after."""
        from iznet.detect.detector import _check_rgb, refine_detections
        from iznet.detect.numpy_post import detect_arrays

        from iznet.detect.relook import relook_found

        images = [_check_rgb(im) for im in images]
        config = config or self.config
        found = detect_arrays(self.forward, images, self.image_size, config, self.tta, batch_size)
        if self.relook is not None:
            again, second = self.relook.second_look(config)
            found = relook_found(lambda sq: detect_arrays(self.forward, sq, self.image_size, again, second,
                                                          batch_size), images, found, self.image_size, self.relook)
        found = [Detections(torch.from_numpy(f.xyxy), torch.from_numpy(f.scores), f.image_size,
                            None if f.landmarks is None else torch.from_numpy(np.asarray(f.landmarks, np.float32)))
                 for f in found]
        return refine_detections(self.refiner, images, found) if self.refiner is not None else found

    def detect(self, image: np.ndarray) -> Detections:
        """Faces in one (H, W, 3) uint8 RGB image."""
        return self.detect_batch([image])[0]


def load_onnx(path: str | Path, threads: int | None = None) -> OnnxEmbedder | OnnxDetector:
    """An :class:`OnnxEmbedder` or :class:`OnnxDetector`, whichever the file's metadata says it holds."""
    kind = read_onnx_metadata(path).get("iznet.kind")
    if kind == "detector":
        return OnnxDetector(path, threads=threads)
    return OnnxEmbedder(path, threads=threads)  # raises a clear error for anything but an embedder


# ---------------------------------------------------------------------------------------------- the cache
def cached_export(spec: str | Path, kind: str, onnx_dir: str | Path | None = None,
                  opener: Callable[[Path], T] | None = None) -> T | Path:
    """The exported ``kind`` of a checkpoint, from the cache, exporting it there first when needed.

    Args:
        spec: a checkpoint file, a run folder, or ``default-embedder`` / ``default-detector``.
        kind: ``embedder`` or ``detector`` (the checkpoint must hold it).
        onnx_dir: the cache folder (default: :func:`default_onnx_dir`).
        opener: turns the file into a model (e.g. :class:`OnnxEmbedder`); None returns the path. A cached
            file that cannot be opened or was exported from other weights is exported again.

    Returns:
        ``opener(path)``, or the path. When the cache folder cannot be written the export goes to a
        temporary folder that is deleted after ``opener`` ran (with ``opener=None`` that path is gone: give
        an opener).

    Raises:
        ModelError: missing or wrong checkpoint, export failed, onnxruntime missing.
    """
    from iznet.export.onnx_export import checkpoint_path, export_model
    from iznet.recognize.gallery import sha256_file

    ckpt = checkpoint_path(spec)
    sha = sha256_file(ckpt)
    folder = default_onnx_dir(onnx_dir)
    target = folder / cache_name(kind, sha)
    open_ = opener or (lambda p: p)

    if target.is_file():
        try:
            obj = open_(target)
            md = obj.metadata if hasattr(obj, "metadata") else read_onnx_metadata(target)
            fixed_side = kind == "detector" and not _flag(md.get("iznet.dynamic_side"), False)
            if md.get("iznet.source_sha256") == sha and not fixed_side:
                return obj
            if fixed_side:
                _logger.info("cached %s has a fixed input side; exporting %s again", target, ckpt)
            _logger.info("cached %s was exported from other weights; exporting %s again", target, ckpt)
        except ModelError as e:
            _logger.info("cached %s is unusable (%s); exporting %s again", target, e, ckpt)
    try:
        export_model(ckpt, target, kind=kind)
    except OSError as e:  # a read-only or full cache: export for this run only
        _logger.warning("cannot write the ONNX cache %s (%s); exporting %s to a temporary folder for this run",
                        folder, e.strerror or e, ckpt)
        with tempfile.TemporaryDirectory(prefix="iznet-onnx-") as tmp:
            path = Path(tmp) / target.name
            export_model(ckpt, path, kind=kind)
            return open_(path)
    _logger.info("exported %s %s to %s (reused while the checkpoint is unchanged)", kind, ckpt, target)
    return open_(target)


@contextlib.contextmanager
def temporary_export(obj: Any, kind: str) -> Iterator[Path]:
    """Export a model object (an embedder network or a detector) to a temporary ONNX file for this run."""
    from iznet.export.onnx_export import export_detector, export_embedder

    with tempfile.TemporaryDirectory(prefix="iznet-onnx-") as tmp:
        path = Path(tmp) / f"{kind}.onnx"
        (export_embedder if kind == "embedder" else export_detector)(obj, path)
        yield path
