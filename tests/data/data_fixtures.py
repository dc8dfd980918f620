"""Helpers for tests/data: tiny images and folder trees drawn on the fly (no binary fixtures)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"
LFW_TINY = FIXTURES / "lfw_tiny"


def smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    """(h, w, 3) uint8 smooth gradients (JPEG-friendly, so round trips stay close)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for _ in range(3):
        a, b, c = rng.uniform(-1, 1, 3)
        chans.append(128 + 100 * np.sin(a * xx / w * 3 + b * yy / h * 3 + c * 6))
    return np.clip(np.stack(chans, 2), 0, 255).astype(np.uint8)


def write_jpeg(path: Path, img: np.ndarray, quality: int = 95) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=quality)
    return path


def make_identity_folder(root: Path, counts: dict[str, int], size: tuple[int, int] = (40, 40)) -> Path:
    """root/<person>/<person>_<i>.jpg with ``counts[person]`` smooth images each."""
    seed = 0
    for person, n in counts.items():
        for i in range(1, n + 1):
            write_jpeg(root / person / f"{person}_{i:04d}.jpg", smooth_image(size[0], size[1], seed))
            seed += 1
    return root


def make_lfw_tiny(root: Path, frame: int = 50) -> Path:
    """An LFW-shaped folder: the committed tiny pair files plus drawn images/<Name>/<Name>_NNNN.jpg."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("pairs.txt", "pairsDevTrain.txt", "pairsDevTest.txt"):
        shutil.copy(LFW_TINY / name, root / name)
    counts = {}
    for line in (LFW_TINY / "people.txt").read_text().splitlines():
        name, n = line.split()
        counts[name] = int(n)
    make_identity_folder(root / "images", counts, (frame, frame))
    return root
