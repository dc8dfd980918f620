"""Distillation from a teacher's descriptors (iznet.engine.distill): the loss against a loop, its gradient in
float64, the teacher file's matching by path, and the trainer's use of it (exact resume, clear errors)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iznet.engine.distill import (TEACHER_FORMAT, feature_distill_loss, load_teacher, procrustes_map,
                                  similarity_distill_loss, teacher_targets)
from iznet.engine.train import Trainer
from iznet.errors import DataError, TrainingError

from test_engine_train import _cfg, _synthetic  # pytest puts this folder on sys.path (no __init__.py)


def test_loss_matches_a_loop_over_pairs():
    g = torch.Generator().manual_seed(0)
    emb, tgt = torch.randn(7, 5, generator=g), torch.nn.functional.normalize(torch.randn(7, 4, generator=g), dim=1)
    e = emb / emb.norm(dim=1, keepdim=True)
    total, n = 0.0, 0
    for i in range(7):
        for j in range(7):
            if i != j:
                total += (float(e[i] @ e[j]) - float(tgt[i] @ tgt[j])) ** 2
                n += 1
    assert similarity_distill_loss(emb, tgt).item() == pytest.approx(total / n, rel=1e-5)
    assert similarity_distill_loss(tgt, tgt).item() == pytest.approx(0.0, abs=1e-7)  # the teacher's own space
    assert similarity_distill_loss(emb[:1], tgt[:1]).item() == 0.0


def test_loss_gradient_in_float64():
    g = torch.Generator().manual_seed(1)
    emb = torch.randn(5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    tgt = torch.nn.functional.normalize(torch.randn(5, 3, generator=g, dtype=torch.float64), dim=1)
    assert torch.autograd.gradcheck(lambda x: similarity_distill_loss(x, tgt), (emb,))


def test_targets_are_centred_on_the_training_images_and_unit():
    d = torch.tensor([[1.0, 1.0], [3.0, 1.0], [100.0, -50.0], [2.0, 2.0]])
    t = teacher_targets(d, np.array([0, 1, 3]))  # the mean of rows 0, 1, 3 is (2, 4/3); row 2 is not training
    expect = d - torch.tensor([2.0, 4.0 / 3.0])
    expect = expect / expect.norm(dim=1, keepdim=True)
    assert torch.allclose(t, expect, atol=1e-6)
    with pytest.raises(DataError, match="no training image"):
        teacher_targets(d, np.array([], dtype=np.int64))


def _write_teacher(path, paths, desc):
    torch.save({"format": TEACHER_FORMAT, "paths": list(paths), "descriptors": torch.as_tensor(desc).half(),
                "meta": {}}, path)


def test_teacher_file_is_matched_by_path(tmp_path):
    f = tmp_path / "t.pt"
    desc = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    _write_teacher(f, ["a/1.jpg", "a/2.jpg", "b/1.jpg", "c/1.jpg"], desc)
    got = load_teacher(f, ["c/1.jpg", "a/1.jpg"])
    assert torch.equal(got, desc[[3, 0]])
    with pytest.raises(DataError, match="no descriptor of 1 of the 2 training images \\(first: d/9.jpg\\)"):
        load_teacher(f, ["a/1.jpg", "d/9.jpg"])
    torch.save({"format": "other"}, tmp_path / "bad.pt")
    with pytest.raises(DataError, match="is not a teacher file"):
        load_teacher(tmp_path / "bad.pt", ["a/1.jpg"])
    with pytest.raises(DataError, match="does not exist"):
        load_teacher(tmp_path / "none.pt", ["a/1.jpg"])


def _data_with_teacher(tmp_path, dim=8):
    data = _synthetic()
    data.paths = [f"p{i // 8}/{i}.jpg" for i in range(len(data.images))]
    g = torch.Generator().manual_seed(3)
    person = torch.randn(6, dim, generator=g) * 3
    desc = person[torch.arange(len(data.images)) // 8] + torch.randn(len(data.images), dim, generator=g)
    f = tmp_path / "teacher.pt"
    _write_teacher(f, data.paths[::-1], desc.flip(0))  # another order: matched by path
    return data, f, desc


def _stopped_and_resumed(cfg: dict, data, run_dir) -> Trainer:
    """The same run stopped after 3 steps and resumed from its ``last.pt`` to the end."""
    Trainer(_cfg(**cfg), data, run_dir, device="cpu").fit(stop_after=3)
    resumed = Trainer(_cfg(**cfg), data, run_dir, device="cpu")
    resumed.resume(run_dir / "last.pt")
    resumed.fit()
    return resumed


def test_trainer_adds_the_term_and_resumes_exactly(tmp_path):
    data, f, desc = _data_with_teacher(tmp_path)
    cfg = dict(distill=str(f), distill_weight=2.0, id_weight=0.5, seed=1)
    full = Trainer(_cfg(**cfg), data, tmp_path / "full", device="cpu")
    assert torch.allclose(full._teacher, teacher_targets(desc.half().float(), data.train.indices), atol=1e-6)
    events = []
    full.on_event = events.append
    full.fit()
    steps = [e for e in events if e.get("event") == "step"]
    assert steps and all(np.isfinite(e["distill"]) and e["distill"] > 0 for e in steps)
    resumed = _stopped_and_resumed(cfg, data, tmp_path / "part")
    for k, v in full.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[k], v), k
    plain = Trainer(_cfg(id_weight=0.5, seed=1), data, tmp_path / "plain", device="cpu")
    plain.fit()
    assert any(not torch.equal(plain.model.state_dict()[k], v) for k, v in full.model.state_dict().items())


def test_the_loss_can_be_fitted():
    """A tiny overfit: a linear student of random inputs learns a teacher's similarities almost exactly."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(24, 32, generator=g)  # more input dimensions than points: an exact fit exists
    tgt = teacher_targets(torch.randn(24, 8, generator=g) + 2.0, np.arange(24))
    student = torch.nn.Linear(32, 8)
    opt = torch.optim.Adam(student.parameters(), lr=0.05)
    before = float(similarity_distill_loss(student(x), tgt))
    for _ in range(300):
        opt.zero_grad()
        loss = similarity_distill_loss(student(x), tgt)
        loss.backward()
        opt.step()
    assert float(similarity_distill_loss(student(x), tgt)) < 0.05 * before


def test_trainer_errors_name_the_problem(tmp_path):
    data, f, _ = _data_with_teacher(tmp_path)
    no_paths = _synthetic()
    with pytest.raises(TrainingError, match="train on a pack file"):
        Trainer(_cfg(distill=str(f)), no_paths, tmp_path / "a", device="cpu")
    other = tmp_path / "other.pt"
    _write_teacher(other, ["x/1.jpg"], torch.zeros(1, 8))
    with pytest.raises(TrainingError, match="--distill: .*no descriptor"):
        Trainer(_cfg(distill=str(other)), data, tmp_path / "b", device="cpu")
    with pytest.raises(TrainingError, match="distill_weight"):
        _cfg(distill=str(f), distill_weight=0.0).validate()
    with pytest.raises(TrainingError, match="--rehearse"):
        _cfg(distill=str(f), rehearse="x.pt").validate()


def test_feature_loss_matches_a_loop_and_its_gradient_in_float64():
    g = torch.Generator().manual_seed(5)
    emb = torch.randn(6, 4, generator=g, dtype=torch.float64)
    tgt = torch.nn.functional.normalize(torch.randn(6, 3, generator=g, dtype=torch.float64), dim=1)
    w = torch.randn(3, 4, generator=g, dtype=torch.float64)
    total = 0.0
    for i in range(6):
        e = emb[i] / emb[i].norm()
        p = w @ e
        total += 1.0 - float(p @ tgt[i]) / float(p.norm() * tgt[i].norm())
    assert feature_distill_loss(emb, tgt, w).item() == pytest.approx(total / 6, rel=1e-9)
    assert torch.autograd.gradcheck(lambda x, m: feature_distill_loss(x, tgt, m),
                                    (emb.clone().requires_grad_(), w.clone().requires_grad_()))


def test_procrustes_finds_a_hidden_rotation():
    g = torch.Generator().manual_seed(6)
    tgt = torch.nn.functional.normalize(torch.randn(50, 5, generator=g, dtype=torch.float64), dim=1)
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g, dtype=torch.float64))
    emb = 3.0 * tgt @ q.t()  # the teacher's space turned by q and scaled: R must undo the turn
    r = procrustes_map(emb, tgt)
    assert torch.allclose(r.double(), q, atol=1e-5)
    assert feature_distill_loss(emb.float(), tgt.float(), r.t()).item() == pytest.approx(0.0, abs=1e-6)
    # a loop over random orthogonal maps never does better than R
    best = float(feature_distill_loss(emb.float(), tgt.float(), r.t()))
    for s in range(20):
        o, _ = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(100 + s)))
        assert float(feature_distill_loss(emb.float(), tgt.float(), o.t())) >= best - 1e-6


def test_feature_mode_starts_at_the_fit_and_resumes_exactly(tmp_path):
    data, f, desc = _data_with_teacher(tmp_path)
    cfg = dict(distill=str(f), distill_weight=2.0, distill_mode="feature", id_weight=0.5, seed=1)
    full = Trainer(_cfg(**cfg), data, tmp_path / "full", device="cpu")
    events = []
    full.on_event = events.append
    full.fit()
    fitted = [e for e in events if e.get("event") == "distill_map"]
    assert len(fitted) == 1 and fitted[0]["images"] == len(data.train.indices) and -1 <= fitted[0]["cos_start"] <= 1
    steps = [e for e in events if e.get("event") == "step"]
    assert steps and all(0 < e["distill"] < 2 for e in steps)
    resumed = _stopped_and_resumed(cfg, data, tmp_path / "part")
    for k, v in full.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[k], v), k
    assert torch.equal(resumed.distill_map.weight, full.distill_map.weight)
    similar = Trainer(_cfg(**dict(cfg, distill_mode="similarity")), data, tmp_path / "sim", device="cpu")
    with pytest.raises(TrainingError, match="--distill-mode feature"):
        similar.resume(tmp_path / "part" / "last.pt")
    with pytest.raises(TrainingError, match="unknown distill mode 'both'"):
        _cfg(distill=str(f), distill_mode="both").validate()
    with pytest.raises(TrainingError, match="--distill-mode feature needs a teacher file"):
        _cfg(distill_mode="feature").validate()


def test_feature_loss_can_be_fitted():
    """A tiny overfit: a linear student and its map learn each image's teacher direction almost exactly."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(24, 32, generator=g)
    tgt = teacher_targets(torch.randn(24, 8, generator=g) + 2.0, np.arange(24))
    student, m = torch.nn.Linear(32, 8), torch.nn.Linear(8, 8, bias=False)
    opt = torch.optim.Adam(list(student.parameters()) + list(m.parameters()), lr=0.05)
    before = float(feature_distill_loss(student(x), tgt, m.weight))
    for _ in range(300):
        opt.zero_grad()
        loss = feature_distill_loss(student(x), tgt, m.weight)
        loss.backward()
        opt.step()
    assert float(feature_distill_loss(student(x), tgt, m.weight)) < 0.05 * before
