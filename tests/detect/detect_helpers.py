"""Synthetic detection data for the detector tests (no ../shared needed). Imported by name from the tests
(a unique module name: several test folders have a conftest.py)."""

from __future__ import annotations

import numpy as np
import torch
from torchvision.io import encode_jpeg

from iznet.detect.pack import DetectionPack, PackedFace, PackedPhoto


def draw_face(img: torch.Tensor, box, g: torch.Generator) -> None:
    """Paint a crude face (skin ellipse, two dark eyes, a mouth) filling ``box`` in a (3, H, W) float image."""
    x1, y1, x2, y2 = [int(round(v)) for v in box]
    h, w = y2 - y1, x2 - x1
    ys = (torch.arange(h) + 0.5) / h * 2 - 1
    xs = (torch.arange(w) + 0.5) / w * 2 - 1
    inside = (ys[:, None] ** 2 + xs[None, :] ** 2) <= 1
    skin = torch.tensor([200.0, 150, 120]) * (0.8 + 0.4 * torch.rand(1, generator=g))
    region = img[:, y1:y2, x1:x2]
    region[:, inside] = skin[:, None]
    for ex in (0.3, 0.7):
        cx, cy, r = int(ex * w), int(0.38 * h), max(1, w // 10)
        region[:, max(cy - r, 0):cy + r, max(cx - r, 0):cx + r] = 30
    region[:, int(0.72 * h):int(0.78 * h) + 1, int(0.3 * w):int(0.7 * w)] = 80


def synthetic_image(size: int, n_faces: int, g: torch.Generator, min_face: int = 16, max_face: int | None = None):
    """(3, size, size) uint8 image with ``n_faces`` non-overlapping crude faces and their (K, 4) boxes."""
    img = torch.rand(3, 1, 1, generator=g) * 120 + torch.rand(3, size, size, generator=g) * 40
    max_face = max_face or size // 2
    boxes: list[list[float]] = []
    for _ in range(50):
        if len(boxes) == n_faces:
            break
        w = int(torch.randint(min_face, max_face + 1, (1,), generator=g))
        h = int(w * 1.2)
        if h >= size:
            continue
        x = int(torch.randint(0, size - w, (1,), generator=g))
        y = int(torch.randint(0, size - h, (1,), generator=g))
        b = [x, y, x + w, y + h]
        if any(b[0] < o[2] + 2 and b[2] > o[0] - 2 and b[1] < o[3] + 2 and b[3] > o[1] - 2 for o in boxes):
            continue
        draw_face(img, b, g)
        boxes.append(b)
    return img.clamp(0, 255).to(torch.uint8), np.asarray(boxes, np.float32).reshape(-1, 4)


def synthetic_pack(n_photos: int = 12, n_faces: int = 12, size: int = 96, seed: int = 0) -> DetectionPack:
    """A small in-memory pack: photos with 1-2 crude faces per split, and face crops."""
    g = torch.Generator().manual_seed(seed)
    photos, faces = [], []
    for i in range(n_photos):
        split = ("train", "dev", "test")[i % 3]
        img, boxes = synthetic_image(size, 1 + i % 2, g)
        photos.append(PackedPhoto(f"p{i}.jpg", split, encode_jpeg(img, quality=90), (size, size), boxes, boxes.copy(),
                                  boxes.copy()))
    for i in range(n_faces):
        split = ("train", "dev", "test")[i % 3]
        crop = torch.full((3, 48, 48), 90, dtype=torch.uint8).float()
        box = [8.0, 6.0, 40.0, 44.0]
        draw_face(crop, box, g)
        faces.append(PackedFace(f"f{i}", split, encode_jpeg(crop.to(torch.uint8), quality=90), np.array(box, np.float32)))
    return DetectionPack(photos, faces, {"counts": {}})
