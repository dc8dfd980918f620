"""The web service: an HTTP API and a page over :mod:`iznet.recognize` (see ``docs/web.md``).

``create_app`` needs the ``serve`` extra (FastAPI); names are imported lazily so ``import iznet.serve``
stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "app": ["create_app"],
    "service": ["RecognitionService", "ServeError", "ServeSettings", "Upload", "images_dir_for"],
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
