"""Pipeline: detect -> crop -> embed -> match on synthetic photos with a blob detector and raw pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from iznet.data.crops import crop_face
from iznet.errors import GalleryError, ImageError
from iznet.recognize.embedder import NetworkEmbedder, RawPixelEmbedder
from iznet.recognize.gallery import Gallery
from iznet.recognize.pipeline import (
    LABEL_SCHEMA,
    FaceResult,
    Pipeline,
    crops_to_batch,
    detect_faces,
    embedder_tag,
    enroll_files,
)

THRESHOLD = 0.2  # same person <= 0.02, different people >= 0.45 for these patterns and raw:16


@pytest.fixture
def embedder():
    return RawPixelEmbedder(size=16)


@pytest.fixture
def gallery(tmp_path, people_photos, embedder, blob_detector):
    g = Gallery(tmp_path / "g.db")
    for name in ("ann", "bob", "cy"):
        enroll_files(g, name, sorted((people_photos / name).glob("*.png")), embedder, blob_detector)
    yield g
    g.close()


def _group(synth):
    # ann (0) and cy (2) are enrolled, person 7 is a stranger; variant 9 was never enrolled
    return synth.make_photo([(0, 9, 20, 30), (7, 9, 120, 40), (2, 9, 230, 150)])


def test_names_at_the_right_boxes(synth, gallery, embedder, blob_detector):
    img, boxes = _group(synth)
    res = Pipeline(blob_detector, embedder, gallery, threshold=THRESHOLD).label(img)
    assert len(res) == 3
    got = {tuple(int(v) for v in f.box): f for f in res.faces}
    assert set(got) == set(boxes)
    assert got[boxes[0]].name == "ann" and got[boxes[2]].name == "cy"
    stranger = got[boxes[1]]
    assert stranger.name == "unknown" and not stranger.known
    assert stranger.distance > THRESHOLD and stranger.nearest in {"ann", "bob", "cy"}
    for f in (got[boxes[0]], got[boxes[2]]):
        assert f.distance < 0.05
        assert f.margin == pytest.approx(f.second_distance - f.distance)
        assert f.second_name not in (None, f.name)
    assert res.threshold == THRESHOLD and res.warnings == []


def test_faces_sorted_by_detector_score(synth, gallery, embedder, blob_detector):
    img, _ = _group(synth)
    scores = [f.det_score for f in Pipeline(blob_detector, embedder, gallery).label(img).faces]
    assert scores == sorted(scores, reverse=True)


def test_stored_threshold_and_none(synth, gallery, embedder, blob_detector):
    img, _ = _group(synth)
    tag = embedder_tag(embedder)
    open_set = Pipeline(blob_detector, embedder, gallery, threshold="stored")
    assert open_set.threshold is None and "no unknown-face threshold" in open_set.warnings[0]
    assert "unknown" not in open_set.label(img).names  # closed set: the stranger gets someone's name
    gallery.set_threshold(tag, THRESHOLD)
    stored = Pipeline(blob_detector, embedder, gallery)
    assert stored.threshold == THRESHOLD
    assert stored.label(img).names.count("unknown") == 1
    with pytest.raises(GalleryError):
        Pipeline(blob_detector, embedder, gallery, threshold="sometimes")


def test_a_gallery_without_threshold_uses_the_embedders_shipped_one(synth, gallery, embedder, blob_detector):
    """A checkpoint's meta["calibration"] threshold applies until the gallery stores its own."""
    img, _ = _group(synth)
    embedder.calibrated_threshold = THRESHOLD
    shipped = Pipeline(blob_detector, embedder, gallery)
    assert shipped.threshold == THRESHOLD and shipped.warnings == []
    assert shipped.label(img).names.count("unknown") == 1
    gallery.set_threshold(embedder_tag(embedder), 10.0)  # the gallery's own wins
    assert Pipeline(blob_detector, embedder, gallery).threshold == 10.0
    assert Pipeline(blob_detector, embedder, gallery, threshold=None).threshold is None


def test_the_shipped_rule_tightens_in_a_gallery_of_look_alikes(synth, gallery, embedder, blob_detector):
    """With gallery_far in the shipped calibration, the threshold drops below the distances at which the
    gallery's own people would be taken for one another; with a margin, close runners-up are unknown."""
    from iznet.recognize.matcher import gallery_threshold

    embedder.calibrated_threshold = 5.0  # far too loose on its own
    embedder.calibration = {"threshold": 5.0, "gallery_far": 0.0}
    pipe = Pipeline(blob_detector, embedder, gallery)
    X, labels, names = gallery.embeddings(embedder_tag(embedder))
    want = gallery_threshold(pipe.matcher, X, [names[i] for i in labels], 0.0)
    assert pipe.threshold == want < 5.0
    img, _ = _group(synth)
    names = pipe.label(img).names
    assert {"ann", "cy"} <= set(names)  # the enrolled people keep their names
    embedder.calibration = {"threshold": 5.0, "margin": 10.0}
    margin = Pipeline(blob_detector, embedder, gallery)
    assert margin.threshold == 5.0 and margin.min_margin == 10.0
    res = margin.label(img)
    assert res.names == ["unknown"] * 3
    doc = res.to_json()  # the JSON says why a face under the threshold is unknown
    assert doc["min_margin"] == 10.0 and all(f["distance"] <= doc["threshold"] for f in doc["faces"])
    assert Pipeline(blob_detector, embedder, gallery, threshold=None).label(img).to_json()["min_margin"] == 0.0


def test_the_shipped_spread_rule_applies_until_the_gallery_stores_a_threshold(synth, gallery, embedder,
                                                                             blob_detector):
    """A spread rule in the shipped calibration names a face only when distance - a * spread - b * margin <= c,
    with each person's spread from their enrolled embeddings; a gallery threshold of its own turns it off."""
    from iznet.recognize.matcher import SpreadRule, person_spreads

    img, _ = _group(synth)
    embedder.calibrated_threshold = 5.0
    loose = {"a": 0.0, "b": 0.0, "c": 5.0, "prior": 0.5, "n0": 1.0, "cap": 5.0}
    embedder.calibration = {"threshold": 5.0, "spread_rule": loose}
    pipe = Pipeline(blob_detector, embedder, gallery)
    X, labels, names = gallery.embeddings(embedder_tag(embedder))
    rule = SpreadRule.from_dict(loose)
    assert pipe.matcher.spread_rule == rule
    assert pipe.matcher.spreads == pytest.approx(person_spreads(X, labels, len(names), rule))
    assert "unknown" not in pipe.label(img).names
    embedder.calibration = {"threshold": 5.0, "spread_rule": {**loose, "c": -5.0}}  # nobody passes
    assert Pipeline(blob_detector, embedder, gallery).label(img).names == ["unknown"] * 3
    gallery.set_threshold(embedder_tag(embedder), 5.0)
    own = Pipeline(blob_detector, embedder, gallery)
    assert own.matcher.spread_rule is None and "unknown" not in own.label(img).names
    gallery.set_threshold(embedder_tag(embedder), None)
    embedder.calibration = {"threshold": 5.0, "spread_rule": {"a": 1.0}}
    with pytest.raises(GalleryError, match="spread rule needs exactly the keys"):
        Pipeline(blob_detector, embedder, gallery)


def test_checkpoint_calibration_is_loaded(tmp_path):
    from iznet.utils.checkpoint import save_checkpoint
    from iznet.models import create_model
    from iznet.recognize.embedder import load_embedder

    m = create_model("nn4_small", input_size=32)
    for cal, want in (({"threshold": 0.81, "target_far": 0.01}, 0.81), (None, None), ({"threshold": None}, None)):
        meta = {} if cal is None else {"calibration": cal}
        save_checkpoint(tmp_path / "e.pt", kind="embedder", model="nn4_small", model_kwargs={"input_size": 32},
                        state_dict=m.state_dict(), meta=meta)
        assert load_embedder(str(tmp_path / "e.pt"), device="cpu").calibrated_threshold == want


def test_no_face_gives_an_empty_result(gallery, embedder, blob_detector):
    res = Pipeline(blob_detector, embedder, gallery).label(np.zeros((50, 60, 3), np.uint8))
    assert res.faces == [] and res.image_size == (60, 50)
    assert res.to_json()["faces"] == []
    assert res.draw(np.zeros((50, 60, 3), np.uint8)).sum() == 0


@pytest.mark.parametrize("kind", ["missing_file", "empty_file"])
def test_empty_gallery_names_everyone_unknown(tmp_path, synth, embedder, blob_detector, kind):
    path = tmp_path / "none.db"
    if kind == "empty_file":
        Gallery(path).close()
    img, _ = _group(synth)
    pipe = Pipeline(blob_detector, embedder, path)
    res = pipe.label(img)
    assert res.names == ["unknown"] * 3
    assert all(f.distance is None for f in res.faces)
    assert "is empty" in res.warnings[0] and "iznet enroll" in res.warnings[0]
    assert (kind == "empty_file") == path.exists()  # labelling never creates a gallery file


def test_gallery_of_another_embedder_is_refused(gallery, blob_detector):
    with pytest.raises(GalleryError, match="raw\\(size=16"):
        Pipeline(blob_detector, RawPixelEmbedder(size=12), gallery)


def test_reload_sees_new_people(tmp_path, synth, people_photos, embedder, blob_detector):
    g = Gallery(tmp_path / "r.db")
    pipe = Pipeline(blob_detector, embedder, g, threshold=THRESHOLD)
    img, _ = synth.make_photo([(1, 9, 20, 30)])
    assert pipe.label(img).names == ["unknown"]
    enroll_files(g, "bob", sorted((people_photos / "bob").glob("*.png")), embedder, blob_detector)
    pipe.reload()
    assert pipe.label(img).names == ["bob"]
    g.close()


def test_crops_follow_the_crop_convention_and_one_batch_per_photo(synth, gallery, embedder, blob_detector):
    calls = []

    class Counting(RawPixelEmbedder):
        def embed(self, images, batch_size=256):
            calls.append(tuple(images.shape))
            return super().embed(images, batch_size)

    counting = Counting(size=16)
    img, _ = _group(synth)
    pipe = Pipeline(blob_detector, counting, gallery, margin_scale=1.3)
    pipe.label(img)
    assert calls == [(3, 3, 16, 16)]
    boxes, _ = detect_faces(blob_detector, img)
    want = embedder.embed(crops_to_batch([crop_face(img, b, 16, scale=1.3) for b in boxes]))
    np.testing.assert_allclose(pipe.embed_boxes(img, boxes), want, atol=1e-6)


def test_json_and_drawing(synth, gallery, embedder, blob_detector, tmp_path):
    img, boxes = _group(synth)
    path = synth.save_png(tmp_path / "group.png", img)
    res = Pipeline(blob_detector, embedder, gallery, threshold=THRESHOLD).label_file(path)
    doc = json.loads(json.dumps(res.to_json()))
    assert doc["schema"] == LABEL_SCHEMA and doc["source"] == str(path)
    assert doc["image_size"] == [320, 240] and doc["embedder"] == embedder_tag(embedder)
    assert set(doc["faces"][0]) == {"box", "det_score", "name", "distance", "nearest", "second_name",
                                    "second_distance", "margin"}
    drawn = res.draw(img)
    assert drawn.shape == img.shape and not np.array_equal(drawn, img)
    x1, y1, _, _ = boxes[1]
    assert tuple(drawn[y1 + 20, x1]) == (255, 0, 0)  # the red box edge
    assert res.labels()[0].split()[0] in {"ann", "cy", "unknown"}


def test_broken_file_names_the_file(tmp_path, gallery, embedder, blob_detector):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(ImageError, match="broken.jpg"):
        Pipeline(blob_detector, embedder, gallery).label_file(bad)


def test_face_result_without_runner_up():
    from iznet.recognize.matcher import Matcher

    m = Matcher(np.eye(2)[:1], ["solo"]).match(np.array([[1.0, 0.0]]))[0]
    f = FaceResult.from_match((0, 0, 10, 10), 0.9, m)
    assert f.second_name is None and f.margin is None and f.to_dict()["margin"] is None


class _Tiny(torch.nn.Module):
    input_size = 8

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3 * 8 * 8, 4)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_embedder_tag_rule(tmp_path):
    assert embedder_tag(RawPixelEmbedder(size=16)) == "raw(size=16;gray=True;crop=1)"  # no commas
    torch.manual_seed(0)
    model = _Tiny()
    a = NetworkEmbedder(model, device="cpu", name="tiny@a.pt")
    b = NetworkEmbedder(_Tiny().cpu(), device="cpu", name="tiny@a.pt")
    b.model.load_state_dict(model.state_dict())
    c = NetworkEmbedder(b.model, device="cpu", name="tiny@renamed.pt")
    assert embedder_tag(a) == embedder_tag(b) == embedder_tag(c)  # same weights, any file name
    assert embedder_tag(a).startswith("tiny@") and len(embedder_tag(a).split("@")[1]) == 12
    assert embedder_tag(NetworkEmbedder(b.model, device="cpu", tta=True, name="tiny")) != embedder_tag(a)
    with torch.no_grad():
        b.model.fc.bias[0] += 1e-3
    assert embedder_tag(b) != embedder_tag(a)

    class Tagged(RawPixelEmbedder):
        tag = "custom-tag"

    assert embedder_tag(Tagged()) == "custom-tag"
    Tagged.tag = "a,b"
    assert embedder_tag(Tagged()) == "a;b"


class EdgeShyDetector:
    """Like most face detectors on a headshot: finds no face that touches the picture's edge."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def detect(self, image):
        from iznet.detect.results import Detections

        self.calls += 1
        d = self.inner.detect(image)
        h, w = image.shape[:2]
        b = d.xyxy.numpy()
        keep = (b[:, 0] > 0) & (b[:, 1] > 0) & (b[:, 2] < w) & (b[:, 3] < h)
        return Detections(d.xyxy[keep], d.scores[keep], (w, h))


def test_tight_crops_are_found_on_a_padded_canvas(synth, tmp_path, embedder, blob_detector):
    """A picture that is all face (a headshot crop) is detected on the retry canvas, in its own pixels."""
    shy = EdgeShyDetector(blob_detector)
    crop = synth.face_pattern(0, 3)
    boxes, _ = detect_faces(shy, crop)
    assert len(boxes) == 0 and shy.calls == 1
    boxes, _ = detect_faces(shy, crop, retry_pad=2.0)
    assert shy.calls == 3 and len(boxes) == 1  # the picture, then the canvas
    np.testing.assert_allclose(boxes[0], [0, 0, crop.shape[1], crop.shape[0]], atol=1)
    # enrolment and labelling of tight crops go through
    g = Gallery(tmp_path / "g.db")
    paths = [synth.save_png(tmp_path / "ann" / f"{v}.png", synth.face_pattern(0, v)) for v in (1, 2, 3)]
    rep = enroll_files(g, "ann", paths, embedder, shy)
    assert len(rep.added) == 3 and not rep.skipped
    res = Pipeline(shy, embedder, g, threshold=THRESHOLD).label(synth.face_pattern(0, 7))
    assert res.names == ["ann"]
    g.close()


REL_POINTS = np.array([[0.3, 0.35], [0.7, 0.35], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]])


class PointedDetector:
    """Wraps a detector and adds five landmarks at fixed places of every box (as a landmark detector would)."""

    def __init__(self, inner):
        self.inner = inner

    def detect(self, image):
        from iznet.detect.results import Detections

        d = self.inner.detect(image)
        b = d.xyxy.numpy().astype(np.float64)
        pts = b[:, None, :2] + REL_POINTS[None] * (b[:, None, 2:] - b[:, None, :2])
        return Detections(d.xyxy, d.scores, d.image_size, torch.from_numpy(pts).float())


def test_landmarks_follow_their_faces_into_results_json_and_drawing(synth, gallery, embedder, blob_detector):
    from iznet.recognize.pipeline import detect_faces_with_landmarks

    img, _ = _group(synth)
    det = PointedDetector(blob_detector)
    boxes, scores, points = detect_faces_with_landmarks(det, img)
    assert points.shape == (len(boxes), 5, 2) and list(scores) == sorted(scores, reverse=True)
    want = boxes[:, None, :2] + REL_POINTS[None] * (boxes[:, None, 2:] - boxes[:, None, :2])
    np.testing.assert_allclose(points, want, atol=1e-3)  # sorted with their boxes
    assert detect_faces_with_landmarks(blob_detector, img)[2] is None
    res = Pipeline(det, embedder, gallery, threshold=THRESHOLD).label(img)
    doc = json.loads(json.dumps(res.to_json()))
    assert np.allclose(doc["faces"][0]["landmarks"], want[0], atol=0.01)
    plain = res.draw(img)
    dotted = res.draw(img, landmarks=True)
    x, y = np.round(want[0, 2]).astype(int)  # the nose dot, inside the face
    assert tuple(dotted[y, x]) == (255, 0, 0) and not np.array_equal(plain, dotted)


def test_landmarks_map_back_from_the_padded_canvas(synth, blob_detector):
    from iznet.recognize.pipeline import detect_faces_with_landmarks

    crop = synth.face_pattern(0, 3)
    boxes, _, points = detect_faces_with_landmarks(PointedDetector(EdgeShyDetector(blob_detector)), crop,
                                                   retry_pad=2.0)
    assert len(boxes) == 1
    h, w = crop.shape[:2]
    np.testing.assert_allclose(points[0], REL_POINTS * [w, h], atol=1.5)


def test_an_aligned_embedder_gets_aligned_crops_in_labelling_enrolment_and_rebuild(synth, tmp_path, blob_detector):
    from iznet.data.align import align_face
    from iznet.data.images import load_image
    from iznet.recognize.pipeline import detect_faces_with_landmarks, rebuild_embeddings

    seen = []

    class Aligned(RawPixelEmbedder):
        face_crop = "aligned"

        def embed(self, images, batch_size=256):
            seen.append(images.clone())
            return super().embed(images, batch_size)

    emb = Aligned(size=16)
    det = PointedDetector(blob_detector)
    img, _ = _group(synth)
    _, _, pts = detect_faces_with_landmarks(det, img)
    g = Gallery(tmp_path / "g.db")
    paths = [synth.save_png(tmp_path / "ann" / f"{v}.png", synth.face_pattern(0, v)) for v in (1, 2)]
    enroll_files(g, "ann", paths, emb, det)
    want_enrol = [align_face(load_image(p), _pointed(det, p), 16) for p in paths]
    np.testing.assert_array_equal(seen[-1].permute(0, 2, 3, 1).numpy(), np.stack(want_enrol))
    Pipeline(det, emb, g, threshold=THRESHOLD).label(img)
    want = np.stack([align_face(img, p, 16) for p in pts])
    np.testing.assert_array_equal(seen[-1].permute(0, 2, 3, 1).numpy(), want)
    # the enrolment recorded the landmarks, so a rebuild cuts the same aligned crops
    rebuild_embeddings(g, emb)
    np.testing.assert_array_equal(seen[-1].permute(0, 2, 3, 1).numpy(), np.stack(want_enrol))
    # a detector without landmarks: box crops, not an error
    Pipeline(blob_detector, emb, g, threshold=THRESHOLD).label(img)
    assert seen[-1].shape == (3, 3, 16, 16)
    g.close()


def _pointed(det, path):
    from iznet.data.images import load_image
    from iznet.recognize.pipeline import detect_faces_with_landmarks

    return detect_faces_with_landmarks(det, load_image(path), retry_pad=2.0)[2][0]


def test_a_shipped_self_rule_replaces_the_threshold_where_the_gallery_has_the_photos(synth, gallery, embedder,
                                                                                    blob_detector):
    """meta.calibration.self_rule: the gallery chooses its threshold and margin on its own photos
    (iznet.recognize.self_rule); too few photos keep the shipped threshold; a stored threshold wins."""
    from iznet.recognize.self_rule import choose_self_rule

    embedder.calibrated_threshold = 5.0
    embedder.calibration = {"threshold": 5.0, "self_rule": {"max_wrong": 0.5, "max_strangers": 0.5,
                                                            "min_members": 1, "min_people": 2}}
    pipe = Pipeline(blob_detector, embedder, gallery)
    X, labels, _ = gallery.embeddings(embedder_tag(embedder))
    want = choose_self_rule(X, labels, max_wrong=0.5, max_strangers=0.5, min_members=1, min_people=2)
    assert want is not None and pipe.self_rule == want
    assert (pipe.threshold, pipe.min_margin) == (want.threshold, want.margin)
    embedder.calibration = {"threshold": 5.0, "self_rule": {"min_members": 10_000}}
    few = Pipeline(blob_detector, embedder, gallery)
    assert few.self_rule is None and few.threshold == 5.0
    gallery.set_threshold(embedder_tag(embedder), 1.0)
    assert Pipeline(blob_detector, embedder, gallery).self_rule is None
