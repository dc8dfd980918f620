"""The bundled default models on the bundled demo photo: the README's main job, with known answers."""

from __future__ import annotations

import json

import numpy as np

import pytest

from iznet.loading import load_detector, load_embedder
from iznet.recognize import pipeline as pl


@pytest.fixture(scope="module")
def demo():
    try:
        assets = pl.demo_assets()
        pl.default_embedder_spec(), pl.default_detector_spec()
    except Exception as e:  # noqa: BLE001 - report why
        pytest.fail(f"the bundled demo or default models are missing: {e}")
    expected = json.loads((assets.photo.parent / "expected.json").read_text())
    return assets, expected


def _tile_of(box, tiles):
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hits = [name for name, (x0, y0, x1, y1) in tiles.items() if x0 <= cx < x1 and y0 <= cy < y1]
    return hits[0] if hits else None


def test_demo_photo_is_labelled_with_known_answers(demo):
    assets, expected = demo
    from iznet.recognize.gallery import Gallery

    with Gallery(assets.gallery, readonly=True) as g:
        pipe = pl.Pipeline(load_detector(), load_embedder(device="cpu"), g)
        result = pipe.label_file(assets.photo)
    tiles = expected["tiles"]
    # A face found in every tile of the collage (LFW photos: some also show part of someone behind).
    found = [_tile_of(f.box, tiles) for f in result.faces]
    assert set(found) == set(tiles), found
    # The same faces and answers as when the demo was built (scripts/make_assets.py wrote them): boxes,
    # names, and distances to within float noise. How many of them are right is the model card's business.
    recorded = expected["labelled"]["faces"]
    assert len(result.faces) == len(recorded)
    for face in result.faces:
        want = min(recorded, key=lambda f: np.abs(np.subtract(f["box"], face.box)).max())
        assert np.abs(np.subtract(want["box"], face.box)).max() < 0.5
        assert face.name == want["name"]
        assert abs(face.distance - want["distance"]) < 1e-3
        assert face.name == "unknown" or face.name in expected["enrolled"]


def test_demo_cli_writes_the_labelled_photo(demo, tmp_path):
    from typer.testing import CliRunner

    from iznet.cli import main as cli_main
    from iznet.cli.app import app

    cli_main._register()
    res = CliRunner().invoke(app, ["label", "--demo", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "photo_labelled.jpg").is_file()
    data = json.loads((tmp_path / "photo.json").read_text())
    assert len(data["faces"]) == len(demo[1]["labelled"]["faces"])


def test_label_conf_raises_the_bundled_detectors_threshold(demo, tmp_path):
    from typer.testing import CliRunner

    from iznet.cli import main as cli_main
    from iznet.cli.app import app

    cli_main._register()
    res = CliRunner().invoke(app, ["label", "--demo", "--json", "--conf", "0.95"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout.splitlines()[0])
    assert len(doc["faces"]) < len(demo[1]["labelled"]["faces"])
    assert all(f["score"] >= 0.95 for f in doc["faces"])


def test_the_bundled_detector_gives_plausible_landmarks(demo):
    """Every demo face gets five points inside its box (a little margin), eyes above the nose above the mouth,
    the image-left eye and mouth corner left of the others."""
    assets, _ = demo
    from iznet.data.images import load_image

    boxes, _, points = pl.detect_faces_with_landmarks(load_detector(), load_image(assets.photo))
    assert points is not None and len(points) == len(boxes) > 0
    for b, p in zip(boxes, points):
        w, h = b[2] - b[0], b[3] - b[1]
        assert (p[:, 0] > b[0] - 0.15 * w).all() and (p[:, 0] < b[2] + 0.15 * w).all()
        assert (p[:, 1] > b[1] - 0.15 * h).all() and (p[:, 1] < b[3] + 0.15 * h).all()
        assert max(p[0, 1], p[1, 1]) < p[2, 1] < min(p[3, 1], p[4, 1])
        assert p[0, 0] < p[1, 0] and p[3, 0] < p[4, 0]
