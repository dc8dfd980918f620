"""The commands: iznet enroll, iznet gallery ..., iznet label, iznet extract-faces (CliRunner, fake detector)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from iznet.cli.app import app
from iznet.cli.main import _register
from iznet.errors import GalleryError, IznetError, ModelError
from iznet.loading import load_detector, load_embedder
from iznet.recognize.gallery import Gallery

_register()
EMB = ["--embedder", "raw:16"]


@pytest.fixture
def run(fake_detector_spec):
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(app, [str(a) for a in args], input=input)

    return invoke


@pytest.fixture
def enrolled(tmp_path, run, people_photos):
    db = tmp_path / "g.db"
    r = run("enroll", "--from-folder", people_photos, "--gallery", db, *EMB, "--detector", "blobs")
    assert r.exit_code == 0, r.output
    r = run("gallery", "calibrate", "--value", "0.2", "--gallery", db, *EMB)
    assert r.exit_code == 0, r.output
    return db


def test_enroll_name_images(tmp_path, run, people_photos):
    db = tmp_path / "g.db"
    files = sorted((people_photos / "bob").glob("*.png"))
    r = run("enroll", "Bob", *files, "--gallery", db, *EMB, "--detector", "blobs")
    assert r.exit_code == 0, r.output
    assert "enrolled new person Bob: 3 image(s) added" in r.stdout
    with Gallery(db) as g:
        assert [(p.name, p.n_images) for p in g.people()] == [("Bob", 3)]
    r = run("enroll", "Bob", files[0], "--gallery", db, *EMB, "--detector", "blobs")
    assert r.exit_code == 0 and "1 already enrolled" in r.stdout


def test_enroll_reports_skips_with_exit_1(tmp_path, run, synth, people_photos):
    db = tmp_path / "g.db"
    blank = synth.save_png(tmp_path / "blank.png", np.zeros((50, 50, 3), np.uint8))
    r = run("enroll", "ann", people_photos / "ann" / "ann1.png", blank, tmp_path / "missing.png",
            "--gallery", db, *EMB, "--detector", "blobs")
    assert r.exit_code == 1
    assert "1 image(s) added" in r.stdout
    assert "blank.png: no face found" in r.stderr and "missing.png: file does not exist" in r.stderr


def test_enroll_no_detect_and_argument_errors(tmp_path, run, synth):
    db = tmp_path / "g.db"
    crop = synth.save_png(tmp_path / "c.png", synth.face_pattern(1, 1))
    r = run("enroll", "cy", crop, "--no-detect", "--gallery", db, *EMB)
    assert r.exit_code == 0, r.output
    assert run("enroll", "cy", "--gallery", db, *EMB).exit_code == 2  # no images
    assert run("enroll", "cy", crop, "--from-folder", tmp_path, "--gallery", db, *EMB).exit_code == 2


def test_enroll_from_folder_lists_problems(tmp_path, run, people_photos):
    (people_photos / "dan").mkdir()
    (people_photos / "ann" / "junk.png").write_bytes(b"junk")
    db = tmp_path / "g.db"
    r = run("enroll", "--from-folder", people_photos, "--gallery", db, *EMB, "--detector", "blobs")
    assert r.exit_code == 1
    assert "3 people, 9 images enrolled" in r.stdout
    assert "junk.png: not an image file" in r.stderr and "dan: no images in this folder" in r.stderr


def test_gallery_list_show_rename_remove(run, enrolled):
    r = run("gallery", "list", "--gallery", enrolled)
    assert r.exit_code == 0, r.output
    assert "3 people, 9 images" in r.stdout and "threshold 0.2000" in r.stdout
    assert [ln.split() for ln in r.stdout.splitlines()[-3:]] == [
        [n, "3", "raw(size=16;gray=True;crop=1)"] for n in ("ann", "bob", "cy")]
    doc = json.loads(run("gallery", "list", "--json", "--gallery", enrolled).stdout)
    assert [p["name"] for p in doc["people"]] == ["ann", "bob", "cy"] and doc["embedders"][0]["threshold"] == 0.2

    r = run("gallery", "show", "bob", "--gallery", enrolled)
    assert r.exit_code == 0 and "bob: 3 image(s)" in r.stdout and "prototypes centroid" in r.stdout
    assert "bob1.png" in r.stdout

    assert run("gallery", "rename", "bob", "Robert", "--gallery", enrolled).exit_code == 0
    r = run("gallery", "rename", "ann", "Robert", "--gallery", enrolled)
    assert isinstance(r.exception, GalleryError) and "already in the gallery" in str(r.exception)

    r = run("gallery", "remove", "Robert", "--gallery", enrolled, input="n\n")
    assert r.exit_code == 1  # aborted at the prompt
    assert run("gallery", "remove", "Robert", "--yes", "--gallery", enrolled).exit_code == 0
    r = run("gallery", "show", "Robert", "--gallery", enrolled)
    assert isinstance(r.exception, GalleryError) and "no person named 'Robert'" in str(r.exception)
    with Gallery(enrolled) as g:
        assert [p.name for p in g.people()] == ["ann", "cy"]


def test_gallery_list_of_missing_gallery(tmp_path, run):
    r = run("gallery", "list", "--gallery", tmp_path / "nope.db")
    assert isinstance(r.exception, GalleryError) and "does not exist" in str(r.exception)


def test_gallery_from_environment(tmp_path, run, people_photos, monkeypatch):
    monkeypatch.setenv("IZNET_GALLERY", str(tmp_path / "env.db"))
    files = sorted((people_photos / "cy").glob("*.png"))
    assert run("enroll", "cy", *files, *EMB, "--detector", "blobs").exit_code == 0
    assert (tmp_path / "env.db").is_file()
    assert "cy" in run("gallery", "list").stdout


def test_gallery_rebuild(tmp_path, run, enrolled, people_photos):
    r = run("gallery", "rebuild", "--embedder", "raw:20", "--gallery", enrolled)
    assert r.exit_code == 0, r.output
    assert "re-embedded 9 image(s) with raw(size=20" in r.stdout
    (people_photos / "ann" / "ann1.png").unlink()
    r = run("gallery", "rebuild", "--embedder", "raw:24", "--gallery", enrolled)
    assert r.exit_code == 1 and "ann1.png: file no longer exists" in r.stderr and "nothing written" in r.stderr
    with Gallery(enrolled) as g:
        assert len(g.embedders()) == 2


def _group(tmp_path, synth, name="group.png"):
    img, boxes = synth.make_photo([(0, 9, 20, 30), (7, 9, 120, 40), (2, 9, 230, 150)])
    return synth.save_png(tmp_path / "in" / name, img), boxes


def test_label_writes_images_and_json(tmp_path, run, synth, enrolled):
    photo, boxes = _group(tmp_path, synth)
    out = tmp_path / "out"
    r = run("label", photo, "-o", out, "--gallery", enrolled, *EMB, "--detector", "blobs")
    assert r.exit_code == 0, r.output
    assert (out / "group_labelled.jpg").is_file()
    doc = json.loads((out / "group.json").read_text())
    by_box = {tuple(int(v) for v in f["box"]): f["name"] for f in doc["faces"]}
    assert by_box == {boxes[0]: "ann", boxes[1]: "unknown", boxes[2]: "cy"}
    assert doc["threshold"] == 0.2
    assert "group.png:" in r.stdout and "ann 0.0" in r.stdout


def test_label_json_to_stdout(tmp_path, run, synth, enrolled):
    photo, _ = _group(tmp_path, synth)
    r = run("label", photo, "--json", "--gallery", enrolled, *EMB, "--detector", "blobs", "--threshold", "none")
    assert r.exit_code == 0, r.output
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    names = [f["name"] for f in docs[0]["faces"]]
    assert len(docs) == 1 and len(names) == 3 and {"ann", "cy"} <= set(names)
    assert "unknown" not in names  # no threshold: the stranger gets the nearest person's name
    assert docs[0]["threshold"] is None
    assert not (tmp_path / "labelled").exists()


def test_label_many_with_broken_missing_and_no_face(tmp_path, run, synth, enrolled, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _group(tmp_path, synth, "a.png")
    _group(tmp_path, synth, "b.png")
    synth.save_png(tmp_path / "in" / "blank.png", np.zeros((40, 40, 3), np.uint8))
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff broken")
    r = run("label", tmp_path / "in", tmp_path / "missing.jpg", "--gallery", enrolled, *EMB, "--detector", "blobs")
    assert r.exit_code == 1
    assert "broken.jpg" in r.stderr and "missing.jpg: file does not exist" in r.stderr
    assert "no face found in" in r.stdout and "blank.png" in r.stdout
    assert "3 photo(s) labelled: 6 face(s), 4 named, 2 unknown; 1 photo(s) with no face; 2 input(s) could not" \
        in r.stdout
    assert sorted(p.name for p in (tmp_path / "labelled").iterdir()) == [
        "a.json", "a_labelled.jpg", "b.json", "b_labelled.jpg", "blank.json", "blank_labelled.jpg"]


def test_label_glob_and_name_clashes(tmp_path, run, synth, enrolled):
    img, _ = synth.make_photo([(1, 9, 40, 40)])
    synth.save_png(tmp_path / "x" / "p.png", img)
    synth.save_png(tmp_path / "y" / "p.png", img)
    out = tmp_path / "out"
    r = run("label", str(tmp_path / "*" / "p.png"), "-o", out, "--gallery", enrolled, *EMB, "--detector", "blobs")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.glob("*.json")) == ["p.json", "p_2.json"]
    assert run("label", str(tmp_path / "*.gif"), "--gallery", enrolled, *EMB, "--detector", "blobs").exit_code == 1


def test_label_with_empty_gallery_warns_and_says_how_to_enrol(tmp_path, run, synth):
    photo, _ = _group(tmp_path, synth)
    r = run("label", photo, "-o", tmp_path / "o", "--gallery", tmp_path / "none.db", *EMB, "--detector", "blobs")
    assert r.exit_code == 0, r.output
    assert "is empty" in r.stderr and "iznet enroll" in r.stderr
    assert [f["name"] for f in json.loads((tmp_path / "o" / "group.json").read_text())["faces"]] == ["unknown"] * 3


def test_label_bad_threshold_and_no_input(tmp_path, run, enrolled):
    assert run("label", "x.jpg", "--threshold", "low", "--gallery", enrolled, *EMB).exit_code == 2
    assert run("label", "--gallery", enrolled, *EMB).exit_code == 2


def test_label_demo_without_bundled_demo(run, monkeypatch, tmp_path):
    from iznet.utils import assets

    monkeypatch.setattr(assets, "DEMO_PHOTO", tmp_path / "nope.jpg")
    r = run("label", "--demo")
    assert isinstance(r.exception, IznetError) and "no demo is bundled" in str(r.exception)


def test_extract_faces_command_reruns(tmp_path, run, synth):
    root = tmp_path / "scraped"
    one, _ = synth.make_photo([(0, 1, 50, 60)], size=(160, 200))
    two, _ = synth.make_photo([(0, 2, 10, 10), (3, 2, 100, 90)], size=(160, 200))
    synth.save_png(root / "ann" / "one.png", one)
    synth.save_png(root / "ann" / "two.png", two)
    synth.save_png(root / "ann" / "none.png", np.zeros((50, 50, 3), np.uint8))
    (root / "ann" / "bad.png").write_bytes(b"bad")
    out = tmp_path / "faces"
    r = run("extract-faces", root, out, "--detector", "blobs", "--size", "32")
    assert r.exit_code == 0, r.output
    assert "4 photos of 1 people: 3 processed, 0 already done; 2 face crops written" in r.stdout
    assert "none.png" in r.stderr and "two.png: 2 faces" in r.stderr and "bad.png" in r.stderr
    r = run("extract-faces", root, out, "--detector", "blobs", "--size", "32")
    assert "0 processed, 3 already done; 0 face crops written (2 in" in r.stdout
    # the crops are a dataset `enroll --no-detect` takes
    r = run("enroll", "ann", *sorted((out / "ann").glob("*.jpg")), "--no-detect", "--gallery", tmp_path / "g.db",
            *EMB)
    assert r.exit_code == 0 and "2 image(s) added" in r.stdout


def test_haar_detector_finds_no_face_in_noise(tmp_path, synth):
    """A real detector (OpenCV's Haar cascade through the detector loader) on noise: the no-face path."""
    from iznet.recognize import pipeline as pl

    det = load_detector(spec="haar")
    noise = np.random.default_rng(0).integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    photo = synth.save_png(tmp_path / "noise.png", noise)
    runner = CliRunner()
    r = runner.invoke(app, ["label", str(photo), "-o", str(tmp_path / "o"), "--detector", "haar", *EMB,
                            "--gallery", str(tmp_path / "none.db")])
    assert r.exit_code == 0, r.output
    assert "no face found in" in r.stdout
    assert len(pl.Pipeline(det, load_embedder(spec="raw:16"), tmp_path / "none.db").label(noise)) == 0


@pytest.mark.shared
def test_haar_labels_a_real_photo(shared_data, tmp_path):
    """On a real LFW photo the Haar detector finds the face near the middle; enrol it and label it back."""
    from iznet.data.crops import LFW_FACE_BOX

    photo = shared_data / "lfw" / "images" / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"
    if not photo.is_file():
        pytest.skip(f"{photo} is not in the shared data")
    runner = CliRunner()
    db = tmp_path / "g.db"
    r = runner.invoke(app, ["enroll", "Aaron", str(photo), "--detector", "haar", *EMB, "--gallery", str(db)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["label", str(photo), "--json", "--detector", "haar", *EMB, "--gallery", str(db),
                            "--threshold", "0.01"])
    assert r.exit_code == 0, r.output
    faces = json.loads(r.stdout.splitlines()[0])["faces"]
    assert len(faces) >= 1 and faces[0]["name"] == "Aaron" and faces[0]["distance"] < 1e-3
    x1, y1, x2, y2 = faces[0]["box"]
    cx, cy = (LFW_FACE_BOX[0] + LFW_FACE_BOX[2]) / 2, (LFW_FACE_BOX[1] + LFW_FACE_BOX[3]) / 2
    assert x1 < cx < x2 and y1 < cy < y2


def test_read_only_gallery_is_read_and_writes_fail_with_one_line(tmp_path, run, synth, enrolled, monkeypatch):
    """A gallery whose file or folder cannot be written (a read-only install) is opened read-only: listing and
    labelling work, writes end in a GalleryError naming the file (never an sqlite3 traceback)."""
    import iznet.recognize.gallery as gmod

    monkeypatch.setattr(gmod, "_writable", lambda path: False)  # as a non-root user would see it
    before = sorted(p.name for p in enrolled.parent.glob("g.db*"))
    with Gallery(enrolled) as g:
        assert g.readonly and [p.name for p in g.people()] == ["ann", "bob", "cy"]
    r = run("gallery", "list", "--gallery", enrolled)
    assert r.exit_code == 0 and "3 people" in r.stdout
    photo, _ = _group(tmp_path, synth)
    r = run("label", photo, "--json", "--gallery", enrolled, *EMB, "--detector", "blobs")
    assert r.exit_code == 0, r.output
    for args in (("gallery", "remove", "ann", "--yes"), ("gallery", "rename", "ann", "Ann"),
                 ("gallery", "calibrate", "--value", "0.3", *EMB)):
        r = run(*args, "--gallery", enrolled)
        assert isinstance(r.exception, GalleryError) and "read-only" in str(r.exception), args
    assert sorted(p.name for p in enrolled.parent.glob("g.db*")) == before  # no side files were made
    with Gallery(enrolled, readonly=True) as g:
        assert [p.name for p in g.people()] == ["ann", "bob", "cy"]
    with pytest.raises(GalleryError, match="does not exist"):
        Gallery(tmp_path / "new.db", readonly=True)


def test_label_output_folder_that_cannot_be_made(tmp_path, run, synth, enrolled):
    photo, _ = _group(tmp_path, synth)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    r = run("label", photo, "-o", blocker / "sub", "--gallery", enrolled, *EMB, "--detector", "blobs")
    assert r.exit_code == 2 and "cannot create the folder" in r.output and "Traceback" not in r.output


def test_version_and_out_of_range_options(tmp_path, run, synth, enrolled):
    from iznet.version import __version__

    r = run("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"iznet {__version__}"
    photo, _ = _group(tmp_path, synth)
    for args, what in ((("-t", "-1"), "0..2"), (("-t", "5"), "0..2"), (("--method", "foo"), "medoid")):
        r = run("label", photo, "--json", "--gallery", enrolled, *EMB, "--detector", "blobs", *args)
        assert r.exit_code == 2 and what in r.output, (args, r.output)


def test_label_conf_applies_to_iznet_detectors_only(tmp_path, run, synth, enrolled):
    photo, _ = _group(tmp_path, synth)
    r = run("label", photo, "--json", "--gallery", enrolled, *EMB, "--detector", "blobs", "--conf", "0.5")
    assert isinstance(r.exception, ModelError) and "iznet detectors only" in str(r.exception)  # exit status 2


def test_cluster_then_enroll_the_renamed_folders(tmp_path, run, synth):
    """Photos of three people (two faces each on some) -> three person folders and an unsorted stranger;
    renamed folders enrol with --from-folder, unsorted/ is skipped."""
    photos = tmp_path / "photos"
    layout = [[(0, 1, 20, 30), (1, 1, 150, 40)], [(0, 2, 60, 100)], [(1, 2, 20, 20), (2, 1, 200, 150)],
              [(2, 2, 90, 60)], [(0, 3, 30, 30), (2, 3, 150, 150)], [(7, 1, 100, 100)]]
    for i, faces in enumerate(layout):
        img, _ = synth.make_photo(faces)
        synth.save_png(photos / f"p{i}.png", img)
    out = tmp_path / "people"
    r = run("cluster", photos, "-o", out, *EMB, "--detector", "blobs", "--threshold", "0.2")
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "clusters.json").read_text())
    assert doc["faces"] == 9 and doc["clusters"] == 3 and doc["unsorted"] == 1
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == ["person_001", "person_002", "person_003", "unsorted"]
    assert [len(list((out / f).glob("*.jpg"))) for f in folders] == [3, 3, 2, 1]  # by decreasing size
    assert sorted(p.name for p in (out / "unsorted").iterdir()) == ["p5_0.jpg"]  # the stranger
    assert (out / "index.html").read_text().count("<img") == 9
    for f in folders[:3]:  # the user names them
        (out / f).rename(out / f"named_{f}")
    db = tmp_path / "g.db"
    r = run("enroll", "--from-folder", out, "--gallery", db, *EMB, "--detector", "blobs")
    assert r.exit_code == 0, r.output
    with Gallery(db) as g:
        assert len(g) == 3 and "unsorted" not in g
    r = run("cluster", photos, "-o", out, *EMB, "--detector", "blobs", "--threshold", "0.2")
    assert isinstance(r.exception, IznetError) and "not an empty folder" in str(r.exception)


def test_enroll_from_folder_says_what_it_ignores(tmp_path, run, people_photos):
    import shutil

    root = tmp_path / "people"
    shutil.copytree(people_photos, root)
    shutil.copy(sorted((root / "ann").glob("*.png"))[0], root / "loose.png")
    (root / "bob" / "old").mkdir()
    r = run("enroll", "--from-folder", root, "--gallery", tmp_path / "g.db", *EMB, "--detector", "blobs")
    assert r.exit_code == 0, r.output
    assert "ignored (not ROOT/<person>/<image>) (2)" in r.output
    assert "loose.png: an image at the top level" in r.output and "old: a folder inside" in r.output
