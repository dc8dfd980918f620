"""The group evaluation (``iznet.eval.group``, ``iznet eval group``) on a tiny synthetic group with known answers.

A "face" is a coloured square on a black picture; the fake detector finds the non-black region, the fake
embedder is the mean colour (unit length after the embedder base class), so which person a probe is nearest
to, and at what distance, follows from its colour.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import iznet.cli.eval_cmds  # noqa: F401  (registers the "eval" sub-app)
from iznet.cli.app import app
from iznet.cli.main import main
from iznet.detect.results import Detections
from iznet.errors import DataError, GalleryError, ModelError
from iznet.eval.group import (OUTCOMES, PaddedDetector, WholeImageDetector, enroll_with_pipeline, evaluate_group,
                              group_root, split_group)
from iznet.recognize.embedder import Embedder
from iznet.recognize.gallery import Gallery
from iznet.recognize.pipeline import Pipeline, enroll_files

RED, GREEN, BLUE, PINK, BLACK = (200, 0, 0), (0, 200, 0), (0, 0, 200), (255, 200, 200), None

# person -> pictures in name order; with enroll=2 the first two are enrolled
GROUP = {
    "Ann": [RED, RED, RED, GREEN, PINK, BLACK],  # probes: correct, wrong (Bob), unknown, no face
    "Bob": [GREEN, GREEN, GREEN],                # probe: correct
    "Cy": [BLUE, BLACK, BLUE, RED],              # enrolment 1.png has no face; probes: correct, wrong (Ann)
}
THRESHOLD = 0.5


class MeanColour(Embedder):
    """Mean RGB of the crop (the base class scales it to unit length)."""

    name = "mean-colour"
    tag = "mean-colour"
    input_size = 8

    @property
    def dim(self) -> int:
        return 3

    def _embed_batch(self, images: torch.Tensor) -> torch.Tensor:
        return images.float().mean(dim=(2, 3))


class NonBlack:
    """Box around the non-black pixels (score 1); nothing on an all-black picture."""

    name = "non-black"

    def __init__(self):
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, image: np.ndarray) -> Detections:
        self.shapes.append(image.shape)
        ys, xs = np.nonzero(image.max(axis=2) > 20)
        if len(xs) == 0:
            return Detections.empty()
        return Detections(torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float32),
                          torch.ones(1))


def picture(colour: tuple[int, int, int] | None, variant: int) -> np.ndarray:
    img = np.zeros((32, 32, 3), np.uint8)
    if colour is not None:
        # a small brightness change per picture keeps the files distinct (the gallery skips identical files)
        img[8:24, 8:24] = np.clip(np.array(colour) * (1 - 0.01 * variant), 0, 255).astype(np.uint8)
    else:
        img[0, 0] = variant  # still black to the detector, distinct bytes
    return img


@pytest.fixture()
def group(tmp_path) -> Path:
    root = tmp_path / "group"
    for person, colours in GROUP.items():
        d = root / person
        d.mkdir(parents=True)
        for i, c in enumerate(colours):
            Image.fromarray(picture(c, i)).save(d / f"{i}.png")
    return root


def run(group: Path, tmp_path: Path, threshold: float | None = THRESHOLD, detector=None, **kw):
    g = Gallery(tmp_path / "g.db")
    pipe = Pipeline(detector or NonBlack(), MeanColour(), g, threshold=threshold, **kw)
    try:
        return evaluate_group(pipe, group, enroll=2)
    finally:
        g.close()


def test_outcomes_are_counted_right(group, tmp_path):
    rep = run(group, tmp_path)
    assert rep.counts() == {"correct": 3, "wrong": 2, "unknown": 1, "no_face": 1, "nearest_correct": 4, "n": 7}
    by_path = {Path(o.path).relative_to(group).as_posix(): o for o in rep.outcomes}
    assert by_path["Ann/2.png"].outcome == "correct"
    assert by_path["Ann/3.png"].outcome == "wrong" and by_path["Ann/3.png"].answer == "Bob"
    unk = by_path["Ann/4.png"]
    assert unk.outcome == "unknown" and unk.answer == "unknown" and unk.nearest == "Ann" and unk.distance > THRESHOLD
    assert by_path["Ann/5.png"].outcome == "no_face" and by_path["Ann/5.png"].n_faces == 0
    assert by_path["Cy/3.png"].outcome == "wrong" and by_path["Cy/3.png"].answer == "Ann"
    assert rep.counts(["Ann"]) == {"correct": 1, "wrong": 1, "unknown": 1, "no_face": 1, "nearest_correct": 2, "n": 4}
    assert rep.enrolled == {"Ann": 2, "Bob": 2, "Cy": 1}
    assert [(Path(p).name, r) for p, r in rep.enroll_skipped] == [("1.png", "no face found")]
    s = rep.shares()
    assert sum(s[k] for k in OUTCOMES) == pytest.approx(1.0)
    assert s["correct"] == pytest.approx(3 / 7)
    d = rep.to_json()
    assert d["counts"]["n"] == 7 and len(d["outcomes"]) == 7 and d["people"]["Cy"]["enrolled"] == 1
    assert d["settings"]["threshold"] == THRESHOLD and d["settings"]["embedder"] == "mean-colour"
    json.dumps(d)  # JSON-ready
    with pytest.raises(DataError, match="Zed"):
        rep.counts(["Zed"])


def test_without_threshold_every_found_face_is_named(group, tmp_path):
    rep = run(group, tmp_path, threshold=None)
    assert rep.counts() == {"correct": 4, "wrong": 2, "unknown": 0, "no_face": 1, "nearest_correct": 4, "n": 7}


def test_detection_bypassed_finds_a_face_in_every_picture(group, tmp_path):
    rep = run(group, tmp_path, detector=WholeImageDetector(), margin_scale=1.0)
    c = rep.counts()
    assert c["no_face"] == 0 and c["n"] == 7 and rep.enroll_skipped == []
    assert rep.enrolled == {"Ann": 2, "Bob": 2, "Cy": 2}
    # the all-black probe embeds to the zero vector: distance 1 to everyone -> unknown
    black = next(o for o in rep.outcomes if o.path.endswith("Ann/5.png"))
    assert black.outcome == "unknown" and black.distance == pytest.approx(1.0)


def test_whole_image_detector_box():
    d = WholeImageDetector().detect(np.zeros((40, 30, 3), np.uint8))
    assert d.xyxy.tolist() == [[0.0, 5.0, 30.0, 35.0]] and d.scores.tolist() == [1.0]


def test_padded_detector_maps_boxes_back():
    inner = NonBlack()
    img = np.full((20, 30, 3), 100, np.uint8)
    boxes, scores = PaddedDetector(inner, pad=2.0).detect(img).numpy()
    assert inner.shapes == [(40, 60, 3)]
    assert boxes.tolist() == [[0.0, 0.0, 30.0, 20.0]] and scores.tolist() == [1.0]
    assert len(PaddedDetector(inner, pad=1.0).detect(np.zeros((20, 30, 3), np.uint8))) == 0
    assert inner.shapes[-1] == (20, 30, 3)
    with pytest.raises(ModelError, match="pad must be >= 1"):
        PaddedDetector(inner, pad=0.5)


def test_enrolment_matches_enroll_files(group, tmp_path):
    files = sorted((group / "Ann").glob("*.png"))[:3]
    with Gallery(tmp_path / "a.db") as a, Gallery(tmp_path / "b.db") as b:
        enroll_files(a, "Ann", files, MeanColour(), NonBlack())
        name, n, skipped = enroll_with_pipeline(Pipeline(NonBlack(), MeanColour(), b, threshold=None), "Ann", files)
        assert (name, n, skipped) == ("Ann", 3, [])
        va, vb = a.embeddings("mean-colour")[0], b.embeddings("mean-colour")[0]
    np.testing.assert_allclose(np.sort(va, axis=0), np.sort(vb, axis=0), atol=1e-6)


def test_split_group(group, tmp_path):
    splits = split_group(group, enroll=2, max_probes=1)
    assert [(s.person, [p.name for p in s.enroll], [p.name for p in s.probes]) for s in splits] == [
        ("Ann", ["0.png", "1.png"], ["2.png"]), ("Bob", ["0.png", "1.png"], ["2.png"]),
        ("Cy", ["0.png", "1.png"], ["2.png"])]
    wrapper = tmp_path / "wrap"
    wrapper.mkdir()
    (group.rename(wrapper / "images"))
    assert group_root(wrapper) == wrapper / "images"
    assert len(split_group(wrapper, enroll=2)) == 3


def test_too_few_pictures_to_enrol_is_an_error(group):
    with pytest.raises(DataError, match=r"Bob \(3\).*lower --enroll"):
        split_group(group, enroll=3)
    (group / "Dee").mkdir()
    with pytest.raises(DataError, match=r"Dee \(0\)"):
        split_group(group, enroll=2)
    with pytest.raises(DataError, match="at least 1"):
        split_group(group, enroll=0)


def test_empty_or_missing_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no person sub-folders"):
        split_group(tmp_path / "empty")
    with pytest.raises(DataError, match="not a folder"):
        split_group(tmp_path / "missing")


def test_gallery_must_be_an_open_empty_gallery(group, tmp_path):
    with pytest.raises(GalleryError, match="open Gallery"):
        evaluate_group(Pipeline(NonBlack(), MeanColour(), tmp_path / "x.db", threshold=None), group, enroll=2)
    with Gallery(tmp_path / "full.db") as g:
        g.enroll("Zed", [("z", "0" * 64, np.ones(3))], embedder_tag="mean-colour")
        with pytest.raises(GalleryError, match="already holds 1 people"):
            evaluate_group(Pipeline(NonBlack(), MeanColour(), g, threshold=None), group, enroll=2)


def test_nobody_enrolled_is_an_error(group, tmp_path):
    blind = lambda image: Detections.empty()  # noqa: E731
    with Gallery(tmp_path / "g.db") as g, pytest.raises(GalleryError, match="nobody could be enrolled"):
        evaluate_group(Pipeline(blind, MeanColour(), g, threshold=None), group, enroll=2)


def test_cli_eval_group(group, tmp_path):
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["eval", "group", "--data", str(group), "--enroll", "2", "-e", "raw:8",
                                   "--no-detect", "--threshold", "none", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "named correctly" in res.output and "no face found" in res.output and "3 people" in res.output
    d = json.loads(out.read_text())
    assert d["counts"]["n"] == 7 and d["counts"]["no_face"] == 0 and d["counts"]["unknown"] == 0
    assert d["settings"]["command"].startswith("iznet eval group --data ")
    assert "--no-detect" in d["settings"]["command"]


def test_cli_eval_group_errors(group, capsys):
    with pytest.raises(SystemExit) as e:
        main(["eval", "group", "--data", str(group), "--enroll", "2", "-e", "raw:8", "--no-detect"])
    assert e.value.code == 2 and "give --threshold" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["eval", "group", "--data", str(group), "--enroll", "3", "-e", "raw:8", "-t", "none"])
    assert e.value.code == 2 and "lower --enroll" in capsys.readouterr().err


def test_padded_detector_keeps_the_landmarks_for_aligned_embedders():
    from iznet.detect.results import Detections

    class Pointed:
        def detect(self, image):  # one face: the canvas centre box, with points at its corners and centre
            h, w = image.shape[:2]
            box = [w / 4, h / 4, 3 * w / 4, 3 * h / 4]
            pts = [[box[0], box[1]], [box[2], box[1]], [w / 2, h / 2], [box[0], box[3]], [box[2], box[3]]]
            return Detections([box], [0.9], (w, h), [pts])

    d = PaddedDetector(Pointed(), pad=2.0).detect(np.zeros((20, 30, 3), np.uint8))
    assert d.xyxy.tolist() == [[0.0, 0.0, 30.0, 20.0]]
    assert d.landmarks is not None and d.landmarks[0].tolist() == [[0, 0], [30, 0], [15, 10], [0, 20], [30, 20]]


def _group_photos_script():
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "group_photos.py"
    spec = importlib.util.spec_from_file_location("group_photos_script", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_group_photos_links_the_enrolled_pictures(group, tmp_path, capsys):
    """scripts/group_photos.py links exactly split_group's enrolment pictures; too few pictures is a clear error."""
    mod = _group_photos_script()
    out = tmp_path / "photos"
    assert mod.main([str(group), "2", str(out)]) == 0
    linked = sorted((p.parent.name, p.name, p.resolve()) for p in out.glob("*/*"))
    want = sorted((s.person, f.name, f.resolve()) for s in split_group(group, enroll=2) for f in s.enroll)
    assert linked == want and len(linked) == 6
    assert mod.main([str(group), "2", str(out)]) == 0  # again: links already there are kept
    assert "6 photos" in capsys.readouterr().out
    assert mod.main([str(group), "3", str(tmp_path / "other")]) == 2
    assert "lower --enroll" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- group photos
class Blobs:
    """A box around every connected non-black region (score 1): the faces of a group photo of squares."""

    name = "blobs"

    def __init__(self):
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, image: np.ndarray) -> Detections:
        from scipy import ndimage

        self.shapes.append(image.shape)
        lab, n = ndimage.label(image.max(axis=2) > 20)
        boxes = [[sl[1].start, sl[0].start, sl[1].stop, sl[0].stop] for sl in ndimage.find_objects(lab)]
        if not boxes:
            return Detections.empty()
        return Detections(torch.tensor(boxes, dtype=torch.float32), torch.ones(len(boxes)))


def test_compose_group_photo_places_each_picture_in_its_cell():
    from iznet.eval.group import GroupPhotos, compose_group_photo

    rng = np.random.default_rng(0)
    pics = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(40, 40), (20, 40), (64, 32), (40, 40)]]
    cfg = GroupPhotos(spread=2.5, per_side=2, side=40, background=7)
    photo, rects = compose_group_photo(pics, cfg, np.random.default_rng(1))
    assert photo.shape == (200, 200, 3)
    mask = np.zeros(photo.shape[:2], bool)
    for j, (pic, (x0, y0, x1, y1)) in enumerate(zip(pics, rects)):
        cx, cy = (j % 2) * 100, (j // 2) * 100  # each picture inside its own 100-pixel cell
        assert cx <= x0 and x1 <= cx + 100 and cy <= y0 and y1 <= cy + 100
        assert max(x1 - x0, y1 - y0) == 40  # the longer side resized to `side`
        if pic.shape[:2] == (40, 40):
            np.testing.assert_array_equal(photo[y0:y1, x0:x1], pic)
        mask[y0:y1, x0:x1] = True
    assert (photo[~mask] == 7).all()
    with pytest.raises(ValueError, match="do not fit"):
        compose_group_photo(pics * 2, cfg, rng)
    with pytest.raises(DataError, match="spread"):
        GroupPhotos(spread=0.5)


def test_face_in_takes_the_face_nearest_the_picture_centre():
    from types import SimpleNamespace

    from iznet.eval.group import face_in

    faces = [SimpleNamespace(box=b) for b in ([0, 0, 10, 10], [30, 30, 50, 50], [12, 12, 22, 22], [200, 0, 210, 9])]
    f, n = face_in(faces, (0, 0, 40, 40))
    assert f is faces[2] and n == 2  # centres (5, 5) and (17, 17) lie inside; (40, 40) is on the open edge
    assert face_in(faces, (100, 100, 120, 120)) == (None, 0)


def test_group_photos_give_the_outcomes_of_the_pictures_labelled_alone(group, tmp_path):
    from iznet.eval.group import GroupPhotos

    blobs = Blobs()
    g = Gallery(tmp_path / "g.db")
    pipe = Pipeline(PaddedDetector(blobs, 2.0), MeanColour(), g, threshold=THRESHOLD)
    try:
        rep = evaluate_group(pipe, group, enroll=2, group_photos=GroupPhotos(spread=2.0, per_side=2, side=32,
                                                                               background=0))
    finally:
        g.close()
    # each probe sits in its own cell: the same answers as labelled alone (test_outcomes_are_counted_right)
    assert rep.counts() == {"correct": 3, "wrong": 2, "unknown": 1, "no_face": 1, "nearest_correct": 4, "n": 7}
    by_path = {Path(o.path).relative_to(group).as_posix(): o for o in rep.outcomes}
    assert by_path["Ann/3.png"].answer == "Bob" and by_path["Ann/5.png"].outcome == "no_face"
    # enrolment pictures went through the padded canvas (64 px); the group photos (two of 2x2 cells of 64 px,
    # seven probes) were detected as they are
    assert blobs.shapes.count((128, 128, 3)) == 2 and all(s[0] == 64 for s in blobs.shapes if s[0] != 128)
    assert isinstance(pipe.detector, PaddedDetector)  # put back after the probes
    assert rep.to_json()["settings"]["group_photos"]["spread"] == 2.0
