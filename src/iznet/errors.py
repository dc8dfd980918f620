"""Errors that iznet raises on purpose. Each message says what is wrong and what to do.

The CLI and the web service turn any :class:`IznetError` into a clear message (no traceback).
"""

from __future__ import annotations

from pathlib import Path


class IznetError(Exception):
    """Base class of every error iznet raises on purpose."""


class ImageError(IznetError):
    """An image file could not be read as an image.

    Attributes:
        path: the offending file.
        reason: a short human-readable reason.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path}: {reason}")


class DataError(IznetError):
    """A dataset, pair file or packed file is missing or malformed."""


class ModelError(IznetError):
    """Unknown model name, bad checkpoint, missing weights."""


class NoFaceError(IznetError):
    """No face was found where one was required."""

    def __init__(self, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        where = f" in {self.path}" if self.path is not None else ""
        super().__init__(f"no face found{where}")


class GalleryError(IznetError):
    """A gallery operation failed (unknown person, bad name, incompatible embedder...)."""


class TrainingError(IznetError):
    """Training cannot go on (NaN loss, bad configuration, no data)."""
