"""Image loading: any file PIL can read becomes an (H, W, 3) uint8 RGB array, or a clear ImageError.

Rules, the same for files and for bytes (the web service):

* EXIF orientation is applied (``PIL.ImageOps.exif_transpose``), so the array is upright.
* Every mode becomes RGB uint8: grayscale and 1-bit are replicated; palette images are expanded;
  anything with transparency (LA, RGBA, PA, palette with a transparent index) is composited on
  white; CMYK and YCbCr are converted by PIL; 16-bit grayscale (``I;16``) is scaled by 1/257;
  32-bit ``I`` and float ``F`` images are scaled by 1/257 when they exceed 255, else clipped.
* Multi-frame files (GIF, TIFF) give their first frame.
* A missing, empty, truncated or non-image file, or a directory, raises
  :class:`iznet.errors.ImageError` naming the file and the reason.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from iznet.errors import DataError, ImageError

_logger = logging.getLogger(__name__)

#: File suffixes (lower case) that :func:`list_images` treats as images.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)

#: Default pixel limit for untrusted bytes (about a 50-megapixel photo); larger is refused.
DEFAULT_MAX_PIXELS = 50_000_000
#: Default pixel limit for files (twice any phone camera's); larger is refused before decoding.
DEFAULT_MAX_FILE_PIXELS = 100_000_000
#: Every image, file or upload: no side over this, no side over this many times the other (a 1 x 39,000,000
#: strip has few pixels but takes seconds to decode and resize). Checked from the header, before decoding.
MAX_SIDE = 50_000
MAX_ASPECT = 50

_WHITE = (255, 255, 255, 255)


def load_image(path: str | Path, *, max_pixels: int | None = DEFAULT_MAX_FILE_PIXELS) -> np.ndarray:
    """Read an image file as RGB.

    Args:
        path: the image file.
        max_pixels: refuse images with more pixels than this (None: PIL's own bomb limit only). Sides over
            :data:`MAX_SIDE` and shapes thinner than 1 : :data:`MAX_ASPECT` are refused too.

    Returns:
        (H, W, 3) uint8 array, RGB, upright (EXIF orientation applied).

    Raises:
        ImageError: the file is missing, a directory, empty, truncated, not an image, or too large.

    >>> img = load_image("photo.jpg")  # doctest: +SKIP
    >>> img.shape, img.dtype  # doctest: +SKIP
    ((480, 640, 3), dtype('uint8'))
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(path, "file does not exist")
    if path.is_dir():
        raise ImageError(path, "is a directory, not an image file")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ImageError(path, f"cannot stat file ({e.strerror or e})") from None
    if size == 0:
        raise ImageError(path, "file is empty (0 bytes)")
    try:
        fh = open(path, "rb")
    except OSError as e:
        raise ImageError(path, f"cannot open file ({e.strerror or e})") from None
    with fh:
        return _decode(fh, path, max_pixels)


def load_image_bytes(data: bytes, name: str = "upload", *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode image bytes (an upload) as RGB, with the same rules as :func:`load_image`.

    Args:
        data: the encoded image (JPEG, PNG, ...).
        name: how to name the image in an error message.
        max_pixels: refuse images with more pixels than this, before decoding them (decompression
            bombs); None disables the check (PIL's own limit still applies).

    Returns:
        (H, W, 3) uint8 array, RGB, upright.

    Raises:
        ImageError: empty, not an image, truncated, or over ``max_pixels``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError(name, f"expected bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise ImageError(name, "no data (0 bytes)")
    return _decode(io.BytesIO(bytes(data)), Path(name), max_pixels)


def _decode(fh: BinaryIO, path: Path, max_pixels: int | None) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            # PIL warns (then errors at twice the limit) on huge images; we check the size ourselves.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(fh)
    except UnidentifiedImageError:
        raise ImageError(path, "not an image file (format not recognised)") from None
    except Image.DecompressionBombError as e:
        raise ImageError(path, f"image too large, refused as a possible decompression bomb ({e})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageError(path, f"cannot parse image header ({type(e).__name__}: {e})") from None
    with im:
        w, h = im.size
        if w <= 0 or h <= 0:
            raise ImageError(path, f"image has no pixels ({w}x{h})")
        if max(w, h) > MAX_SIDE:
            raise ImageError(path, f"image is {w}x{h}: a side over {MAX_SIDE:,} pixels is refused")
        if max(w, h) > MAX_ASPECT * min(w, h):
            raise ImageError(path, f"image is {w}x{h}: thinner than 1:{MAX_ASPECT}, not a photo of faces; refused")
        if max_pixels is not None and w * h > max_pixels:
            raise ImageError(path, f"image is {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,}")
        try:
            im.load()
        except Exception as e:  # PIL raises OSError, SyntaxError, struct.error, ... on corrupt data
            raise ImageError(path, f"truncated or corrupt image data ({type(e).__name__}: {e})") from None
        try:
            upright = ImageOps.exif_transpose(im)
        except Exception as e:  # a broken EXIF block must not lose an otherwise good image
            _logger.warning("ignoring unreadable EXIF orientation in %s (%s)", path, e)
            upright = im
        try:
            return to_rgb_array(upright)
        except Exception as e:
            raise ImageError(path, f"cannot convert {im.mode} image to RGB ({type(e).__name__}: {e})") from None


def to_rgb_array(im: Image.Image) -> np.ndarray:
    """Convert a loaded PIL image of any mode to an (H, W, 3) uint8 RGB array (see module rules)."""
    mode = im.mode
    transparent = "transparency" in im.info and mode in ("P", "L", "RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or transparent:
        rgba = im.convert("RGBA")
        out = Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba).convert("RGB")
    elif mode == "RGB":
        out = im
    elif mode.startswith("I;16"):
        return _gray_to_rgb(_scale_16bit(np.asarray(im).astype(np.float64)))
    elif mode in ("I", "F"):
        a = np.asarray(im).astype(np.float64)
        if mode == "F" and a.size and np.nanmax(a) <= 1.0 and np.nanmin(a) >= 0.0:
            a = a * 255.0  # float images in [0, 1]
        elif a.size and np.nanmax(a) > 255:
            a = a / 257.0  # 16-bit range held in a 32-bit image
        return _gray_to_rgb(np.clip(np.nan_to_num(a), 0, 255).round().astype(np.uint8))
    else:  # L, 1, P, CMYK, YCbCr, LAB, HSV, ...
        out = im.convert("RGB")
    arr = np.asarray(out, dtype=np.uint8)
    return np.ascontiguousarray(arr)


def _scale_16bit(a: np.ndarray) -> np.ndarray:
    return np.clip(np.round(a / 257.0), 0, 255).astype(np.uint8)


def _gray_to_rgb(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.uint8)
    return np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2))


def list_images(root: str | Path, recursive: bool = True) -> list[Path]:
    """Image files under ``root`` (by suffix, case-insensitive; hidden files skipped), sorted as Paths.

    Args:
        root: a folder, or a single image file (returned as a one-element list).
        recursive: also look in sub-folders.

    Raises:
        DataError: ``root`` does not exist, or is a file that is not an image by its suffix.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root} does not exist; pass a folder of images")
    if root.is_file():
        if root.suffix.lower() in IMAGE_EXTENSIONS:
            return [root]
        raise DataError(f"{root} is not an image file (known suffixes: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    found: list[Path] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            found.extend(Path(dirpath) / f for f in filenames if _is_image_name(f))
    else:
        found = [p for p in root.iterdir() if p.is_file() and _is_image_name(p.name)]
    return sorted(found)


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


@dataclass
class SkipReport:
    """Files skipped by a bulk operation, with the reason for each.

    Attributes:
        skipped: (path, reason) for each skipped file, in the order met.
    """

    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def add(self, path: str | Path, reason: str) -> None:
        self.skipped.append((Path(path), reason))
        _logger.debug("skipped %s: %s", path, reason)

    def extend(self, other: "SkipReport") -> None:
        self.skipped.extend(other.skipped)

    @property
    def count(self) -> int:
        """How many files were skipped."""
        return len(self.skipped)

    def __len__(self) -> int:
        return len(self.skipped)

    def summary(self, limit: int = 5) -> str:
        """One line: how many were skipped and why, naming at most ``limit`` files."""
        if not self.skipped:
            return "skipped 0 files"
        shown = "; ".join(f"{p} ({r})" for p, r in self.skipped[:limit])
        more = f"; and {len(self.skipped) - limit} more" if len(self.skipped) > limit else ""
        noun = "file" if len(self.skipped) == 1 else "files"
        return f"skipped {len(self.skipped)} unreadable {noun}: {shown}{more}"


def load_images(paths: Iterable[str | Path], *, max_pixels: int | None = DEFAULT_MAX_FILE_PIXELS
                ) -> tuple[list[tuple[Path, np.ndarray]], SkipReport]:
    """Load many images, skipping (and reporting) those that cannot be read.

    Returns:
        ``(loaded, report)``: ``loaded`` holds (path, (H, W, 3) uint8 RGB) for each readable file in
        input order; ``report`` names each skipped file with its reason.
    """
    loaded: list[tuple[Path, np.ndarray]] = []
    report = SkipReport()
    for p in paths:
        try:
            loaded.append((Path(p), load_image(p, max_pixels=max_pixels)))
        except ImageError as e:
            report.add(e.path, e.reason)
    return loaded, report
