"""extract_faces: photos per person -> face crops, reporting no-face / several-face / unreadable photos, and
re-runs that skip what is done."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from iznet.data.crops import crop_face
from iznet.data.images import load_image
from iznet.errors import DataError
from iznet.recognize.extract import MANIFEST_NAME, extract_faces


@pytest.fixture
def scraped(tmp_path, synth):
    root = tmp_path / "scraped"
    one, _ = synth.make_photo([(0, 1, 50, 60)], size=(160, 200))
    two, _ = synth.make_photo([(0, 2, 10, 10), (3, 2, 100, 90)], size=(160, 200))
    synth.save_png(root / "ann" / "one.png", one)
    synth.save_png(root / "ann" / "two.png", two)
    synth.save_png(root / "ann" / "empty.png", np.zeros((80, 80, 3), np.uint8))
    (root / "ann" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    bob, _ = synth.make_photo([(1, 1, 70, 40)], size=(160, 200))
    synth.save_png(root / "bob" / "b.png", bob)
    (root / "nobody").mkdir()
    return root


def test_first_run_writes_best_faces_and_reports(tmp_path, scraped, synth, blob_detector):
    out = tmp_path / "faces"
    ticks = []
    rep = extract_faces(scraped, out, blob_detector, size=48, keep="best", progress=ticks.append)
    assert (rep.people, rep.photos, rep.processed, rep.reused) == (3, 5, 4, 0)
    assert sum(ticks) == 5
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == [
        "ann/one.jpg", "ann/two.jpg", "bob/b.jpg"]
    assert rep.faces_written == rep.crops_total == 3
    assert rep.no_face == [scraped / "ann" / "empty.png"]
    assert rep.several_faces == [(scraped / "ann" / "two.png", 2)]
    assert [p.name for p, _ in rep.unreadable.skipped] == ["broken.jpg"]
    assert rep.empty_folders == [scraped / "nobody"]
    assert "1 with no face" in rep.summary() and "1 unreadable" in rep.summary()
    # the crop is the crop convention applied to the detected box (JPEG: close, not equal)
    img = load_image(scraped / "bob" / "b.png")
    want = crop_face(img, (70, 40, 110, 80), 48).astype(float)
    assert np.abs(load_image(out / "bob" / "b.jpg").astype(float) - want).mean() < 4
    # both faces of the two-face photo are recorded in the manifest, only one crop written
    doc = json.loads((out / MANIFEST_NAME).read_text())
    assert doc["photos"]["ann/two.png"]["faces"] == 2 and len(doc["photos"]["ann/two.png"]["boxes"]) == 2


def test_rerun_skips_done_work(tmp_path, scraped, blob_detector):
    out = tmp_path / "faces"
    extract_faces(scraped, out, blob_detector, size=48)
    first = blob_detector.calls
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")}
    rep = extract_faces(scraped, out, blob_detector, size=48)
    assert blob_detector.calls == first  # no photo went through the detector again
    assert (rep.processed, rep.reused, rep.faces_written, rep.crops_total) == (0, 4, 0, 3)
    assert rep.no_face and rep.several_faces and rep.unreadable.count == 1  # still reported
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")} == stamp
    # a deleted crop and a changed photo are redone, nothing else
    (out / "bob" / "b.jpg").unlink()
    one = scraped / "ann" / "one.png"
    st = one.stat()
    os.utime(one, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    rep = extract_faces(scraped, out, blob_detector, size=48)
    assert (rep.processed, rep.reused) == (2, 2)
    assert (out / "bob" / "b.jpg").is_file()


def test_keep_all_and_changed_settings(tmp_path, scraped, blob_detector):
    out = tmp_path / "faces"
    extract_faces(scraped, out, blob_detector, size=48)
    rep = extract_faces(scraped, out, blob_detector, size=48, keep="all")
    assert rep.processed == 4  # other settings: every photo redone
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg"))
    assert names == ["ann/one_0.jpg", "ann/two_0.jpg", "ann/two_1.jpg", "bob/b_0.jpg"]  # stale best crops gone
    assert rep.several_faces == [(scraped / "ann" / "two.png", 2)]


def test_bad_arguments(tmp_path, scraped, blob_detector):
    with pytest.raises(DataError, match="inside"):
        extract_faces(scraped, scraped / "ann" / "out", blob_detector)
    with pytest.raises(DataError, match="keep"):
        extract_faces(scraped, tmp_path / "o", blob_detector, keep="some")
    with pytest.raises(DataError, match="not a folder"):
        extract_faces(tmp_path / "nowhere", tmp_path / "o", blob_detector)


def test_corrupt_manifest_redoes_everything(tmp_path, scraped, blob_detector):
    out = tmp_path / "faces"
    extract_faces(scraped, out, blob_detector, size=48)
    (out / MANIFEST_NAME).write_text("{ not json")
    rep = extract_faces(scraped, out, blob_detector, size=48)
    assert rep.processed == 4 and json.loads((out / MANIFEST_NAME).read_text())["format"] == "iznet-extract-v1"


def test_aligned_crops_use_the_landmarks_and_redo_box_runs(tmp_path, scraped, blob_detector):
    from test_pipeline_label import PointedDetector, REL_POINTS

    from iznet.data.align import align_face

    out = tmp_path / "faces"
    extract_faces(scraped, out, blob_detector, size=48)
    rep = extract_faces(scraped, out, PointedDetector(blob_detector), size=48, crop="aligned",
                        detector_name="blobs")
    assert rep.processed == 4 and rep.without_landmarks == 0  # another crop (or detector): every photo redone
    img = load_image(scraped / "bob" / "b.png")
    box = np.array([70.0, 40, 110, 80])
    want = align_face(img, box[:2] + REL_POINTS * (box[2:] - box[:2]), 48).astype(float)
    assert np.abs(load_image(out / "bob" / "b.jpg").astype(float) - want).mean() < 4
    # a detector without landmarks: box crops, counted
    rep = extract_faces(scraped, tmp_path / "f2", blob_detector, size=48, crop="aligned")
    assert rep.without_landmarks == 3 and "3 faces without landmarks" in rep.summary()
    with pytest.raises(DataError, match="crop must be one of box, aligned"):
        extract_faces(scraped, tmp_path / "o", blob_detector, crop="tight")
