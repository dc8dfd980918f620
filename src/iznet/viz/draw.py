"""Drawing detections: a box per face and a label (name, distance) on a filled background, with PIL.

Line width and font size scale with the image, so labels stay readable on a 112-pixel crop and on a
4000-pixel photo alike. The font is PIL's default (``ImageFont.load_default(size=...)``), which covers
Latin, Greek and Cyrillic; pass ``font=`` a TrueType file for other scripts (e.g. Hangul names).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from iznet.errors import IznetError

Color = tuple[int, int, int]


class DrawError(IznetError, ValueError):
    """The image, boxes or labels handed to the drawing functions do not fit together."""


def format_label(name: str, distance: float | None = None, digits: int = 2) -> str:
    """``"Alice 0.62"``, or just the name when there is no distance."""
    if distance is None or not math.isfinite(distance):
        return name
    return f"{name} {distance:.{digits}f}"


def line_width_for(height: int, width: int) -> int:
    """Box line width in pixels: 1 up to ~300 px, then about 1 per 300 px of the longer side."""
    return max(1, round(max(height, width) / 300))


def font_size_for(height: int, width: int) -> int:
    """Label font size in pixels: 10 at least, about 1/40 of the longer side."""
    return max(10, round(max(height, width) / 40))


@functools.lru_cache(maxsize=32)
def _font(size: int, path: str | None) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    if path is not None:
        try:
            return ImageFont.truetype(path, size=size)
        except OSError as e:
            raise DrawError(f"cannot load font {path}: {e}") from e
    return ImageFont.load_default(size=size)


def _text_color(bg: Color) -> Color:
    # black text on light backgrounds, white on dark ones (ITU-R BT.601 luma)
    luma = 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2]
    return (0, 0, 0) if luma > 150 else (255, 255, 255)


def draw_detections(
    image: np.ndarray,
    boxes,
    labels: Sequence[str | None] | None = None,
    color: Color | Sequence[Color] = (255, 0, 0),
    line_width: int | None = None,
    font_size: int | None = None,
    font: str | Path | None = None,
    landmarks: Sequence | None = None,
) -> np.ndarray:
    """Draw boxes and labels on a copy of ``image``.

    Args:
        image: uint8 (H, W, 3) RGB; it is not modified.
        boxes: (N, 4) ``x1, y1, x2, y2`` in pixels (floats are rounded; parts outside the image are clipped).
        labels: N strings (None or ``""``: no label for that box), or None for no labels at all.
            A label sits on a filled box of the box colour just above the box, or inside its top edge
            when there is no room above.
        color: one RGB colour for all boxes, or one per box.
        line_width, font_size: override the sizes derived from the image size.
        font: a TrueType font file instead of PIL's default font.
        landmarks: per box its points ((K, 2) x, y pixels, e.g. the five facial landmarks) drawn as small
            dots of the box colour, or None for that box; None: no dots at all.

    Returns:
        A new uint8 (H, W, 3) array.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise DrawError(f"image must be a uint8 (H, W, 3) RGB array, got {img.dtype} {img.shape}")
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        b = b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        raise DrawError(f"boxes must be (N, 4) x1, y1, x2, y2, got shape {b.shape}")
    if not np.all(np.isfinite(b)):
        raise DrawError("boxes contain NaN or infinite values")
    n = len(b)
    if labels is not None and len(labels) != n:
        raise DrawError(f"{len(labels)} labels for {n} boxes")
    if landmarks is not None and len(landmarks) != n:
        raise DrawError(f"{len(landmarks)} landmark sets for {n} boxes")
    if len(color) == 3 and all(isinstance(c, (int, np.integer)) for c in color):
        colors = [tuple(int(c) for c in color)] * n
    else:
        colors = [tuple(int(v) for v in c) for c in color]
        if len(colors) != n:
            raise DrawError(f"{len(colors)} colours for {n} boxes")

    H, W = img.shape[:2]
    lw = line_width or line_width_for(H, W)
    fs = font_size or font_size_for(H, W)
    fnt = _font(int(fs), None if font is None else str(font))
    pil = Image.fromarray(img.copy())
    draw = ImageDraw.Draw(pil)
    pad = max(1, fs // 5)

    for i in range(n):
        x1, y1, x2, y2 = b[i]
        x1, x2 = sorted((x1, x2))
        y1, y2 = sorted((y1, y2))
        x1, y1 = int(round(np.clip(x1, 0, W - 1))), int(round(np.clip(y1, 0, H - 1)))
        x2, y2 = int(round(np.clip(x2, 0, W - 1))), int(round(np.clip(y2, 0, H - 1)))
        draw.rectangle((x1, y1, x2, y2), outline=colors[i], width=lw)
        if landmarks is not None and landmarks[i] is not None:
            pts = np.asarray(landmarks[i], dtype=np.float64).reshape(-1, 2)
            r = max(1, lw)
            for x, y in pts[np.isfinite(pts).all(1)]:
                draw.ellipse((x - r, y - r, x + r, y + r), fill=colors[i])
        text = labels[i] if labels is not None else None
        if not text:
            continue
        left, top, right, bottom = draw.textbbox((0, 0), text, font=fnt)
        tw, th = right - left, bottom - top
        bw, bh = tw + 2 * pad, th + 2 * pad
        bx = min(max(x1, 0), max(W - bw, 0))
        by = y1 - bh if y1 - bh >= 0 else y1  # above the box when it fits, else inside its top edge
        draw.rectangle((bx, by, bx + bw - 1, by + bh - 1), fill=colors[i])
        draw.text((bx + pad - left, by + pad - top), text, fill=_text_color(colors[i]), font=fnt)
    return np.array(pil)
