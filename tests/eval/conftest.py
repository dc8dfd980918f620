"""A synthetic mini LFW (20 people, 10 View 2 folds, tiny View 1 files) and a mini identity folder."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

N_PEOPLE, N_IMAGES, SIDE = 20, 3, 64


def person_value(p: int) -> int:
    """Red value of the centre square of person ``p``'s images (lets a test read identity back)."""
    return 20 + 10 * p


def _face(p: int, i: int, rng: np.random.Generator) -> np.ndarray:
    pattern = np.random.default_rng(1000 + p).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    img = cv2.resize(pattern, (SIDE, SIDE), interpolation=cv2.INTER_NEAREST).astype(np.int16)
    img += rng.integers(-6, 7, img.shape, dtype=np.int16)  # per-image noise
    img = np.clip(img, 0, 255).astype(np.uint8)
    c = SIDE // 2
    img[c - 6:c + 6, c - 6:c + 6] = (person_value(p), 128, 128)
    return img


def _write(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png" if path.suffix == ".png" else ".jpg", img[:, :, ::-1],
                           [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    path.write_bytes(buf.tobytes())


def names() -> list[str]:
    return [f"Person_{chr(65 + p)}" for p in range(N_PEOPLE)]


@pytest.fixture(scope="session")
def mini_lfw(tmp_path_factory) -> Path:
    """LFW layout: images/<Name>/<Name>_000N.jpg, pairs.txt (10 x 300 + 300), pairsDevTrain/Test.txt."""
    root = tmp_path_factory.mktemp("mini_lfw")
    rng = np.random.default_rng(0)
    people = names()
    for p, name in enumerate(people):
        for i in range(1, N_IMAGES + 1):
            _write(root / "images" / name / f"{name}_{i:04d}.jpg", _face(p, i, rng))
    lines = ["10\t300"]
    for f in range(10):  # fold f holds people 2f and 2f+1 only: person-disjoint folds
        a, b = people[2 * f], people[2 * f + 1]
        for j in range(300):
            n = (a, b)[j % 2]
            i1, i2 = [(1, 2), (1, 3), (2, 3)][j % 3]
            lines.append(f"{n}\t{i1}\t{i2}")
        for j in range(300):
            lines.append(f"{a}\t{1 + j % 3}\t{b}\t{1 + (j // 3) % 3}")
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    # View 1: train on people 0..13, test on 14..19
    train = (["3"] + [f"{people[p]}\t1\t2" for p in (0, 1, 2)]
             + [f"{people[p]}\t1\t{people[p + 1]}\t2" for p in (3, 5, 7)])
    test = (["3"] + [f"{people[p]}\t1\t3" for p in (14, 15, 16)]
            + [f"{people[p]}\t2\t{people[p + 1]}\t3" for p in (17, 18, 14)])
    (root / "pairsDevTrain.txt").write_text("\n".join(train) + "\n")
    (root / "pairsDevTest.txt").write_text("\n".join(test) + "\n")
    return root


@pytest.fixture(scope="session")
def mini_ident(tmp_path_factory) -> Path:
    """Identity folder: 6 people x 8 crops of 48 px (sorted names: img_00 ... img_07)."""
    root = tmp_path_factory.mktemp("mini_ident")
    rng = np.random.default_rng(1)
    for p in range(6):
        for i in range(8):
            _write(root / f"id{p}" / f"img_{i:02d}.png", cv2.resize(_face(p, i, rng), (48, 48)))
    return root
