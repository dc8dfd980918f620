"""Write iznet embedders and detectors as self-describing ONNX files.

What goes into the graph, and what stays in Python (so both runtimes share it):

* **embedder**: input ``input`` float32 (B, 3, S, S), the crops already through
  :func:`iznet.models.preprocess` (``(x / 255 - 0.5) / 0.5``, resized to S); output ``embedding`` float32
  (B, D), L2-normalised. A checkpoint trained with flip test-time augmentation (``meta["tta"]``) has the flip
  in the graph: ``normalise(normalise(f(x)) + normalise(f(flip(x))))``, what
  :class:`~iznet.recognize.embedder.NetworkEmbedder` computes; its test-time zoom views
  (``meta["tta_zooms"]``) are in the graph too, each added the same way.
* **detector**: input ``images`` float32 (B, 3, S, S) in [0, 1] (the letterboxed photo / 255); output ``raw``
  (B, S/32, S/32, A, 5), the network's raw output. Letterboxing, decoding and NMS stay in
  :mod:`iznet.detect.letterbox` and :mod:`iznet.detect.postprocess`.

The batch dimension is dynamic. Everything the runtime needs is stored in the file's ``metadata_props``
(keys ``iznet.*``, see :func:`embedder_metadata` and :func:`detector_metadata`), among them the embedder's
gallery tag (:func:`iznet.recognize.pipeline.embedder_tag` of the PyTorch embedder), so a gallery enrolled
with the checkpoint matches the ONNX file and its calibrated threshold applies.

Every export is checked with ``onnx.checker`` and, unless ``verify=False``, run with onnxruntime on random
inputs of batch 1 and 3 next to PyTorch: the largest absolute difference is reported, and a file further off
than ``1e-4 * max(1, max |output|)`` is not written. Writes are atomic.

>>> report = export_model("default-embedder", "embedder.onnx")     # doctest: +SKIP
>>> report.max_abs_diff < 1e-4                                      # doctest: +SKIP
True
"""

from __future__ import annotations

import copy
import json
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from iznet.errors import ModelError

from iznet.export.lite import FORMAT, INSTALL_HINT, checkpoint_in_folder  # noqa: E402 - torch-free

OPSET = 17
EMBEDDER_INPUT, EMBEDDER_OUTPUT = "input", "embedding"
DETECTOR_INPUT, DETECTOR_OUTPUT = "images", "raw"
KINDS = ("embedder", "detector")
DEFAULT_MODELS = {"default-embedder": "embedder", "default-detector": "detector"}
"""Names that stand for the bundled models (``src/iznet/assets``)."""

RTOL = 1e-4
"""Largest accepted ORT-vs-PyTorch difference, relative to ``max(1, max |output|)``."""

_VERIFY_BATCHES = (1, 3)  # the graph is traced at batch 2: these check that the batch really is dynamic


def require_onnx() -> Any:
    """The ``onnx`` module, or a :class:`ModelError` saying how to install it."""
    try:
        import onnx
    except ImportError as e:
        raise ModelError(f"ONNX export needs the 'onnx' package ({e}); {INSTALL_HINT}") from None
    return onnx


# ---------------------------------------------------------------------------------------------- sources
@dataclass
class SourceModel:
    """A PyTorch model to export, with where it came from.

    Attributes:
        kind: ``"embedder"`` or ``"detector"``.
        model: a :class:`~iznet.recognize.embedder.NetworkEmbedder` or
            :class:`~iznet.detect.detector.YoloFaceDetector`, on the CPU.
        path: the checkpoint file (None for a model built in memory).
        sha256: hex SHA-256 of the checkpoint file (None without one).
        meta: the checkpoint's ``meta`` dict.
    """

    kind: str
    model: Any
    path: Path | None = None
    sha256: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def checkpoint_path(spec: str | Path) -> Path:
    """The checkpoint a MODEL argument names: ``default-embedder``, ``default-detector``, a file or a run folder.

    Raises:
        ModelError: nothing there, an ONNX file, or a folder without ``model.pt``/``best.pt``.
    """
    text = str(spec).strip()
    if text in DEFAULT_MODELS:
        from iznet.utils.assets import default_detector_spec, default_embedder_spec

        return Path(default_embedder_spec() if DEFAULT_MODELS[text] == "embedder" else default_detector_spec())
    path = Path(text).expanduser()
    if path.is_dir():
        return checkpoint_in_folder(path)
    from iznet.recognize.embedder import ensemble_members

    if ensemble_members(text):
        raise ModelError(f"model {text!r} is an ensemble: export each member on its own (`iznet export A`, "
                         f"`iznet export B`); `--runtime onnx` with the ensemble exports its members by itself")
    if not path.is_file():
        raise ModelError(f"model {text!r}: no such file or folder; give 'default-embedder', 'default-detector', a"
                         " checkpoint file or a run folder")
    if path.suffix.lower() == ".onnx":
        raise ModelError(f"{path} already is an ONNX file; export takes an iznet checkpoint (.pt)")
    return path


def resolve_source(spec: str | Path, kind: str | None = None) -> SourceModel:
    """Load the PyTorch model named by ``spec`` (see :func:`checkpoint_path`) on the CPU.

    Args:
        spec: ``default-embedder``, ``default-detector``, a checkpoint file or a run folder.
        kind: require this kind (``embedder`` or ``detector``); None accepts both.

    Raises:
        ModelError: missing file, not an iznet checkpoint, or a checkpoint of another kind.
    """
    from iznet.utils.checkpoint import load_checkpoint
    from iznet.recognize.gallery import sha256_file

    path = checkpoint_path(spec)
    ck = load_checkpoint(path)
    got = ck.get("kind")
    if got not in KINDS:
        raise ModelError(f"{path} holds a {got!r} checkpoint; ONNX export takes embedders and detectors")
    if kind is not None and got != kind:
        raise ModelError(f"{path} holds a {got!r} checkpoint, expected {kind!r}")
    meta = ck.get("meta") if isinstance(ck.get("meta"), dict) else {}
    if got == "embedder":
        from iznet.recognize.embedder import load_embedder

        model: Any = load_embedder(str(path), device="cpu")
    else:
        from iznet.detect.detector import YoloFaceDetector

        model = YoloFaceDetector.from_checkpoint(path, device="cpu")
    return SourceModel(kind=got, model=model, path=path, sha256=sha256_file(path), meta=meta)


# ---------------------------------------------------------------------------------------------- graphs
class EmbedderGraph(nn.Module):
    """What the ONNX embedder computes: preprocessed crops -> L2-normalised embeddings (test-time views inside).

    Args:
        model: the embedding network.
        tta: add the embedding of the horizontally flipped crop (as :class:`NetworkEmbedder` does).
        zooms: add the embeddings of these zoomed views (:func:`iznet.models.preprocess.zoom_view`), each
            flipped too with ``tta``, as :class:`NetworkEmbedder` does.

    Shapes:
        input (B, 3, S, S) float32 -> (B, D) float32, unit rows.
    """

    def __init__(self, model: nn.Module, tta: bool, zooms: tuple[float, ...] = ()):
        super().__init__()
        self.model = model
        self.tta = bool(tta)
        self.zooms = tuple(float(z) for z in zooms)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from iznet.models.preprocess import sum_of_views

        return F.normalize(sum_of_views(self.model, x, self.tta, self.zooms), p=2.0, dim=1, eps=1e-12)


# ---------------------------------------------------------------------------------------------- metadata
def _common_metadata(kind: str, name: str, source: SourceModel | None) -> dict[str, str]:
    from iznet.version import __version__

    out = {"iznet.format": FORMAT, "iznet.kind": kind, "iznet.name": name, "iznet.iznet_version": __version__,
           "iznet.torch_version": torch.__version__}
    if source is not None and source.path is not None:
        out["iznet.source"] = source.path.name
    if source is not None and source.sha256:
        out["iznet.source_sha256"] = source.sha256
    return out


def _stored_threshold(meta: dict[str, Any]) -> float | None:
    cal = meta.get("calibration") if isinstance(meta.get("calibration"), dict) else {}
    for value in (meta.get("threshold"), cal.get("threshold")):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
            return float(value)
    return None


def embedder_metadata(embedder: Any, source: SourceModel | None = None) -> dict[str, str]:
    """``metadata_props`` of an exported embedder.

    Keys: ``iznet.format``, ``iznet.kind`` (``embedder``), ``iznet.name``, ``iznet.model`` (network class),
    ``iznet.input_size``, ``iznet.embedding_dim``, ``iznet.tta``, ``iznet.tta_zooms`` (comma-separated, empty
    for none), ``iznet.trained``, ``iznet.tag`` (gallery
    tag of the PyTorch embedder), ``iznet.crop`` (the face crop convention: ``box`` or ``aligned``),
    ``iznet.input``/``iznet.output`` (the contract in words), version keys, and
    when known ``iznet.source``, ``iznet.source_sha256``, ``iznet.threshold`` (a threshold the checkpoint
    holds; galleries may store their own under the tag) and ``iznet.calibration`` (JSON: the checkpoint's
    shipped unknown-face rule, used by galleries that store no threshold).
    """
    from iznet.recognize.tags import embedder_tag

    out = _common_metadata("embedder", str(embedder.name), source)
    out.update({
        "iznet.model": type(embedder.model).__name__,
        "iznet.input_size": str(int(embedder.input_size)),
        "iznet.embedding_dim": str(int(embedder.dim)),
        "iznet.tta": str(bool(embedder.tta)).lower(),
        "iznet.tta_zooms": ",".join(repr(float(z)) for z in getattr(embedder, "zooms", ())),
        "iznet.trained": str(bool(embedder.trained)).lower(),
        "iznet.tag": embedder_tag(embedder),
        "iznet.crop": str(getattr(embedder, "face_crop", "box")),
        "iznet.input": f"{EMBEDDER_INPUT}: float32 (batch, 3, S, S), uint8 RGB crops through iznet.models.preprocess"
                       " ((x / 255 - 0.5) / 0.5)",
        "iznet.output": f"{EMBEDDER_OUTPUT}: float32 (batch, D), L2-normalised",
    })
    threshold = _stored_threshold(source.meta) if source is not None else None
    if threshold is not None:
        out["iznet.threshold"] = repr(threshold)
    cal = source.meta.get("calibration") if source is not None else None
    if isinstance(cal, dict) and threshold is not None:  # the shipped unknown-face rule travels with the model
        out["iznet.calibration"] = json.dumps({k: cal[k] for k in ("threshold", "gallery_far", "margin",
                                                                   "spread_rule") if cal.get(k) is not None})
    return out


def detector_metadata(detector: Any, source: SourceModel | None = None) -> dict[str, str]:
    """``metadata_props`` of an exported detector.

    Keys: ``iznet.format``, ``iznet.kind`` (``detector``), ``iznet.name``, ``iznet.model`` (network class),
    ``iznet.input_size`` (= image size), ``iznet.anchors`` (JSON list of ``[w, h]``), ``iznet.postprocess``
    (JSON: ``conf_threshold``, ``iou_threshold``, ``max_detections``), ``iznet.dynamic_side`` (``true``: the
    input side may be any multiple of 32, as test-time augmentation needs), ``iznet.landmarks`` (``true``: 15
    channels per predictor, the last 10 the five landmarks), ``iznet.input``/``iznet.output``,
    version keys, and when known ``iznet.source`` and ``iznet.source_sha256``.
    """
    cfg = detector.config
    out = _common_metadata("detector", str(detector.name), source)
    out.update({
        "iznet.model": type(detector.model).__name__,
        "iznet.input_size": str(int(detector.model.image_size)),
        "iznet.anchors": json.dumps([list(a) for a in detector.model.anchors]),
        "iznet.postprocess": json.dumps({"conf_threshold": cfg.conf_threshold, "iou_threshold": cfg.iou_threshold,
                                         "max_detections": cfg.max_detections}),
        "iznet.dynamic_side": "true",  # any S that is a multiple of 32 (test-time augmentation runs several)
        "iznet.input": f"{DETECTOR_INPUT}: float32 (batch, 3, S, S) in [0, 1], the letterboxed photo / 255",
        "iznet.landmarks": "true" if getattr(detector.model, "landmarks", False) else "false",
        "iznet.output": (f"{DETECTOR_OUTPUT}: float32 (batch, S/32, S/32, anchors, 15) raw conf, x, y, w, h and"
                         " landmark offsets u1, v1, ..., u5, v5; decode with iznet.detect.postprocess"
                         if getattr(detector.model, "landmarks", False) else
                         f"{DETECTOR_OUTPUT}: float32 (batch, S/32, S/32, anchors, 5) raw conf, x, y, w, h;"
                         " decode with iznet.detect.postprocess"),
    })
    return out


# ---------------------------------------------------------------------------------------------- export
@dataclass
class ExportReport:
    """What :func:`export_model` wrote.

    Attributes:
        path: the ONNX file.
        kind: ``embedder`` or ``detector``.
        name: the model's name (as in the metadata).
        input_size: side S of the square input.
        opset: ONNX opset.
        size_bytes: file size.
        max_abs_diff: largest |ORT - PyTorch| over the verification inputs (None: not verified).
        tolerance: the largest difference that was accepted (None: not verified).
        metadata: the ``metadata_props`` written.
    """

    path: Path
    kind: str
    name: str
    input_size: int
    opset: int
    size_bytes: int
    max_abs_diff: float | None
    tolerance: float | None
    metadata: dict[str, str]

    def summary(self) -> list[str]:
        """Lines for the command line."""
        if self.kind == "embedder":
            dim = self.metadata.get("iznet.embedding_dim")
            io = (f"input '{EMBEDDER_INPUT}' float32 (batch, 3, {self.input_size}, {self.input_size}) preprocessed as"
                  f" iznet.models.preprocess -> '{EMBEDDER_OUTPUT}' (batch, {dim}), L2-normalised; flip TTA in the"
                  f" graph: {self.metadata.get('iznet.tta')}")
        else:
            io = (f"input '{DETECTOR_INPUT}' float32 (batch, 3, {self.input_size}, {self.input_size}) in [0, 1] ->"
                  f" '{DETECTOR_OUTPUT}' raw grid; decoding and NMS stay in iznet.detect.postprocess")
        size = f"{self.size_bytes / 1e6:.2f} MB, opset {self.opset}"
        lines = [f"exported {self.kind} {self.name} -> {self.path} ({size})", io, "onnx.checker: ok"]
        if self.max_abs_diff is None:
            lines.append("not compared with PyTorch (--no-verify)")
        else:
            lines.append(f"onnxruntime vs PyTorch on random inputs of batch {' and '.join(map(str, _VERIFY_BATCHES))}:"
                         f" max abs difference {self.max_abs_diff:.3g} (accepted up to {self.tolerance:.3g})")
        if "iznet.tag" in self.metadata:
            lines.append(f"gallery tag {self.metadata['iznet.tag']} (galleries enrolled with the checkpoint match it)")
        return lines


def _trace(module: nn.Module, example: torch.Tensor, in_name: str, out_name: str, path: Path, opset: int,
           dynamic_side: bool = False) -> None:
    axes_in: dict[int, str] = {0: "batch"}
    axes_out: dict[int, str] = {0: "batch"}
    if dynamic_side:  # a fully convolutional detector: any side that is a multiple of 32, the grid follows
        axes_in.update({2: "side", 3: "side"})
        axes_out.update({1: "grid", 2: "grid"})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
            torch.onnx.export(module, (example,), str(path), dynamo=False, opset_version=opset,
                              input_names=[in_name], output_names=[out_name],
                              dynamic_axes={in_name: axes_in, out_name: axes_out})
    except Exception as e:  # noqa: BLE001 - the exporter raises many types
        raise ModelError(f"torch.onnx.export failed for {type(module).__name__}: {type(e).__name__}: {e}") from None


def _verify(path: Path, module: nn.Module, in_name: str, make_input: Callable[[int], torch.Tensor],
            extra: Sequence[torch.Tensor] = ()) -> tuple[float, float]:
    """Run the file with onnxruntime next to ``module``: (max abs difference, tolerance); raise when too far.

    ``extra`` inputs are checked too (a detector's input at another side).
    """
    from iznet.export.onnx_runtime import make_session

    session = make_session(path)
    diff, scale = 0.0, 1.0
    for x in [make_input(batch) for batch in _VERIFY_BATCHES] + list(extra):
        batch = x.shape[0]
        with torch.no_grad():
            ref = module(x).numpy()
        got = session.run(None, {in_name: x.numpy()})[0]
        if got.shape != ref.shape:
            raise ModelError(f"the ONNX graph gives shape {got.shape} for input {tuple(x.shape)} (batch {batch}),"
                             f" PyTorch {ref.shape}")
        diff = max(diff, float(np.abs(got - ref).max()))
        scale = max(scale, float(np.abs(ref).max()))
    tol = RTOL * scale
    if not diff <= tol:
        raise ModelError(f"the ONNX graph differs from PyTorch by {diff:.3g} (more than {tol:.3g}); the file was not"
                         " written")
    return diff, tol


def _write(module: nn.Module, example_batch: Callable[[int], torch.Tensor], in_name: str, out_name: str,
           metadata: dict[str, str], out: Path, opset: int, verify: bool, doc: str,
           dynamic_side: bool = False, extra: Sequence[torch.Tensor] = ()) -> tuple[float | None, float | None]:
    from iznet.utils.io import atomic_path

    onnx = require_onnx()
    out = Path(out)
    if out.is_dir():
        raise ModelError(f"{out} is a folder; give the ONNX file to write (e.g. {out / 'model.onnx'})")
    if verify:
        from iznet.export.onnx_runtime import require_onnxruntime

        require_onnxruntime("to compare the export with PyTorch (or pass --no-verify)")
    module = module.eval()
    with tempfile.TemporaryDirectory(prefix="iznet-onnx-") as tmp:
        raw = Path(tmp) / "graph.onnx"
        _trace(module, example_batch(2), in_name, out_name, raw, opset, dynamic_side)
        proto = onnx.load(str(raw))
    proto.doc_string = doc
    proto.producer_name = "iznet (torch.onnx)"
    onnx.helper.set_model_props(proto, metadata)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:  # noqa: BLE001 - onnx raises ValidationError and friends
        raise ModelError(f"the exported graph fails onnx.checker: {e}") from None
    diff = tol = None
    with atomic_path(out) as tmp_path:
        onnx.save(proto, str(tmp_path))
        if verify:
            diff, tol = _verify(tmp_path, module, in_name, example_batch, extra)
    return diff, tol


def _report(out: Path, kind: str, metadata: dict[str, str], opset: int, diff: float | None, tol: float | None
            ) -> ExportReport:
    return ExportReport(path=Path(out), kind=kind, name=metadata["iznet.name"],
                        input_size=int(metadata["iznet.input_size"]), opset=opset, size_bytes=Path(out).stat().st_size,
                        max_abs_diff=diff, tolerance=tol, metadata=metadata)


def export_embedder(embedder: Any, out: str | Path, source: SourceModel | None = None, opset: int = OPSET,
                    verify: bool = True) -> ExportReport:
    """Write a network embedder as ONNX (graph: :class:`EmbedderGraph`).

    Args:
        embedder: a :class:`~iznet.recognize.embedder.NetworkEmbedder` (any device; exported from a CPU copy).
        out: the ONNX file to write (atomically).
        source: where it came from (stored in the metadata).
        opset: ONNX opset.
        verify: compare with PyTorch in onnxruntime (needs onnxruntime).

    Raises:
        ModelError: not a network, export or check failed, or ORT differs from PyTorch.
    """
    from iznet.recognize.embedder import NetworkEmbedder

    if not isinstance(embedder, NetworkEmbedder):
        raise ModelError(f"only network embedders can be exported to ONNX, got {getattr(embedder, 'name', embedder)!r}"
                         " (pixel and PCA baselines run in numpy/torch as they are)")
    metadata = embedder_metadata(embedder, source)
    graph = EmbedderGraph(copy.deepcopy(embedder.model).cpu().float(), embedder.tta, getattr(embedder, "zooms", ()))
    size = int(embedder.input_size)
    gen = torch.Generator().manual_seed(0)

    def example(batch: int) -> torch.Tensor:
        return torch.rand(batch, 3, size, size, generator=gen) * 2 - 1

    diff, tol = _write(graph, example, EMBEDDER_INPUT, EMBEDDER_OUTPUT, metadata, Path(out), opset, verify,
                       doc=f"iznet embedder {metadata['iznet.name']} ({FORMAT})")
    return _report(Path(out), "embedder", metadata, opset, diff, tol)


def export_detector(detector: Any, out: str | Path, source: SourceModel | None = None, opset: int = OPSET,
                    verify: bool = True) -> ExportReport:
    """Write a :class:`~iznet.detect.detector.YoloFaceDetector`'s network as ONNX (raw output; no decoding).

    Args:
        detector: the detector (its ``config`` thresholds go into the metadata).
        out: the ONNX file to write (atomically).
        source: where it came from (stored in the metadata).
        opset: ONNX opset.
        verify: compare with PyTorch in onnxruntime (needs onnxruntime).

    Raises:
        ModelError: not an iznet detector, export or check failed, or ORT differs from PyTorch.
    """
    from iznet.detect.detector import YoloFaceDetector

    if not isinstance(detector, YoloFaceDetector):
        raise ModelError(f"only iznet detectors can be exported to ONNX, got {getattr(detector, 'name', detector)!r}"
                         " (Haar and YuNet run through OpenCV as they are)")
    metadata = detector_metadata(detector, source)
    net = copy.deepcopy(detector.model).cpu().float().eval()
    size = int(net.image_size)
    gen = torch.Generator().manual_seed(0)

    def example(batch: int) -> torch.Tensor:
        return torch.rand(batch, 3, size, size, generator=gen)

    other_side = torch.rand(1, 3, size + 128, size + 128, generator=gen)  # the side is dynamic
    refiner = getattr(net, "landmark_refiner", None)
    if refiner is not None:  # the second landmark stage runs per face crop: its own graph, in a file beside
        from iznet.detect.refine import REFINE_SIZE

        side_path = refiner_path(Path(out))
        _write(refiner.eval(), lambda b: torch.rand(b, 3, REFINE_SIZE, REFINE_SIZE, generator=gen), REFINER_INPUT,
               REFINER_OUTPUT, {**_common_metadata("detector-refiner", str(detector.name), source)}, side_path,
               opset, verify, doc=f"iznet landmark refiner of {metadata['iznet.name']} ({FORMAT})")
        metadata["iznet.refiner"] = side_path.name
    diff, tol = _write(net, example, DETECTOR_INPUT, DETECTOR_OUTPUT, metadata, Path(out), opset, verify,
                       doc=f"iznet detector {metadata['iznet.name']} ({FORMAT})", dynamic_side=True,
                       extra=[other_side])
    return _report(Path(out), "detector", metadata, opset, diff, tol)


REFINER_INPUT, REFINER_OUTPUT = "crops", "points"


def refiner_path(detector_file: Path) -> Path:
    """Where the landmark refiner of an exported detector is written: ``NAME.refiner.onnx`` beside it."""
    return detector_file.with_name(detector_file.stem + ".refiner.onnx")


def export_model(spec: str | Path, out: str | Path, kind: str | None = None, opset: int = OPSET,
                 verify: bool = True) -> ExportReport:
    """Export the model named by ``spec`` to ONNX (what ``iznet export MODEL --format onnx`` runs).

    Args:
        spec: ``default-embedder``, ``default-detector``, a checkpoint file or a run folder (``model.pt`` of an
            embedder run, ``best.pt`` of a detector run).
        out: the ONNX file to write.
        kind: require an embedder or a detector (None: whatever the checkpoint holds).
        opset: ONNX opset.
        verify: compare with PyTorch in onnxruntime.

    Raises:
        ModelError: unknown model, missing file, wrong kind, export or verification failed.
    """
    source = resolve_source(spec, kind)
    fn = export_embedder if source.kind == "embedder" else export_detector
    return fn(source.model, out, source=source, opset=opset, verify=verify)
