"""Enrolling photos, re-embedding a gallery with another embedder, calibrating the threshold, defaults."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from iznet.data.crops import lfw_crop
from iznet.errors import GalleryError, IznetError, ModelError
from iznet.recognize.embedder import RawPixelEmbedder
from iznet.recognize.gallery import Gallery, sha256_file
from iznet.recognize.matcher import calibrate_threshold
from iznet.recognize.pipeline import (
    SOURCE_META_PREFIX,
    default_gallery_path,
    demo_assets,
    embedder_tag,
    enroll_files,
    enroll_folder,
    rebuild_embeddings,
)
from iznet.eval.calibration import calibrate_on_lfw
from iznet.loading import load_embedder


def test_enroll_skips_and_reports(tmp_path, synth, people_photos, blob_detector):
    emb = RawPixelEmbedder(size=16)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    blank = synth.save_png(tmp_path / "blank.png", np.zeros((60, 60, 3), np.uint8))
    two, _ = synth.make_photo([(0, 5, 10, 10), (4, 5, 100, 100)])
    two = synth.save_png(tmp_path / "two.png", two)
    files = sorted((people_photos / "ann").glob("*.png")) + [bad, blank, two, tmp_path / "gone.png"]
    with Gallery(tmp_path / "g.db") as g:
        rep = enroll_files(g, "ann", files, emb, blob_detector)
        assert rep.created and rep.name == "ann" and len(rep.added) == 4
        assert {p.name: r for p, r in rep.skipped} == {
            "bad.jpg": "not an image file (format not recognised)", "blank.png": "no face found",
            "gone.png": "file does not exist"}
        assert rep.several_faces == [(two, 2)]
        again = enroll_files(g, "ann", files[:2], emb, blob_detector)
        assert not again.created and again.duplicates == files[:2] and again.added == []
        rec = g.images("ann")[0]
        info = g.get_meta(SOURCE_META_PREFIX + rec.sha256)
        assert info["margin"] == pytest.approx(1.3) and len(info["box"]) == 4
        with pytest.raises(GalleryError, match="nothing to enrol"):
            enroll_files(g, "zed", [bad, blank], emb, blob_detector)
        assert "zed" not in g
        with pytest.raises(GalleryError, match="reserved"):
            enroll_files(g, "unknown", files[:1], emb, blob_detector)
        with pytest.raises(GalleryError, match="not from 'raw\\(size=12"):
            enroll_files(g, "bob", files[:1], RawPixelEmbedder(size=12), blob_detector)


def test_enroll_crops_without_detection(tmp_path, synth):
    emb = RawPixelEmbedder(size=16)
    crop = synth.save_png(tmp_path / "c.png", synth.face_pattern(2, 1))
    with Gallery(tmp_path / "g.db") as g:
        rep = enroll_files(g, "cy", [crop], emb, detector=None)
        assert rep.added == [crop]
        assert g.get_meta(SOURCE_META_PREFIX + g.images("cy")[0].sha256)["box"] is None


def test_enroll_folder(tmp_path, people_photos, blob_detector):
    (people_photos / "empty").mkdir()
    (people_photos / ".hidden").mkdir()
    ticks = []
    with Gallery(tmp_path / "g.db") as g:
        reports, problems = enroll_folder(g, people_photos, RawPixelEmbedder(size=16), blob_detector,
                                          progress=ticks.append)
        assert [r.name for r in reports] == ["ann", "bob", "cy"]
        assert [p.name for p in g.people()] == ["ann", "bob", "cy"]
        assert problems == [(people_photos / "empty", "no images in this folder")]
        assert sum(ticks) == 9


def test_ensemble_embedder_in_a_gallery(tmp_path, people_photos, blob_detector):
    from iznet.recognize.embedder import EnsembleEmbedder

    a, b = RawPixelEmbedder(size=16), RawPixelEmbedder(size=20, gray=False)
    ens = EnsembleEmbedder([a, b])
    tag = embedder_tag(ens)
    assert tag.startswith("ensemble@") and tag == embedder_tag(EnsembleEmbedder([a, b]))
    assert tag != embedder_tag(EnsembleEmbedder([b, a])) and tag not in (embedder_tag(a), embedder_tag(b))
    with Gallery(tmp_path / "g.db") as g:
        enroll_folder(g, people_photos, ens, blob_detector)
        P, names = g.prototypes(tag)
        assert names == ["ann", "bob", "cy"] and P.shape == (3, 16 * 16 + 20 * 20 * 3)


def test_rebuild_with_another_embedder(tmp_path, people_photos, blob_detector):
    old, new = RawPixelEmbedder(size=16), RawPixelEmbedder(size=20, gray=False)
    with Gallery(tmp_path / "g.db") as g:
        enroll_folder(g, people_photos, old, blob_detector)
        rep = rebuild_embeddings(g, new)
        assert rep.missing == [] and rep.written == 9 and rep.without_box == 0
        assert set(g.embedders()) == {embedder_tag(old), embedder_tag(new)}
        P, names = g.prototypes(embedder_tag(new))
        assert names == ["ann", "bob", "cy"] and P.shape == (3, 20 * 20 * 3)
        # rebuilt embeddings are those of the crops at the recorded boxes: same as enrolling afresh
        with Gallery(tmp_path / "fresh.db") as fresh:
            enroll_folder(fresh, people_photos, new, blob_detector)
            np.testing.assert_allclose(fresh.embeddings(embedder_tag(new))[0], g.embeddings(embedder_tag(new))[0],
                                       atol=1e-6)


def test_rebuild_reports_vanished_files_and_writes_nothing(tmp_path, people_photos, blob_detector):
    old, new = RawPixelEmbedder(size=16), RawPixelEmbedder(size=24)
    with Gallery(tmp_path / "g.db") as g:
        enroll_folder(g, people_photos, old, blob_detector)
        (people_photos / "bob" / "bob2.png").unlink()
        shutil.copy(people_photos / "ann" / "ann1.png", people_photos / "cy" / "cy3.png")  # content changed
        rep = rebuild_embeddings(g, new)
        assert rep.written == 0
        assert sorted((p.rsplit("/", 1)[-1], r) for p, r in rep.missing) == [
            ("bob2.png", "file no longer exists"), ("cy3.png", "file content changed since it was enrolled")]
        assert set(g.embedders()) == {embedder_tag(old)}


def _fake_lfw(root, synth):
    """An LFW-shaped tree: 4 people x 3 images (250x250) and a View-1-style pair file."""
    for person in range(4):
        for i in range(1, 4):
            img = np.zeros((250, 250, 3), np.uint8)
            img[95:155, 95:155] = np.kron(synth.face_pattern(person, i)[:30, :30], np.ones((2, 2, 1), np.uint8))
            synth.save_png(root / "images" / f"P{person}" / f"P{person}_{i:04d}.jpg", img)
    same = ["P0 1 2", "P1 1 3", "P2 2 3", "P3 1 2"]
    diff = ["P0 1 P1 1", "P1 2 P2 2", "P2 1 P3 3", "P3 3 P0 3"]
    (root / "pairs.txt").write_text("\n".join(["4", *same, *diff]) + "\n")
    return root


def test_calibrate_on_lfw_format_pairs(tmp_path, synth):
    root = _fake_lfw(tmp_path / "lfw", synth)
    emb = RawPixelEmbedder(size=16)
    cal = calibrate_on_lfw(emb, pairs=str(root / "pairs.txt"), lfw_root=root, target_far=0.25)
    assert (cal.n_genuine, cal.n_impostor) == (4, 4)

    def e(name, i):
        from iznet.data.images import load_image
        from iznet.recognize.pipeline import crops_to_batch

        return emb.embed(crops_to_batch([lfw_crop(load_image(root / "images" / name / f"{name}_{i:04d}.jpg"), 16)]))[0]

    pairs = [("P0", 1, "P0", 2), ("P1", 1, "P1", 3), ("P2", 2, "P2", 3), ("P3", 1, "P3", 2),
             ("P0", 1, "P1", 1), ("P1", 2, "P2", 2), ("P2", 1, "P3", 3), ("P3", 3, "P0", 3)]
    dist = [float(np.linalg.norm(e(a, i) - e(b, j))) for a, i, b, j in pairs]
    want = calibrate_threshold(dist, [True] * 4 + [False] * 4, 0.25)
    assert cal.threshold == pytest.approx(want, rel=1e-5)
    assert cal.far <= 0.25 and cal.tar == 1.0


def test_default_gallery_path(monkeypatch, tmp_path):
    monkeypatch.delenv("IZNET_GALLERY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_gallery_path() == tmp_path / "xdg" / "iznet" / "gallery.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_gallery_path() == tmp_path / "home" / ".local" / "share" / "iznet" / "gallery.db"
    monkeypatch.setenv("IZNET_GALLERY", str(tmp_path / "env.db"))
    assert default_gallery_path() == tmp_path / "env.db"
    assert default_gallery_path(tmp_path / "x.db") == tmp_path / "x.db"


def test_missing_bundled_models_say_what_to_do(monkeypatch, tmp_path):
    from iznet.utils import assets as pl

    monkeypatch.setattr(pl, "DEFAULT_EMBEDDER_FILE", tmp_path / "embedder.pt")
    monkeypatch.setattr(pl, "DEFAULT_DETECTOR_FILE", tmp_path / "detector.pt")
    monkeypatch.setattr(pl, "DEMO_PHOTO", tmp_path / "demo" / "photo.jpg")
    with pytest.raises(ModelError, match="--embedder"):
        pl.default_embedder_spec()
    with pytest.raises(ModelError, match="--detector"):
        pl.default_detector_spec()
    with pytest.raises(IznetError, match="no demo is bundled"):
        pl.demo_assets()
    (tmp_path / "embedder.pt").write_bytes(b"x")
    assert pl.default_embedder_spec() == str(tmp_path / "embedder.pt")


def test_embedders_that_need_fitting_are_refused():
    with pytest.raises(ModelError, match="fitted"):
        load_embedder(spec="pca:8")
    assert load_embedder(spec="raw:12").input_size == 12


def test_crop_records_share_the_enrolment_transaction(tmp_path, people_photos, blob_detector, monkeypatch):
    """A failure at the end of an enrolment leaves neither images nor crop records; removing a person removes
    their crop records (unless someone else has the same picture)."""
    emb = RawPixelEmbedder(size=16)
    files = sorted((people_photos / "ann").glob("*.png"))
    with Gallery(tmp_path / "g.db") as g:
        real = Gallery._store_prototypes

        def crash(self, *a, **kw):
            raise RuntimeError("power cut")

        monkeypatch.setattr(Gallery, "_store_prototypes", crash)
        with pytest.raises(RuntimeError, match="power cut"):
            enroll_files(g, "ann", files, emb, blob_detector)
        monkeypatch.setattr(Gallery, "_store_prototypes", real)
        assert len(g) == 0
        assert all(g.get_meta(SOURCE_META_PREFIX + sha256_file(f)) is None for f in files)
        enroll_files(g, "ann", files, emb, blob_detector)
        enroll_files(g, "twin", files[:1], emb, blob_detector)  # the same picture under another name
        assert all(g.get_meta(SOURCE_META_PREFIX + sha256_file(f)) is not None for f in files)
        g.remove("ann")
        assert g.get_meta(SOURCE_META_PREFIX + sha256_file(files[0])) is not None  # twin still has it
        assert all(g.get_meta(SOURCE_META_PREFIX + sha256_file(f)) is None for f in files[1:])
