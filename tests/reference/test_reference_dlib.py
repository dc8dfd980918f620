"""The dlib reference (``iznet.reference.dlib_ref``): clear errors without dlib; with dlib, its pipeline on the
bundled demo collage (a shipped file, so no shared data is needed). Tests that need dlib skip without it."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys

import numpy as np
import pytest

from iznet.errors import ModelError
from iznet.reference import dlib_ref
from iznet.recognize.gallery import Gallery
from iznet.data.images import load_image
from iznet.recognize.pipeline import DEMO_DIR, DEMO_PHOTO


def test_missing_dlib_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ImportError
    assert dlib_ref.dlib_available() is False
    assert dlib_ref.dlib_version() is None
    with pytest.raises(ModelError, match=r"pip install 'iznet\[dlib\]'"):
        dlib_ref.DlibHogDetector()


def test_missing_model_files_give_an_install_hint(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "face_recognition_models" else real(name, *a))
    with pytest.raises(ModelError, match="face_recognition_models"):
        dlib_ref.model_files()


@pytest.fixture(scope="module")
def dlib_models():
    pytest.importorskip("dlib", reason="dlib is not installed (pip install 'iznet[dlib]')")
    if importlib.util.find_spec("face_recognition_models") is None:
        pytest.skip("face_recognition_models is not installed (pip install 'iznet[dlib]')")
    return dlib_ref.DlibHogDetector(), dlib_ref.DlibResNetEncoder()


def test_model_files_and_no_face_on_black(dlib_models):
    det, _ = dlib_models
    assert all(p.is_file() for p in dlib_ref.model_files().values())
    assert len(det.detect(np.zeros((120, 160, 3), np.uint8))) == 0


def test_dlib_pipeline_names_the_demo_faces(dlib_models, tmp_path):
    det, enc = dlib_models
    photo = load_image(DEMO_PHOTO)
    tiles = json.loads((DEMO_DIR / "expected.json").read_text())["tiles"]
    with Gallery(tmp_path / "dlib.db") as g:
        pipe = dlib_ref.DlibPipeline(det, g, encoder=enc)
        # enrol each tile (a 250x250 LFW photo) as its person, through the same detector and encoder
        for name, (x1, y1, x2, y2) in tiles.items():
            tile = np.ascontiguousarray(photo[y1:y2, x1:x2])
            boxes, _ = det.detect(tile).numpy()
            assert len(boxes) >= 1, name
            vec = pipe.embed_boxes(tile, boxes[:1])
            assert vec.shape == (1, 128) and vec.dtype == np.float32
            assert 0.5 < float(np.linalg.norm(vec)) < 3.0  # dlib's own scale, not rescaled to 1
            g.enroll(name, [(name, hashlib.sha256(name.encode()).hexdigest(), vec[0])], embedder_tag=pipe.tag)
        pipe.reload()
        res = pipe.label(photo)
    assert res.threshold == pytest.approx(dlib_ref.DLIB_THRESHOLD)
    assert len(res.faces) == len(tiles)
    for f in res.faces:
        cx, cy = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2
        tile = next(n for n, (x1, y1, x2, y2) in tiles.items() if x1 <= cx < x2 and y1 <= cy < y2)
        assert f.name == tile and f.distance < 0.2  # the same face, cut from the collage instead of the tile


def test_boxes_reaching_outside_the_photo(dlib_models):
    _, enc = dlib_models
    photo = load_image(DEMO_PHOTO)
    tile = np.ascontiguousarray(photo[0:250, 0:250])
    inside = enc.encode(tile, np.array([[60.0, 60.0, 190.0, 190.0]]))
    outside = enc.encode(tile, np.array([[-20.0, -20.0, 270.0, 270.0]]))
    assert inside.shape == outside.shape == (1, 128) and np.isfinite(outside).all()
    assert enc.encode(tile, np.zeros((0, 4))).shape == (0, 128)


def test_centroid_prototypes_are_refused(dlib_models, tmp_path):
    det, enc = dlib_models
    with pytest.raises(ModelError, match="medoid"):
        dlib_ref.DlibPipeline(det, tmp_path / "g.db", encoder=enc, prototype_method="centroid")
