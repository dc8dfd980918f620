"""Visualisation: figures (functions return a matplotlib Figure; the caller saves it) and drawing boxes
and names on photos.

Names are re-exported lazily, so drawing a box does not import matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "draw": ["DrawError", "draw_detections", "font_size_for", "format_label", "line_width_for"],
    "plots": ["PlotError", "TsneProjection", "distance_heatmap", "effective_perplexity", "intra_distance_boxplot",
              "person_styles", "procrustes_align", "roc_figure", "save_figure", "tsne_figure", "tsne_project",
              "tsne_sequence_figure"],
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'iznet.viz' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"iznet.viz.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
