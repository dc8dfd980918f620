"""Visualisation: figures (functions return a matplotlib Figure; the caller saves it) and drawing boxes
and names on photos.

Names are re-exported lazily, so drawing a box does not import matplotlib.
"""

from __future__ import annotations

from iznet.utils.lazy import lazy_exports

_EXPORTS = {
    "draw": ["DrawError", "draw_detections", "font_size_for", "format_label", "line_width_for"],
    "plots": ["PlotError", "TsneProjection", "distance_heatmap", "effective_perplexity", "intra_distance_boxplot",
              "person_styles", "procrustes_align", "roc_figure", "save_figure", "tsne_figure", "tsne_project",
              "tsne_sequence_figure"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
