"""View 2 training (one model per fold, resumable, seeded per fold) and `iznet eval view2` scoring."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from iznet.cli.app import app
from iznet.cli.main import _register
from iznet.engine.config import TrainConfig
from iznet.engine.view2 import train_folds
from iznet.errors import DataError
from iznet.eval import view2


@pytest.fixture
def fake_lfw(monkeypatch):
    """lfw:fold=k resolves to a small synthetic set (people of colour patterns) with test pairs."""
    import iznet.engine.data as data
    from test_engine_train import _synthetic as synthetic  # this folder is on sys.path (pytest's rootdir mode)

    asked = []

    def build(spec, **kw):
        asked.append((spec, kw["seed"]))
        return synthetic(seed=kw["seed"])

    monkeypatch.setattr(data, "build_train_data", build)
    return asked


def _cfg(**kw):
    base = dict(model="nn4_small", model_kwargs={"input_size": 64}, mining="batch-hard", p=3, k=4, lr=0.05,
                steps=3, warmup_steps=0, eval_every=0, checkpoint_every=0, bf16=False, seed=7)
    base.update(kw)
    return TrainConfig(**base)


def test_train_folds_seeds_each_fold_skips_done_ones_and_scores(tmp_path, fake_lfw):
    out = tmp_path / "run"
    events = []
    done = train_folds(out, [0, 1], _cfg(), pack="p.pt", data_root="d", device="cpu", on_fold=events.append)
    assert [e["fold"] for e in done] == [0, 1] and fake_lfw == [("lfw:fold=0", 7), ("lfw:fold=1", 8)]
    for k in (0, 1):
        cfg = json.loads((out / f"fold{k}" / "config.json").read_text())["config"]
        assert cfg["seed"] == 7 + k and (out / f"fold{k}" / "test_pairs.npz").is_file()
    again = train_folds(out, [0, 1], _cfg(), pack="p.pt", data_root="d", device="cpu")
    assert all(e["skipped"] for e in again) and len(fake_lfw) == 2  # nothing retrained
    res = view2.aggregate(out, [0, 1])
    z = np.load(res["distances_file"])
    assert sorted(set(z["fold"].tolist())) == [0, 1] and 0.0 <= res["accuracy"] <= 1.0

    _register()
    r = CliRunner().invoke(app, ["eval", "view2", "--out", str(out), "--folds", "0,1"])
    assert r.exit_code == 0, r.output
    saved = json.loads((out / "view2.json").read_text())
    assert saved["accuracy"] == pytest.approx(res["accuracy"]) and "LFW View 2 (2 folds)" in r.output
    r = CliRunner().invoke(app, ["eval", "view2", "--out", str(tmp_path / "ens"), "--folds", "0,1",
                                 "--fuse", f"{out},{out}"])
    assert r.exit_code == 0, r.output  # an ensemble of a run with itself scores like the run
    assert json.loads((tmp_path / "ens" / "view2.json").read_text())["accuracy"] == pytest.approx(res["accuracy"])
    r = CliRunner().invoke(app, ["eval", "view2", "--out", str(out), "--train"])
    assert isinstance(r.exception, DataError) and "--pack and --data-root" in str(r.exception)
