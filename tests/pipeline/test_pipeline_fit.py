"""iznet fit: faces cut, a fine-tune, the better model kept on held-out faces, everyone enrolled, resumable."""

from __future__ import annotations

import json

import pytest
import torch

from pathlib import Path

from iznet.errors import DataError, GalleryError
from iznet.loading import gallery_embedder
from iznet.fit import Candidate, fit_group, keep_fine_tuned
from iznet.recognize.gallery import Gallery


@pytest.fixture
def base_ckpt(tmp_path):
    from iznet.models import create_model
    from iznet.utils.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = create_model("nn4_small", input_size=64)
    return str(save_checkpoint(tmp_path / "base.pt", kind="embedder", model="nn4_small",
                               model_kwargs={"input_size": 64}, state_dict=model.state_dict(),
                               meta={"input_size": 64, "tta": False}))


def _group(tmp_path, synth, people=4, per=6):
    root = tmp_path / "group"
    for person in range(people):
        for v in range(1, per + 1):
            img, _ = synth.make_photo([(person, v, 20 + 7 * v, 30 + 5 * v)], size=(160, 200))
            synth.save_png(root / f"p{person}" / f"{v}.png", img)
    return root


def test_fit_enrols_everyone_with_the_kept_model_and_resumes(tmp_path, synth, base_ckpt):
    photos = _group(tmp_path, synth)
    out = tmp_path / "fit"
    det = synth.BlobDetector()
    rep = fit_group(photos, out, init=base_ckpt, detector=det, steps=4, far=0.25, stranger_far=0.5)
    assert (rep.people, rep.photos, rep.faces, rep.train_faces, rep.held_out_faces) == (4, 24, 24, 16, 8)
    assert [c.name for c in rep.candidates] == ["base", "fine-tuned"]
    best = rep.candidates[1] if keep_fine_tuned(*rep.candidates, rep.held_out_faces) else rep.candidates[0]
    assert rep.chosen == best.name and rep.threshold == best.threshold
    assert all(c.wrong <= 0.25 + 1e-9 and c.strangers_named <= 0.5 + 1e-9 for c in rep.candidates)
    assert (out / "run" / "best.pt").is_file() and rep.enrolled == 24 and not rep.skipped
    assert len(rep.warnings) == 1 and "2.0 held-out faces a person" in rep.warnings[0]
    with Gallery(out / "gallery.db", create=False) as g:
        assert sorted(p.name for p in g.people()) == ["p0", "p1", "p2", "p3"]
        (tag,) = g.embedders()
        assert g.threshold(tag) == pytest.approx(rep.threshold)
    assert gallery_embedder(out / "gallery.db") == str(Path(rep.embedder).resolve())  # recorded at enrolment
    saved = json.loads((out / "fit.json").read_text())
    assert saved["chosen"] == rep.chosen and len(saved["candidates"]) == 2

    calls = det.calls
    again = fit_group(photos, out, init=base_ckpt, detector=det, steps=4, far=0.25, stranger_far=0.5)
    assert again.candidates == rep.candidates and again.enrolled == 24  # no retraining; all duplicates
    assert det.calls - calls == 24  # the faces were reused, only the enrolment detected again


def _base_names_more(name, spec, embedder, data, far, stranger_far):
    """A stand-in for the held-out comparison under which the base model wins (threshold 0.3 for both)."""
    right = 0.5 if name == "base" else 0.4
    return Candidate(name, spec, 0.3, right, 0.0, 1 - right, 0.0)


def test_fit_keeps_the_base_when_fine_tuning_does_not_pay(tmp_path, synth, base_ckpt, monkeypatch):
    import iznet.fit as fit

    monkeypatch.setattr(fit, "_measure", _base_names_more)
    rep = fit_group(_group(tmp_path, synth), tmp_path / "fit", init=base_ckpt, detector=synth.BlobDetector(),
                    steps=2)
    assert rep.chosen == "base" and rep.embedder == base_ckpt and rep.threshold == 0.3 and rep.rule == "held-out"


def test_a_kept_shipped_base_keeps_its_own_rule(tmp_path, synth, base_ckpt, monkeypatch):
    import iznet.fit as fit
    from iznet.utils.checkpoint import load_checkpoint, save_checkpoint

    ck = load_checkpoint(base_ckpt, kind="embedder")
    meta = {**ck["meta"], "calibration": {"threshold": 0.8, "gallery_far": 0.1, "margin": 0.1}}
    shipped = str(save_checkpoint(tmp_path / "shipped.pt", kind="embedder", model=ck["model"],
                                  model_kwargs=ck["model_kwargs"], state_dict=ck["state_dict"], meta=meta))

    monkeypatch.setattr(fit, "_measure", _base_names_more)
    rep = fit_group(_group(tmp_path, synth), tmp_path / "fit", init=shipped, detector=synth.BlobDetector(), steps=2)
    assert rep.chosen == "base" and rep.rule == "shipped" and rep.threshold != rep.threshold  # NaN: none stored
    with Gallery(tmp_path / "fit" / "gallery.db", create=False) as g:
        (tag,) = g.embedders()
        assert g.threshold(tag) is None


@pytest.mark.parametrize("people, per", [(1, 6), (3, 3)])
def test_fit_needs_two_people_with_four_photos(tmp_path, synth, base_ckpt, people, per):
    with pytest.raises(DataError, match="two or more people with four or more photos"):
        fit_group(_group(tmp_path, synth, people=people, per=per), tmp_path / "fit", init=base_ckpt,
                  detector=synth.BlobDetector(), steps=2)


def test_label_uses_the_embedder_a_gallery_was_enrolled_with(tmp_path, synth, base_ckpt, fake_detector_spec):
    from typer.testing import CliRunner

    from iznet.cli.app import app
    from iznet.cli.main import _register

    _register()
    photos = _group(tmp_path, synth, people=2, per=4)
    db = tmp_path / "g.db"
    r = CliRunner().invoke(app, ["enroll", "--from-folder", str(photos), "-g", str(db), "-e", base_ckpt,
                                 "-d", "blobs"])
    assert r.exit_code == 0, r.output
    assert gallery_embedder(db) == str(Path(base_ckpt).resolve())
    photo = photos / "p1" / "2.png"
    r = CliRunner().invoke(app, ["label", str(photo), "-g", str(db), "-d", "blobs", "--json", "-t", "none"])
    assert r.exit_code == 0, r.output  # no -e: the recorded checkpoint, not the bundled embedder
    assert "the one this gallery was enrolled with" in r.output and '"name": "p1"' in r.output
    r = CliRunner().invoke(app, ["label", str(photo), "-g", str(db), "-d", "blobs", "-e", "raw:16"])
    assert isinstance(r.exception, GalleryError) and f"--embedder {Path(base_ckpt).resolve()}" in str(r.exception)


def _cand(name, right):
    return Candidate(name, name, 0.5, right, 0.0, 1 - right, 0.0)


@pytest.mark.parametrize("base, tuned, n, keep", [
    (0.448, 0.458, 94, False),  # glint24 with v8: one face more is noise
    (0.340, 0.638, 94, True),  # glint24 with v6: clearly more
    (0.50, 0.50, 40, False),  # a tie keeps the base
    (0.60, 0.40, 40, False),
    (0.0, 0.0, 10, False),  # no variance, no difference
    (0.0, 0.1, 10, False),  # one face of ten: se = 0.095, 2 se = 0.19
    (0.0, 0.3, 10, True),
])
def test_the_fine_tune_is_kept_only_when_it_names_clearly_more(base, tuned, n, keep):
    import math

    assert keep_fine_tuned(_cand("base", base), _cand("fine-tuned", tuned), n) is keep
    se = math.sqrt((base * (1 - base) + tuned * (1 - tuned)) / n)  # the rule written out
    assert keep == (tuned - base >= 2 * se and (tuned - base) * n >= 1 - 1e-9)
