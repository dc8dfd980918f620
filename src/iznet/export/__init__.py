"""Exporting iznet networks to ONNX, and running them with onnxruntime.

* :mod:`iznet.export.onnx_export`: :func:`export_model` writes an embedder or detector as a self-describing
  ONNX file (``iznet export MODEL --format onnx --out FILE.onnx``), checks it and compares it with PyTorch.
* :mod:`iznet.export.onnx_runtime`: :class:`OnnxEmbedder` and :class:`OnnxDetector`, drop-in replacements of
  the PyTorch embedder and detector for :class:`iznet.recognize.pipeline.Pipeline`, and the loaders behind
  ``iznet label --runtime onnx`` (with a cache of exported files).

Both need the ``onnx`` extra (``pip install 'iznet[onnx]'``; ``./setup.sh`` installs it). Names are
re-exported lazily, so ``import iznet.export`` works without it. See ``docs/system.md`` ("ONNX export").
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "onnx_export": ["FORMAT", "ExportReport", "SourceModel", "export_detector", "export_embedder", "export_model",
                    "resolve_source"],
    "onnx_runtime": ["RUNTIMES", "OnnxDetector", "OnnxEmbedder", "cached_export", "default_onnx_dir",
                     "load_detector_runtime", "load_embedder_runtime", "load_onnx", "read_onnx_metadata"],
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'iznet.export' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"iznet.export.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
