"""Lazy package exports: ``from iznet.data import load_pack`` without importing every submodule up front.

A package ``__init__`` lists which submodule defines each public name; the first access imports that
submodule and caches the value in the package namespace (later accesses are plain attribute lookups).
This keeps ``import iznet.<package>`` cheap (no torch, OpenCV or FastAPI until a name that needs them).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping, Sequence


def lazy_exports(package: str, exports: Mapping[str, Sequence[str]], namespace: dict[str, Any]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """Module-level ``__getattr__``, ``__dir__`` and ``__all__`` for a package with lazy exports.

    Args:
        package: the package's ``__name__``.
        exports: submodule name (relative to the package) -> the public names it defines.
        namespace: the package's ``globals()``, where resolved names are cached.

    Usage, at the end of a package ``__init__``::

        __getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
    """
    where = {name: mod for mod, names in exports.items() for name in names}
    public = sorted(where)

    def __getattr__(name: str) -> Any:
        mod = where.get(name)
        if mod is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{mod}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__, public
