"""The headshot fallback for pictures of one person (iznet.recognize.faces.detect_one_face)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from iznet.detect.results import Detections
from iznet.detect.settings import PostprocessConfig
from iznet.recognize.embedder import RawPixelEmbedder
from iznet.recognize.extract import extract_faces
from iznet.recognize.faces import detect_one_face, pick_headshot, with_confidence
from iznet.recognize.gallery import Gallery
from iznet.recognize.pipeline import enroll_files


class WeakFaceDetector:
    """A detector that scores the picture's non-black part as a face, the more confidently the more black is
    around it: 0.1 when it fills more than half the input, 0.2 when more than a fifth (a canvas twice the
    picture), 0.35 otherwise (three times). It also always sees a tiny, more confident (0.25) box in the top-left
    corner. Boxes below its confidence threshold (0.3, as the bundled one's) are dropped, as a real detector's."""

    def __init__(self):
        self.config = PostprocessConfig(conf_threshold=0.3)
        self.seen = []  # shared with copies: the sides of the pictures it was given

    @property
    def calls(self):
        return len(self.seen)

    def detect(self, image):
        self.seen.append(image.shape[0])
        h, w = image.shape[:2]
        ys, xs = np.nonzero(image.max(axis=2) > 0)
        face = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        share = (face[2] - face[0]) * (face[3] - face[1]) / (h * w)
        boxes = torch.tensor([face, [0, 0, 4, 4]], dtype=torch.float32)
        scores = torch.tensor([0.1 if share > 0.5 else (0.2 if share > 0.2 else 0.35), 0.25])
        keep = scores >= self.config.conf_threshold
        order = torch.argsort(-scores[keep])
        return Detections(boxes[keep][order], scores[keep][order], (w, h))


def picture(seed: int = 0, side: int = 60) -> np.ndarray:
    return np.random.default_rng(seed).integers(30, 255, size=(side, side, 3), dtype=np.uint8)


def test_the_fallback_finds_a_weak_face_filling_the_picture():
    det = WeakFaceDetector()
    boxes, scores, points, headshot = detect_one_face(det, picture(), pads=(2.0, 3.0), conf=0.15, min_side=0.4)
    assert headshot and len(boxes) == 1 and points is None
    np.testing.assert_allclose(boxes[0], [0, 0, 60, 60], atol=1e-6)  # mapped back from the canvas
    assert scores[0] == pytest.approx(0.2)
    assert det.config.conf_threshold == 0.3  # the caller's detector is not changed
    assert det.seen == [60, 120, 120]  # the picture, the pipeline's canvas, then only the first fallback canvas


@pytest.mark.parametrize("conf,min_side,pads", [(0.25, 0.4, (2.0,)),  # the face is weaker than the floor
                                                (0.15, 1.1, (2.0, 3.0)),  # no box is big enough
                                                (0.05, 0.4, ())])  # no fallback canvases
def test_the_fallback_gives_nothing_outside_its_settings(conf, min_side, pads):
    boxes, scores, points, headshot = detect_one_face(WeakFaceDetector(), picture(), pads=pads, conf=conf,
                                                      min_side=min_side)
    assert not headshot and len(boxes) == 0 and len(scores) == 0


def test_the_tiny_confident_box_is_never_the_headshot():
    """With the size rule off the tiny corner box (0.25) wins; with it, the weak face (0.2) does."""
    b, _, _, _ = detect_one_face(WeakFaceDetector(), picture(), pads=(2.0,), conf=0.15, min_side=0.0)
    assert b[0][2] - b[0][0] == pytest.approx(4)
    b, _, _, _ = detect_one_face(WeakFaceDetector(), picture(), pads=(2.0,), conf=0.15, min_side=0.4)
    assert b[0][2] - b[0][0] == pytest.approx(60)


def test_by_default_the_fallback_keeps_the_detectors_threshold():
    """conf None: other canvases at the detector's own threshold; the face shows at 0.35 on the 3x canvas only."""
    det = WeakFaceDetector()
    boxes, scores, _, headshot = detect_one_face(det, picture(), pads=(1.5, 3.0), conf=None, min_side=0.5)
    assert headshot and scores[0] == pytest.approx(0.35) and det.seen == [60, 120, 90, 180]
    np.testing.assert_allclose(boxes[0], [0, 0, 60, 60], atol=1e-6)
    det.config = PostprocessConfig(conf_threshold=0.4)  # a stricter user threshold holds in the fallback too
    assert not detect_one_face(det, picture(), pads=(1.5, 3.0), conf=None, min_side=0.5)[3]


def test_a_face_found_normally_skips_the_fallback():
    det = WeakFaceDetector()
    det.config = PostprocessConfig(conf_threshold=0.05)  # now the picture itself shows the face (and the tiny box)
    boxes, _, _, headshot = detect_one_face(det, picture(), pads=(2.0, 3.0), conf=0.01, min_side=0.4)
    assert not headshot and len(boxes) == 2 and det.calls == 1


def test_detectors_without_a_threshold_get_no_fallback():
    plain = WeakFaceDetector()
    calls = []

    def detect(image):  # a bare callable: no config to lower
        calls.append(1)
        return plain.detect(image)

    assert with_confidence(detect, 0.1) is None
    boxes, _, _, headshot = detect_one_face(detect, picture(), pads=(2.0,), conf=0.05, min_side=0.4)
    assert not headshot and len(boxes) == 0 and len(calls) == 2


def brute_pick(cands, short, conf, min_side):
    for c, (boxes, scores) in enumerate(cands):
        best, best_s = None, -1.0
        for i in range(len(scores)):
            b = boxes[i]
            if scores[i] >= conf and max(b[2] - b[0], b[3] - b[1]) >= min_side * short and scores[i] > best_s:
                best, best_s = i, scores[i]
        if best is not None:
            return c, best
    return None


@pytest.mark.parametrize("seed", range(20))
def test_pick_headshot_against_a_loop(seed):
    rng = np.random.default_rng(seed)
    cands = []
    for _ in range(rng.integers(1, 4)):
        n = int(rng.integers(0, 5))
        xy = rng.uniform(0, 80, size=(n, 2))
        wh = rng.uniform(1, 80, size=(n, 2))
        cands.append((np.concatenate([xy, xy + wh], 1), rng.uniform(0, 1, n)))
    conf, min_side = float(rng.uniform(0, 0.6)), float(rng.uniform(0, 0.8))
    assert pick_headshot(cands, 100.0, conf, min_side) == brute_pick(cands, 100.0, conf, min_side)


def test_enrolment_and_extraction_use_the_fallback(tmp_path, monkeypatch):
    """A folder of weak headshots enrols (each reported as found by the fallback), and `extract-faces` cuts them."""
    import iznet.recognize.faces as F
    from PIL import Image

    monkeypatch.setattr(F.detect_one_face, "__defaults__", ((2.0, 3.0), 0.15, 0.4))
    paths = []
    for v in range(3):
        p = tmp_path / "photos" / "ann" / f"{v}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture(v)).save(p)
        paths.append(p)
    g = Gallery(tmp_path / "g.db")
    rep = enroll_files(g, "ann", paths, RawPixelEmbedder(size=16), WeakFaceDetector())
    g.close()
    assert len(rep.added) == 3 and rep.headshots == paths and not rep.skipped
    ext = extract_faces(tmp_path / "photos", tmp_path / "faces", WeakFaceDetector(), size=32)
    assert not ext.no_face and ext.faces_written == 3
    # every face is kept when a photo may show several people: no fallback there
    ext = extract_faces(tmp_path / "photos", tmp_path / "all", WeakFaceDetector(), size=32, keep="all")
    assert len(ext.no_face) == 3


def test_the_enroll_command_lists_the_faces_only_the_fallback_found(tmp_path, monkeypatch):
    import iznet.detect.detector as detector
    import iznet.recognize.faces as F
    from PIL import Image
    from typer.testing import CliRunner

    from iznet.cli.app import app
    from iznet.cli.main import _register

    _register()
    monkeypatch.setattr(detector, "load_detector", lambda spec, *a, **k: WeakFaceDetector())
    monkeypatch.setattr(F.detect_one_face, "__defaults__", ((2.0, 3.0), None, 0.4))  # the 3x canvas finds it
    paths = []
    for v in range(2):
        p = tmp_path / f"ann{v}.png"
        Image.fromarray(picture(v)).save(p)
        paths.append(str(p))
    r = CliRunner().invoke(app, ["enroll", "ann", *paths, "--gallery", str(tmp_path / "g.db"), "--embedder", "raw:16",
                                 "--detector", "weak"])
    assert r.exit_code == 0, r.output
    assert "faces found by the headshot fallback only" in r.output and "(2)" in r.output
    assert paths[0] in r.output and paths[1] in r.output


def test_clustering_a_folder_of_weak_headshots(tmp_path):
    """Tight crops of two people that no canvas of the pipeline's retry shows: with the fallback (the default)
    every picture gives its face and the two people come out, each face marked; without it none is found."""
    from PIL import Image

    from iznet.recognize.cluster import ClusterError, cluster_photos

    paths = []
    for person in range(2):
        ramp = np.linspace(40, 250, 60)  # each person a different light: from the left, or from the top
        light = np.broadcast_to(ramp[None, :] if person == 0 else ramp[:, None], (60, 60))
        base = np.repeat(light[:, :, None], 3, axis=2).astype(np.int16)
        for v in range(3):
            jitter = np.random.default_rng(10 * person + v).integers(-6, 7, size=base.shape)
            p = tmp_path / "photos" / f"p{person}_{v}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.clip(base + jitter, 30, 255).astype(np.uint8)).save(p)
            paths.append(p)
    det = WeakFaceDetector()
    rep = cluster_photos(paths, tmp_path / "people", det, RawPixelEmbedder(size=16), threshold=0.5)
    assert rep["faces"] == 6 and rep["headshot_faces"] == 6 and rep["clusters"] == 2 and not rep["skipped"]
    by_photo = {Path(f["photo"]).stem: f["cluster"] for f in rep["faces_list"]}
    assert len({by_photo[f"p0_{v}"] for v in range(3)}) == 1 and len({by_photo[f"p1_{v}"] for v in range(3)}) == 1
    assert by_photo["p0_0"] != by_photo["p1_0"]
    assert (tmp_path / "people" / "index.html").read_text().count('class="headshot"') == 6
    assert set(det.seen) == {60, 90, 120, 180}  # the picture, the retry's 2x canvas, then the 1.5x and 3x ones
    with pytest.raises(ClusterError, match="no face found in any of the 6 photos"):
        cluster_photos(paths, tmp_path / "none", WeakFaceDetector(), RawPixelEmbedder(size=16), threshold=0.5,
                       headshots=False)
