"""Synthetic "faces" and a fake detector for the pipeline tests (no shared data, no trained model).

A face is a smooth random colour pattern (values 40..255) owned by one person; a photo is a black canvas
with faces pasted at known places, saved as PNG (lossless). The fake detector finds the non-black blobs,
so it works on any photo these helpers write, including ones read back from disk by the CLI.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from iznet.detect.results import Detections

FACE = 40  # side of a pasted face in pixels


def face_pattern(person: int, variant: int = 0, noise: float = 4.0) -> np.ndarray:
    """(FACE, FACE, 3) uint8 pattern of ``person``; variants differ by a little pixel noise."""
    base = np.random.default_rng(1000 + person).uniform(40, 255, size=(5, 5, 3)).astype(np.float32)
    img = cv2.resize(base, (FACE, FACE), interpolation=cv2.INTER_CUBIC)
    jitter = np.random.default_rng(10_000 * person + variant + 1).normal(0, noise, img.shape)
    return np.clip(img + jitter * (variant > 0), 40, 255).astype(np.uint8)


def make_photo(faces: list[tuple[int, int, int, int]], size: tuple[int, int] = (240, 320)) -> tuple[np.ndarray, list]:
    """Paste ``(person, variant, x, y)`` faces on a black (H, W) canvas; returns the image and the boxes."""
    img = np.zeros((*size, 3), np.uint8)
    boxes = []
    for person, variant, x, y in faces:
        img[y:y + FACE, x:x + FACE] = face_pattern(person, variant)
        boxes.append((x, y, x + FACE, y + FACE))
    return img, boxes


def save_png(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


class BlobDetector:
    """Finds the non-black blobs of at least 100 pixels; score grows with the blob's area."""

    name = "blobs"

    def __init__(self):
        self.calls = 0

    def detect(self, image: np.ndarray) -> Detections:
        self.calls += 1
        mask = (image.max(axis=2) > 20).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        boxes, scores = [], []
        for x, y, w, h, area in stats[1:]:
            if area >= 100:
                boxes.append((x, y, x + w, y + h))
                scores.append(min(0.99, 0.5 + area / 10_000))
        if not boxes:
            return Detections.empty((image.shape[1], image.shape[0]))
        order = np.argsort(scores)[::-1]
        return Detections(np.asarray(boxes, np.float32)[order], np.asarray(scores, np.float32)[order],
                          (image.shape[1], image.shape[0]))


@pytest.fixture
def blob_detector() -> BlobDetector:
    return BlobDetector()


@pytest.fixture
def fake_detector_spec(monkeypatch):
    """Make ``--detector blobs`` (and the default detector) resolve to a :class:`BlobDetector` in the CLI."""
    import iznet.detect.detector as detector
    from iznet.utils.assets import default_detector_spec

    real = detector.load_detector

    def parse(spec, *args, **kwargs):
        if spec in (default_detector_spec(), "blobs"):
            return BlobDetector()
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(detector, "load_detector", parse)  # what iznet.loading calls
    return "blobs"


@pytest.fixture
def people_photos(tmp_path) -> Path:
    """``photos/<person>/`` with 3 one-face photos each for ann (0), bob (1) and cy (2)."""
    root = tmp_path / "photos"
    for person, name in enumerate(("ann", "bob", "cy")):
        for v in range(1, 4):
            img, _ = make_photo([(person, v, 30 + 20 * v, 40 + 10 * v)], size=(160, 200))
            save_png(root / name / f"{name}{v}.png", img)
    return root


class _Synth:
    """The helpers above, handed to tests as the ``synth`` fixture (test modules cannot import a conftest)."""

    FACE = FACE
    face_pattern = staticmethod(face_pattern)
    make_photo = staticmethod(make_photo)
    save_png = staticmethod(save_png)
    BlobDetector = BlobDetector


@pytest.fixture
def synth() -> type[_Synth]:
    return _Synth
