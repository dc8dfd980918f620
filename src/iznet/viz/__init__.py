"""Drawing boxes, names and landmarks on photos (the analysis figures are in :mod:`iznet.eval.plots`).

Names are re-exported lazily, so importing the package costs nothing until a name is used.
"""

from __future__ import annotations

from iznet.utils.lazy import lazy_exports

_EXPORTS = {
    "draw": ["DrawError", "draw_detections", "font_size_for", "format_label", "line_width_for"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
