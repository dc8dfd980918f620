"""Where the data lives: ``--data``, else ``IZNET_DATA``, else ``../shared/data`` when it exists."""

from __future__ import annotations

import os
from pathlib import Path

from iznet.errors import DataError

_REPO_ROOT = Path(__file__).resolve().parents[3]


def shared_data_root() -> Path | None:
    """The shared data folder beside the checkout (``<repo>/../shared/data``), or None."""
    candidates = [Path.cwd().parent / "shared" / "data", _REPO_ROOT.parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c
    return None


def data_root(explicit: str | Path | None = None) -> Path:
    """Resolve the data root. Raises DataError naming the options when nothing is found."""
    if explicit:
        p = Path(explicit)
        if not p.is_dir():
            raise DataError(f"data folder {p} does not exist; pass an existing folder with --data")
        return p
    env = os.environ.get("IZNET_DATA")
    if env:
        p = Path(env)
        if not p.is_dir():
            raise DataError(f"IZNET_DATA={env} is not a folder; fix it or pass --data")
        return p
    shared = shared_data_root()
    if shared is not None:
        return shared
    raise DataError("no data folder: pass --data DIR or set IZNET_DATA (e.g. to ../shared/data)")
