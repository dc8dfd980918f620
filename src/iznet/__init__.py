"""IZ*Net: face detection and recognition you can train on your own photos."""

from iznet.version import __version__

__all__ = ["__version__"]
