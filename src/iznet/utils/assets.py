"""The models and demo files shipped inside the package (``src/iznet/assets``), and where to find them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from iznet.errors import IznetError, ModelError

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
"""``src/iznet/assets``: models and demo files shipped inside the package."""

DEFAULT_EMBEDDER_FILE = ASSETS_DIR / "embedder.pt"
DEFAULT_DETECTOR_FILE = ASSETS_DIR / "detector.pt"
DEMO_DIR = ASSETS_DIR / "demo"
DEMO_PHOTO = DEMO_DIR / "photo.jpg"
DEMO_GALLERY = DEMO_DIR / "gallery.db"


def default_embedder_spec() -> str:
    """Path of the bundled embedder checkpoint (``iznet/assets/embedder.pt``).

    Raises:
        ModelError: no embedder is bundled with this installation yet.
    """
    if DEFAULT_EMBEDDER_FILE.is_file():
        return str(DEFAULT_EMBEDDER_FILE)
    raise ModelError(
        f"no default embedder is bundled yet (expected {DEFAULT_EMBEDDER_FILE}); pass --embedder with a"
        " checkpoint you trained (iznet train ...) or a baseline such as 'raw'"
    )


def default_detector_spec() -> str:
    """Path of the bundled face detector checkpoint (``iznet/assets/detector.pt``).

    Raises:
        ModelError: no detector is bundled with this installation yet.
    """
    if DEFAULT_DETECTOR_FILE.is_file():
        return str(DEFAULT_DETECTOR_FILE)
    raise ModelError(
        f"no default detector is bundled yet (expected {DEFAULT_DETECTOR_FILE}); pass --detector with"
        " 'haar' (OpenCV's cascade), 'yunet:PATH' or a detector checkpoint"
    )


@dataclass(frozen=True)
class DemoAssets:
    """The bundled demo: a photo and a gallery enrolled with the bundled embedder."""

    photo: Path
    gallery: Path


def demo_assets() -> DemoAssets:
    """The bundled demo files (``iznet/assets/demo/photo.jpg`` and ``gallery.db``).

    Raises:
        IznetError: they are not bundled with this installation yet.
    """
    missing = [p for p in (DEMO_PHOTO, DEMO_GALLERY) if not p.is_file()]
    if missing:
        raise IznetError(
            f"no demo is bundled yet (missing {', '.join(str(p) for p in missing)}); label your own photos with"
            " `iznet label PHOTO --embedder ... --detector ...`"
        )
    return DemoAssets(photo=DEMO_PHOTO, gallery=DEMO_GALLERY)
