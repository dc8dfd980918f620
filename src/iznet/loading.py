"""The one place where a model's name becomes a ready model, for every command, the web service and the
benchmarks.

* :class:`DetectorOptions` / :func:`load_detector`: ``spec`` is None (the bundled ``assets/detector.pt``), a
  detector checkpoint, an exported ``.onnx`` file (runtime ``onnx``), ``haar`` (OpenCV's cascade) or
  ``yunet:PATH``; with the runtime (``torch`` or ``onnx``: checkpoints are exported once into the ONNX
  cache), test-time augmentation (``off``, ``flip``, ``full``), the second look at small faces for their
  landmarks (``relook``, on by default: :mod:`iznet.detect.relook`), the confidence threshold and the device.
* :class:`EmbedderOptions` / :func:`load_embedder`: ``spec`` is None (the bundled ``assets/embedder.pt``), an
  embedder checkpoint, an exported ``.onnx`` file (runtime ``onnx``), a baseline (``raw``, ``pca``), a
  registered network name (random weights, with a warning) or an ensemble ``a.pt+b.pt``; with the runtime,
  the device and flip test-time augmentation.
* :func:`parse_threshold`: the unknown-face rule a user gives (a distance, ``stored`` or ``none``).

Options are checked once, when they are built: a bad value raises a :class:`~iznet.errors.ModelError`
naming it. The per-kind parsers underneath (:func:`iznet.detect.detector.load_detector`,
:func:`iznet.recognize.embedder.load_embedder`) know nothing of defaults, runtimes or options.

>>> det = load_detector(DetectorOptions(tta="off", conf=0.5))    # doctest: +SKIP
>>> emb = load_embedder(EmbedderOptions(runtime="onnx"))         # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from iznet.errors import ModelError
from iznet.utils.assets import default_detector_spec, default_embedder_spec

_logger = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "onnx")
"""``auto``: onnxruntime when it is installed (checkpoints exported once into the ONNX cache), else torch."""
TTA_MODES = ("off", "flip", "full")
Threshold = Union[float, str, None]
"""An unknown-face rule: a distance, ``"stored"`` (the gallery's calibrated threshold, else the embedder's
shipped rule) or None (always give the nearest name)."""


def _is_onnx(text: str) -> bool:
    return text.lower().endswith(".onnx")


def _runtime(value: str) -> str:
    r = str(value).strip().lower()
    if r not in RUNTIMES:
        raise ModelError(f"choose one of {', '.join(RUNTIMES)} for the runtime, not {value!r}")
    return r


def _onnx_available() -> bool:
    """Whether ``auto`` can mean onnx here: onnxruntime to run, and onnx to export into the cache."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def _concrete(o: Any) -> Any:
    """Options with ``auto`` resolved: ``onnx`` on the CPU when onnxruntime and onnx are installed, else torch."""
    if o.runtime != "auto":
        return o
    onnx = o.device in (None, "cpu") and _onnx_available()
    if isinstance(o, EmbedderOptions) and o.tta is not None:
        onnx = False  # flip augmentation is fixed when an embedder is exported
    return dataclasses.replace(o, runtime="onnx" if onnx else "torch")


def _threads(value: int | None) -> int | None:
    if value is not None and int(value) < 1:
        raise ModelError(f"threads must be 1 or more, got {value}")
    return None if value is None else int(value)


@dataclass(frozen=True)
class DetectorOptions:
    """How to load a face detector (see the module docstring); checked when built."""

    spec: str | None = None
    runtime: str = "torch"
    tta: str = "full"
    conf: float | None = None  # None: the detector's own (0.3 for iznet detectors)
    device: str | None = None  # torch runtime only
    onnx_dir: str | Path | None = None
    threads: int | None = None  # onnxruntime threads
    relook: bool = True  # iznet detectors: the second look at small faces (iznet.detect.relook)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "spec", str(self.spec).strip() if self.spec else None)
        set_(self, "runtime", _runtime(self.runtime))
        set_(self, "relook", bool(self.relook))
        tta = str(self.tta).strip().lower()
        if tta not in TTA_MODES:
            raise ModelError(f"choose one of {', '.join(TTA_MODES)} for the detector's test-time augmentation, "
                             f"not {self.tta!r}")
        set_(self, "tta", tta)
        if self.conf is not None and not (math.isfinite(float(self.conf)) and 0.0 <= float(self.conf) <= 1.0):
            raise ModelError(f"detector confidence threshold {self.conf!r} must lie in 0..1")
        if self.runtime == "onnx" and self.device not in (None, "cpu"):
            raise ModelError(f"device {self.device!r}: the onnx runtime runs on the CPU; use --runtime torch")
        set_(self, "threads", _threads(self.threads))
        if self.conf is not None and self.spec and (self.spec == "haar" or self.spec.startswith("yunet")):
            raise ModelError("a confidence threshold applies to iznet detectors only (not haar or yunet)")


@dataclass(frozen=True)
class EmbedderOptions:
    """How to load an embedder (see the module docstring); checked when built.

    ``fixed`` (the default) refuses embedders that must be fitted first (``pca``): a gallery needs one that
    gives the same vector for the same face every time. Evaluation commands pass ``fixed=False``.
    """

    spec: str | None = None
    runtime: str = "torch"
    device: str | None = None  # torch runtime only
    tta: bool | None = None  # flip test-time augmentation of a network; None: the checkpoint's own
    onnx_dir: str | Path | None = None
    threads: int | None = None
    fixed: bool = True

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "spec", str(self.spec).strip() if self.spec else None)
        set_(self, "runtime", _runtime(self.runtime))
        if self.runtime == "onnx" and self.device not in (None, "cpu"):
            raise ModelError(f"device {self.device!r}: the onnx runtime runs on the CPU; use --runtime torch")
        if self.runtime == "onnx" and self.tta is not None:
            raise ModelError("flip test-time augmentation is set when an embedder is exported; with the onnx "
                             "runtime leave it at the checkpoint's own")
        set_(self, "threads", _threads(self.threads))


def _options(cls, options, kwargs):
    if options is not None and kwargs:
        raise TypeError("give options or keyword arguments, not both")
    return options if options is not None else cls(**kwargs)


def load_detector(options: DetectorOptions | None = None, **kwargs: Any) -> Any:
    """A ready face detector: ``detect(image (H, W, 3) uint8 RGB) -> Detections`` and ``name``.

    Args:
        options: a :class:`DetectorOptions`; or its fields as keyword arguments.

    Raises:
        ModelError: unknown spec, missing or wrong file, an ONNX file on the torch runtime, onnxruntime
            missing, a confidence threshold for a detector that has none.
    """
    o = _concrete(_options(DetectorOptions, options, kwargs))
    from iznet.detect.detector import load_detector as parse
    from iznet.detect.settings import DEFAULT_RELOOK

    relook = DEFAULT_RELOOK if o.relook else None

    text = o.spec or ""
    opencv = text == "haar" or text.startswith("yunet")
    if o.runtime == "torch" or opencv:
        if _is_onnx(text) and not opencv:
            raise ModelError(f"detector {text} is an ONNX file: run it with --runtime onnx (or give a YuNet model "
                             f"as yunet:{text})")
        det = parse(text or default_detector_spec(), device=o.device, tta=o.tta, relook=relook)
    else:
        from iznet.export.onnx_export import DEFAULT_MODELS
        from iznet.export.onnx_runtime import OnnxDetector, cached_export, require_onnxruntime

        require_onnxruntime("for --runtime onnx")

        def opener(p: Path) -> OnnxDetector:
            return OnnxDetector(p, threads=o.threads, tta=o.tta, relook=relook)

        if _is_onnx(text):
            det = opener(Path(text))
        elif text and text not in DEFAULT_MODELS and not Path(text).expanduser().exists():
            det = parse(text)  # raises the detector spec's own message
        else:
            det = cached_export(text or "default-detector", "detector", o.onnx_dir, opener)
    if o.conf is not None:
        cfg = getattr(det, "config", None)
        if cfg is None or not hasattr(cfg, "conf_threshold"):
            raise ModelError("a confidence threshold applies to iznet detectors only (not haar or yunet)")
        det.config = dataclasses.replace(cfg, conf_threshold=float(o.conf))
    return det


def load_embedder(options: EmbedderOptions | None = None, **kwargs: Any) -> Any:
    """A ready :class:`~iznet.recognize.embedder.Embedder`.

    Args:
        options: an :class:`EmbedderOptions`; or its fields as keyword arguments.

    Raises:
        ModelError: unknown spec or runtime, missing file, an ONNX file on the torch runtime, onnxruntime
            missing, or (``fixed``) a baseline that must be fitted first.
    """
    o = _concrete(_options(EmbedderOptions, options, kwargs))
    from iznet.recognize.embedder import EnsembleEmbedder, NetworkEmbedder, ensemble_members
    from iznet.recognize.embedder import load_embedder as parse

    text = o.spec or ""
    if o.runtime == "torch":
        if _is_onnx(text):
            raise ModelError(f"embedder {text} is an ONNX file: run it with --runtime onnx")
        emb = parse(text or default_embedder_spec(), device=o.device, tta=o.tta)
    else:
        from iznet.export.onnx_export import DEFAULT_MODELS
        from iznet.export.onnx_runtime import OnnxEmbedder, cached_export, require_onnxruntime, temporary_export

        require_onnxruntime("for --runtime onnx")
        parts = ensemble_members(text)
        if parts:  # an ensemble: each member on onnxruntime
            emb = EnsembleEmbedder([load_embedder(dataclasses.replace(o, spec=p)) for p in parts])
        elif _is_onnx(text):
            emb = OnnxEmbedder(Path(text), o.threads)
        elif not text or text in DEFAULT_MODELS or Path(text).expanduser().exists():
            emb = cached_export(text or "default-embedder", "embedder", o.onnx_dir,
                                lambda p: OnnxEmbedder(p, o.threads))
        else:
            emb = parse(text, device="cpu")  # 'raw', a model name, or a clear error
            if isinstance(emb, NetworkEmbedder):  # random weights: nothing worth caching
                with temporary_export(emb, "embedder") as path:
                    emb = OnnxEmbedder(path, o.threads)
            else:
                _logger.info("embedder %s is not a network: it runs as it is with --runtime onnx", emb.name)
    if o.fixed and emb.needs_fit:
        raise ModelError(f"embedder {text!r} must be fitted on training faces before use; the gallery needs a "
                         "fixed model: use a trained checkpoint or 'raw'")
    if not emb.trained:
        _logger.warning("embedder %s has random weights (untrained): its names mean nothing", emb.name)
    return emb


def load_for_labelling(detector: DetectorOptions, embedder: EmbedderOptions) -> tuple[Any, Any]:
    """The detector and embedder for labelling photos, without importing torch when that is possible.

    With runtime ``auto`` or ``onnx`` (both), on the CPU, for checkpoints (or the bundled models) already
    exported into the ONNX cache, the pair comes from :func:`iznet.export.lite.cached_models`: onnxruntime
    with numpy around it, the same answers as the other runtimes, and no PyTorch import (about 1.7 s of a
    command's start-up here). Otherwise :func:`load_detector` and :func:`load_embedder`, which for ``onnx``
    (and ``auto`` where onnxruntime is installed) export into the cache, so the next run takes the fast path.
    """
    if {detector.runtime, embedder.runtime} <= {"auto", "onnx"} and detector.device in (None, "cpu") \
            and embedder.device in (None, "cpu") and embedder.tta is None:
        from iznet.detect.settings import DEFAULT_RELOOK
        from iznet.export.lite import NotCached, cached_models

        try:
            return cached_models(detector.spec, embedder.spec, detector.onnx_dir or embedder.onnx_dir,
                                 conf=detector.conf, tta=detector.tta, threads=detector.threads or embedder.threads,
                                 relook=DEFAULT_RELOOK if detector.relook else None)
        except NotCached as why:
            _logger.debug("not the torch-free path: %s", why)
    return load_detector(detector), load_embedder(embedder)


def parse_threshold(value: Threshold) -> Threshold:
    """The unknown-face rule from a user's value: a distance in 0..2 (a number or its text), ``stored`` (also
    None: the default) or ``none`` (never "unknown").

    Raises:
        ModelError: anything else.
    """
    if value is None:
        return "stored"
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "stored":
            return "stored"
        if text == "none":
            return None
        try:
            number = float(text)
        except ValueError:
            raise ModelError(f"unknown-face threshold {value!r}: give a distance (e.g. 0.9), 'stored' or "
                             f"'none'") from None
    else:
        number = float(value)
    if not (math.isfinite(number) and 0.0 <= number <= 2.0):  # distances between unit vectors lie in 0..2
        raise ModelError(f"unknown-face threshold {value!r}: a distance between face embeddings lies in 0..2")
    return number


def gallery_embedder(gallery: str | Path) -> str | None:
    """The checkpoint a gallery was enrolled with, when it holds one embedder's vectors and recorded that
    embedder's file (which still exists); None otherwise (a new gallery, several embedders, a baseline, the
    bundled embedder).

    Commands that take ``--embedder`` use it when none is given, so a gallery made with a fine-tuned model
    (``iznet fit``) is labelled with that model without naming it again.
    """
    from iznet.errors import GalleryError
    from iznet.recognize.gallery import Gallery

    path = Path(gallery)
    if not path.is_file():
        return None
    try:
        with Gallery(path, create=False, readonly=True) as g:
            tags = list(g.embedders())
            source = g.embedder_source(tags[0]) if len(tags) == 1 else None
    except GalleryError:
        return None  # unreadable here: the command's own opening of the gallery says why
    if not source or not Path(source).is_file():
        return None
    try:
        if Path(source).resolve() == Path(default_embedder_spec()).resolve():
            return None  # the bundled one: the default already
    except ModelError:
        pass
    return source
