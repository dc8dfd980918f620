"""The web service: an HTTP API and a page over :mod:`iznet.recognize` (see ``docs/web.md``).

``create_app`` needs the ``serve`` extra (FastAPI); names are imported lazily so ``import iznet.serve``
stays light.
"""

from __future__ import annotations

from iznet.utils.lazy import lazy_exports

_EXPORTS = {
    "app": ["create_app"],
    "service": ["RecognitionService", "ServeError", "ServeSettings", "Upload", "images_dir_for"],
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
