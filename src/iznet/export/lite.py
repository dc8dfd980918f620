"""Exported models run by onnxruntime with numpy around them: labelling a photo without importing PyTorch.

``import torch`` alone takes about 1.7 s on this project's machine, longer than detecting and naming the
faces of a photo. When the bundled models (or the checkpoints a command names) have been exported into the
ONNX cache (:func:`default_onnx_dir`; ``--runtime onnx`` or the first ``iznet label`` run fills it),
``iznet label`` runs them here:

* :class:`LiteDetector`: letterboxing in numpy, the network in onnxruntime, the numpy post-processing and
  test-time augmentation of :mod:`iznet.detect.numpy_post` (the same steps and settings as the PyTorch
  detector). Detectors with a second landmark stage (a refiner) are not run here.
* :class:`LiteEmbedder`: the crops as uint8 arrays, the network's input normalisation, onnxruntime, unit
  rows; its gallery ``tag`` is the PyTorch embedder's (stored in the file), so galleries carry over.
* :func:`cached_models`: the pair for a detector and an embedder spec, from the cache, or
  :class:`NotCached` saying why not (the caller then loads the PyTorch or ONNX-with-torch path).

The session helpers here (:func:`make_session`, :func:`open_exported`, the cache's names) are shared with
:mod:`iznet.export.onnx_runtime`. Nothing in this module imports torch.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from iznet.errors import ModelError

_logger = logging.getLogger(__name__)

FORMAT = "iznet-onnx-v1"
"""Value of the ``iznet.format`` metadata key; bumped when the graph contract changes."""
INSTALL_HINT = "install the ONNX extra: pip install 'iznet[onnx]' (./setup.sh installs it by default)"
ONNX_DIR_ENV = "IZNET_ONNX_DIR"


# ---------------------------------------------------------------------------------------------- sessions
def require_onnxruntime(why: str = "") -> Any:
    """The ``onnxruntime`` module, or a :class:`ModelError` saying how to install it."""
    try:
        import onnxruntime
    except ImportError as e:
        need = f" {why}" if why else ""
        raise ModelError(f"onnxruntime is needed{need} but cannot be imported ({e}); {INSTALL_HINT}") from None
    return onnxruntime


def default_threads() -> int:
    """Intra-op threads when none are given: torch's setting when torch is loaded (``torch.set_num_threads``
    and ``OMP_NUM_THREADS`` govern both runtimes), else ``OMP_NUM_THREADS``, else the CPU count."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        return max(1, int(torch.get_num_threads()))
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return max(1, os.cpu_count() or 1)


def make_session(path: str | Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU session for ``path`` (``threads`` intra-op threads; default :func:`default_threads`).

    Raises:
        ModelError: onnxruntime missing, file missing, or not a model onnxruntime can load.
    """
    ort = require_onnxruntime()
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"ONNX file {path} does not exist")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads) if threads else default_threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{path} is not an ONNX model onnxruntime can load ({first})") from None


def open_exported(path: str | Path, kind: str, threads: int | None) -> tuple[Path, Any, dict[str, str]]:
    """``(path, session, metadata)`` of an iznet ONNX file holding ``kind`` (``embedder`` or ``detector``).

    Raises:
        ModelError: not an iznet export, or one of the other kind.
    """
    path = Path(path).expanduser()
    session = make_session(path, threads)
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    if metadata.get("iznet.format") != FORMAT:
        raise ModelError(f"{path} is not an iznet ONNX file (no iznet.format={FORMAT} metadata); export one with"
                         " `iznet export MODEL --format onnx --out FILE.onnx`")
    got = metadata.get("iznet.kind")
    if got != kind:
        raise ModelError(f"{path} holds an exported {got or 'model of unknown kind'}, expected an exported {kind}")
    return path, session, metadata


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file (loaded with onnxruntime)."""
    return dict(make_session(path, threads=1).get_modelmeta().custom_metadata_map)


def flag(value: str | None, default: bool) -> bool:
    """A ``true``/``false`` metadata value (``default`` when absent)."""
    return default if value is None else value.strip().lower() == "true"


def embedder_metadata(md: dict[str, str], path: Path) -> dict[str, Any]:
    """What an exported embedder's metadata says: ``input_size``, ``dim``, ``name``, ``tta``, ``zooms``, ``trained``,
    ``tag``, ``face_crop``, ``threshold``, ``calibration`` and ``calibrated_threshold``.

    Raises:
        ModelError: missing or unreadable sizes, or an unknown crop convention.
    """
    from iznet.data.align import CROP_CONVENTIONS

    try:
        out: dict[str, Any] = {"input_size": int(md["iznet.input_size"]), "dim": int(md["iznet.embedding_dim"])}
    except (KeyError, ValueError) as e:
        raise ModelError(f"{path}: bad or missing iznet metadata ({e}); export it again") from None
    crop = md.get("iznet.crop", "box")
    if crop not in CROP_CONVENTIONS:
        raise ModelError(f"{path}: unknown face crop convention {crop!r}; expected one of "
                         f"{', '.join(CROP_CONVENTIONS)}")
    zooms = md.get("iznet.tta_zooms", "")
    try:
        out["zooms"] = tuple(float(z) for z in zooms.split(",") if z.strip())
    except ValueError:
        raise ModelError(f"{path}: bad iznet.tta_zooms metadata {zooms!r}; export it again") from None
    out.update(name=md.get("iznet.name", path.name), tta=flag(md.get("iznet.tta"), False),
               trained=flag(md.get("iznet.trained"), True), tag=md.get("iznet.tag") or None, face_crop=crop,
               threshold=float(md["iznet.threshold"]) if "iznet.threshold" in md else None,
               calibration=None, calibrated_threshold=None)
    if "iznet.calibration" in md:
        try:
            cal = json.loads(md["iznet.calibration"])
        except ValueError:
            cal = None
        if isinstance(cal, dict) and isinstance(cal.get("threshold"), (int, float)):
            out["calibration"], out["calibrated_threshold"] = cal, float(cal["threshold"])
    return out


def detector_metadata(md: dict[str, str], path: Path) -> tuple[int, Any]:
    """An exported detector's trained input side and its post-processing thresholds
    (:class:`iznet.detect.settings.PostprocessConfig`) from its metadata.

    Raises:
        ModelError: missing or unreadable metadata.
    """
    from iznet.detect.settings import PostprocessConfig

    try:
        size = int(md["iznet.input_size"])
        pp = json.loads(md.get("iznet.postprocess", "{}"))
    except (KeyError, ValueError) as e:
        raise ModelError(f"{path}: bad or missing iznet metadata ({e}); export it again") from None
    keys = ("conf_threshold", "iou_threshold", "max_detections")
    return size, PostprocessConfig(**{k: pp[k] for k in keys if k in pp})


# ---------------------------------------------------------------------------------------------- models
class LiteEmbedder:
    """An exported embedder with numpy around it: ``embed(uint8 (N, 3, S, S)) -> float32 (N, D)`` unit rows.

    The same contract as :class:`iznet.recognize.embedder.Embedder` for what the pipeline uses (``embed``,
    ``input_size``, ``face_crop``, ``tag``, ``calibration``, ``calibrated_threshold``); crops of another side
    are resized with the PyTorch path's antialiased bilinear filter (:func:`iznet.detect.letterbox.resize_antialias`).

    Raises:
        ModelError: missing file, not an iznet ONNX embedder, onnxruntime missing.
    """

    needs_fit = False
    source: str | None = None

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path, self.session, self.metadata = open_exported(path, "embedder", threads)
        for key, value in embedder_metadata(self.metadata, self.path).items():
            setattr(self, "_dim" if key == "dim" else key, value)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, images: Any, batch_size: int = 256) -> np.ndarray:
        """Unit embeddings (N, D) float32 of uint8 (N, 3, H, W) face crops (an array or a tensor)."""
        x = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1] != 3:
            raise ModelError(f"embedders take a uint8 (N, 3, H, W) array, got {x.dtype} of shape {x.shape}")
        if batch_size < 1:
            raise ModelError(f"batch_size must be >= 1, got {batch_size}")
        out = [self._embed_batch(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        e = np.concatenate(out).astype(np.float32)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    def _embed_batch(self, x: np.ndarray) -> np.ndarray:
        s = self.input_size
        if x.shape[2:] != (s, s):
            from iznet.detect.letterbox import resize_antialias

            x = np.stack([resize_antialias(im.transpose(1, 2, 0), s, s).transpose(2, 0, 1) for im in x])
        net_in = (x.astype(np.float32) / np.float32(255.0) - np.float32(0.5)) / np.float32(0.5)
        return self.session.run([self.output_name], {self.input_name: np.ascontiguousarray(net_in)})[0]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "needs_fit": False, "trained": self.trained, "input_size": self.input_size,
                "dim": self.dim, "kind": "onnx", "tta": self.tta, "zooms": list(self.zooms), "path": str(self.path),
                "runtime": "onnxruntime (numpy)"}


class LiteDetector:
    """An exported iznet detector with numpy pre- and post-processing: ``detect(image) -> FoundFaces``.

    Args:
        path: an ONNX file written by :func:`iznet.export.onnx_export.export_detector` with a dynamic side.
        conf: confidence threshold (default: the file's).
        tta: test-time augmentation mode (``off``, ``flip``, ``full``; default ``full``).
        threads: onnxruntime intra-op threads.

    Raises:
        ModelError: missing file, not an iznet ONNX detector, a fixed input side or a landmark refiner (run
            those with :class:`iznet.export.onnx_runtime.OnnxDetector`).
    """

    def __init__(self, path: str | Path, conf: float | None = None, tta: str | None = None,
                 threads: int | None = None, relook: Any = None):
        from iznet.detect.settings import PostprocessConfig, tta_config

        self.path, self.session, self.metadata = open_exported(path, "detector", threads)
        md = self.metadata
        self.image_size, config = detector_metadata(md, self.path)
        if md.get("iznet.refiner"):
            raise ModelError(f"{self.path} has a landmark refiner, which runs with torch only")
        if not flag(md.get("iznet.dynamic_side"), False):
            raise ModelError(f"{self.path} was exported with a fixed input side; export it again")
        if conf is not None:
            config = PostprocessConfig(float(conf), config.iou_threshold, config.max_detections)
        self.config = config
        self.tta = tta_config(tta)
        self.relook = relook  # a RelookConfig (iznet.detect.relook) or None
        self.name = md.get("iznet.name", self.path.name)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Raw network output for float32 (B, 3, S, S) inputs in [0, 1]."""
        return self.session.run([self.output_name], {self.input_name: np.ascontiguousarray(x, np.float32)})[0]

    def detect_batch(self, images: Sequence[np.ndarray], batch_size: int = 16) -> list:
        """Faces in several (H, W, 3) uint8 RGB images (:class:`iznet.detect.numpy_post.FoundFaces`)."""
        from iznet.detect.numpy_post import detect_arrays

        for im in images:
            if not isinstance(im, np.ndarray) or im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
                raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {getattr(im, 'shape', type(im))}")
        found = detect_arrays(self.forward, images, self.image_size, self.config, self.tta, batch_size)
        if self.relook is None:
            return found
        from iznet.detect.relook import relook_found

        again, second = self.relook.second_look(self.config)
        return relook_found(lambda sq: detect_arrays(self.forward, sq, self.image_size, again, second,
                                                     batch_size), images, found, self.image_size, self.relook)

    def detect(self, image: np.ndarray):
        """Faces in one (H, W, 3) uint8 RGB image."""
        return self.detect_batch([image])[0]


# ---------------------------------------------------------------------------------------------- the cache
def default_onnx_dir(explicit: str | Path | None = None) -> Path:
    """Where exported models are cached: ``explicit``, else ``$IZNET_ONNX_DIR``, else
    ``$XDG_CACHE_HOME/iznet/onnx`` (``XDG_CACHE_HOME`` defaults to ``~/.cache``)."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(ONNX_DIR_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "iznet" / "onnx"


def cache_name(kind: str, sha256: str) -> str:
    """File name of an exported checkpoint in the cache: ``<kind>-<first 16 hex of its SHA-256>-<format>.onnx``."""
    return f"{kind}-{sha256[:16]}-{FORMAT.rsplit('-', 1)[-1]}.onnx"


def checkpoint_in_folder(folder: Path) -> Path:
    """A run folder's checkpoint: ``model.pt`` (embedder runs), else ``best.pt`` (detector runs)."""
    for name in ("model.pt", "best.pt"):
        if (folder / name).is_file():
            return folder / name
    raise ModelError(f"{folder} is a folder without model.pt (embedder run) or best.pt (detector run); give a "
                     "checkpoint file, a run folder, 'default-embedder' or 'default-detector'")


class NotCached(Exception):
    """The fast path cannot serve these models (the reason is the message); load them the usual way."""


def cached_file(spec: str | None, kind: str, onnx_dir: str | Path | None = None) -> tuple[Path, Path | None, str | None]:
    """The ONNX file that serves ``spec`` without torch: an ``.onnx`` file itself, or the cache's export of a
    checkpoint (None: the bundled one; a run folder: its checkpoint).

    Returns:
        ``(onnx file, checkpoint or None, the checkpoint's SHA-256 or None)``.

    Raises:
        NotCached: any other spec (``haar``, an ensemble, a baseline ...), or no export in the cache.
    """
    from iznet.recognize.gallery import sha256_file
    from iznet.utils.assets import default_detector_spec, default_embedder_spec

    if spec is None:
        spec = default_embedder_spec() if kind == "embedder" else default_detector_spec()
    path = Path(str(spec)).expanduser()
    if path.suffix.lower() == ".onnx" and path.is_file():
        return path, None, None
    if path.is_dir():
        try:
            path = checkpoint_in_folder(path)
        except ModelError as e:
            raise NotCached(str(e)) from None
    if path.suffix.lower() != ".pt" or not path.is_file():
        raise NotCached(f"{kind} {spec!r} is not a checkpoint file")
    sha = sha256_file(path)
    target = default_onnx_dir(onnx_dir) / cache_name(kind, sha)
    if not target.is_file():
        raise NotCached(f"no export of {path} in {target.parent} yet")
    return target, path, sha


def cached_models(detector: str | None, embedder: str | None, onnx_dir: str | Path | None = None,
                  conf: float | None = None, tta: str | None = None, threads: int | None = None,
                  relook: Any = None) -> tuple[LiteDetector, LiteEmbedder]:
    """The torch-free detector and embedder for these specs, from the ONNX cache.

    Raises:
        NotCached: the fast path cannot serve them (onnxruntime missing, no export made from exactly these
            weights, a refiner ...); the message says why.
    """
    try:
        require_onnxruntime()
    except ModelError as e:
        raise NotCached(str(e)) from None
    (det_file, _, det_sha), (emb_file, emb_ckpt, emb_sha) = (cached_file(detector, "detector", onnx_dir),
                                                            cached_file(embedder, "embedder", onnx_dir))
    try:
        det = LiteDetector(det_file, conf=conf, tta=tta, threads=threads, relook=relook)
        emb = LiteEmbedder(emb_file, threads=threads)
    except ModelError as e:
        raise NotCached(str(e)) from None
    for model, sha in ((det, det_sha), (emb, emb_sha)):
        if sha is not None and model.metadata.get("iznet.source_sha256") != sha:
            raise NotCached(f"{model.path} was exported from other weights")
    emb.source = None if emb_ckpt is None else str(emb_ckpt)
    return det, emb
