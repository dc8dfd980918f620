"""Exporting iznet networks to ONNX, and running them with onnxruntime.

* :mod:`iznet.export.onnx_export`: :func:`export_model` writes an embedder or detector as a self-describing
  ONNX file (``iznet export MODEL --format onnx --out FILE.onnx``), checks it and compares it with PyTorch.
* :mod:`iznet.export.onnx_runtime`: :class:`OnnxEmbedder` and :class:`OnnxDetector`, drop-in replacements of
  the PyTorch embedder and detector for :class:`iznet.recognize.pipeline.Pipeline`, and the cache of exported
  files behind ``--runtime onnx`` (models are loaded by :mod:`iznet.loading`).

Both need the ``onnx`` extra (``pip install 'iznet[onnx]'``; ``./setup.sh`` installs it). Names are
re-exported lazily, so ``import iznet.export`` works without it. See ``docs/system.md`` ("ONNX export").
"""

from __future__ import annotations

from iznet.utils.lazy import lazy_exports

_EXPORTS = {
    "onnx_export": ["FORMAT", "ExportReport", "SourceModel", "export_detector", "export_embedder", "export_model",
                    "resolve_source"],
    "onnx_runtime": ["OnnxDetector", "OnnxEmbedder", "cached_export", "default_onnx_dir", "load_onnx",
                     "read_onnx_metadata", "temporary_export"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
