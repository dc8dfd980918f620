"""``iznet analyze`` and ``iznet report`` end to end on tiny synthetic data (embedder "raw": no training)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import iznet.cli.analyze_cmds  # noqa: F401  (registers the verbs)
from iznet.cli.app import app
from iznet.errors import IznetError


def _folder(root, people=3, per=6, size=24, seed=0):
    """Each person: one random face-sized pattern, every image a slightly noisy copy of it."""
    rng = np.random.default_rng(seed)
    for p in range(people):
        base = rng.integers(0, 256, size=(size, size, 3))
        d = root / f"person_{p}"
        d.mkdir(parents=True)
        for i in range(per):
            img = np.clip(base + rng.normal(scale=12, size=base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(d / f"img_{i:02d}.png")
    return root


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_analyze_end_to_end(tmp_path):
    data = _folder(tmp_path / "faces")
    out = tmp_path / "out"
    res = _run("analyze", "raw:16", "--data", data, "--out", out, "--enroll", 2, "--iterations", 500,
               "--threads", 1, "--dpi", 50)
    assert res.exit_code == 0, res.output + repr(res.exception)
    for name in ("tsne.png", "boxplot.png", "medoid_distances.csv", "medoid_distances.png",
                 "centroid_distances.csv", "centroid_distances.png", "roc.png", "analysis.json", "report.html"):
        assert (out / name).is_file(), name
    a = json.loads((out / "analysis.json").read_text())
    assert a["names"] == ["person_0", "person_1", "person_2"] and a["counts"] == [6, 6, 6]
    # distinct patterns: every probe is recognised and every person is separated
    assert a["identification"]["rank1"] == {"nn": 1.0, "centroid": 1.0, "medoid": 1.0}
    assert a["identification"]["n_probes"] == 3 * 4
    assert a["summary"]["separated"] == 3
    assert a["verification"]["auc"] == 1.0
    # 18 points: perplexity 150 cannot be used, and the report says so
    assert a["extra"]["tsne"]["lowered"] and a["extra"]["tsne"]["perplexity"] == pytest.approx(17 / 3)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5
    assert "lowered from 150" in html and "iznet analyze raw:16" in html and "person_1: separated" in html
    rows = (out / "medoid_distances.csv").read_text().splitlines()
    assert rows[0] == "person,person_0,person_1,person_2" and len(rows) == 4
    table = np.array([[float(x) for x in r.split(",")[1:]] for r in rows[1:]])
    np.testing.assert_allclose(table, a["medoid_table"], atol=1e-6)


def test_analyze_pca_is_fitted_and_says_so(tmp_path):
    data = _folder(tmp_path / "faces", people=2, per=5)
    out = tmp_path / "out"
    res = _run("analyze", "pca:4,size=8", "--data", data, "--out", out, "--enroll", 2, "--iterations", 500,
               "--threads", 1, "--dpi", 50)
    assert res.exit_code == 0, res.output + repr(res.exception)
    a = json.loads((out / "analysis.json").read_text())
    assert any("fitted on the analysed images" in w for w in a["extra"]["warnings"])


def _snapshot_run(root):
    run = root / "run"
    (run / "snapshots").mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = np.repeat(["ann", "bo", "cy"], 8)
    for samples, spread in ((0, 1.0), (5000, 0.1)):
        centres = np.eye(16)[[0, 1, 2]]
        emb = np.repeat(centres, 8, 0) + rng.normal(scale=spread, size=(24, 16))
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        np.savez_compressed(run / "snapshots" / f"samples_{samples:09d}.npz", embeddings=emb.astype(np.float32),
                            labels=np.repeat([0, 1, 2], 8), names=names, samples=samples, step=samples // 64)
    return run


def test_analyze_snapshots(tmp_path):
    run = _snapshot_run(tmp_path)
    out = tmp_path / "seq"
    res = _run("analyze", "--snapshots", run, "--out", out, "--iterations", 500, "--perplexity", 5,
               "--threads", 1, "--dpi", 50)
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert (out / "tsne_sequence.png").is_file()
    frames = json.loads((out / "snapshots.json").read_text())["frames"]
    assert [f["samples"] for f in frames] == [0, 5000]
    assert frames[1]["separated"] == 3 and frames[1]["mean_intra"] < frames[0]["mean_intra"]


def _train_run(root, name):
    run = root / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": {"model": "nn1", "loss": "pair", "mining": "uniform"}}))
    (run / "summary.json").write_text(json.dumps({"steps": 5, "samples": 320, "dev": {"best_acc": 0.75, "auc": 0.8}}))
    return run


def test_report_table_links_each_analysis(tmp_path):
    r1 = _train_run(tmp_path / "runs", "a")
    r2 = _train_run(tmp_path / "runs", "b")
    res = _run("analyze", "raw:16", "--data", _folder(tmp_path / "faces"), "--out", r1 / "analysis",
               "--enroll", 2, "--iterations", 500, "--threads", 1, "--dpi", 50)
    assert res.exit_code == 0, res.output + repr(res.exception)
    md = tmp_path / "report.md"
    res = _run("report", r1, r2, "--out", md)
    assert res.exit_code == 0, res.output + repr(res.exception)
    text = md.read_text()
    lines = [line for line in text.splitlines() if line.startswith("| a ") or line.startswith("| b ")]
    assert len(lines) == 2
    assert "[report](runs/a/analysis/report.html)" in lines[0] and "100.0%" in lines[0] and "3/3" in lines[0]
    assert "nn1" in lines[1] and "75.0%" in lines[1] and "report" not in lines[1]
    assert "| 220 px | pair | uniform pairs |" in lines[1]  # a pair run names no miner
    res = _run("report", r1, r2, "--out", tmp_path / "report.html")
    assert res.exit_code == 0 and "<table>" in (tmp_path / "report.html").read_text()


def test_bad_inputs_give_clear_errors(tmp_path):
    from iznet.utils.checkpoint import save_checkpoint

    data = _folder(tmp_path / "faces", people=2, per=3)
    res = _run("analyze", "raw", "--data", tmp_path / "nope", "--out", tmp_path / "o")
    assert isinstance(res.exception, IznetError) and "does not exist" in str(res.exception)
    det = save_checkpoint(tmp_path / "det.pt", kind="detector", model="yolo", model_kwargs={}, state_dict={})
    res = _run("analyze", det, "--data", data, "--out", tmp_path / "o")
    assert isinstance(res.exception, IznetError) and "detector" in str(res.exception)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    res = _run("analyze", tmp_path / "junk.pt", "--data", data, "--out", tmp_path / "o")
    assert isinstance(res.exception, IznetError) and "junk.pt" in str(res.exception)
    res = _run("analyze", "raw", "--out", tmp_path / "o")
    assert isinstance(res.exception, IznetError) and "--data" in str(res.exception)
    (tmp_path / "not_a_run").mkdir()
    res = _run("report", tmp_path / "not_a_run")
    assert isinstance(res.exception, IznetError) and "summary.json" in str(res.exception)
    res = _run("analyze", "--snapshots", tmp_path / "not_a_run", "--out", tmp_path / "o")
    assert isinstance(res.exception, IznetError) and "snapshot" in str(res.exception)
    res = _run("analyze", tmp_path / "not_a_run", "--data", data, "--out", tmp_path / "o")
    assert isinstance(res.exception, IznetError) and "model.pt" in str(res.exception)


def test_group_split_holds_out_the_last_fifth_of_each_person():
    from iznet.engine.data import group_split

    names = ["b"] * 15 + ["a"] * 5 + ["c"] * 2 + ["d"] * 3  # c: too few to hold any out
    train, held = group_split(names)
    # a (sorted first): its last 2 of 5 (at least two, for a same-person pair); b: its last 3 of 15; d: 1 of 3
    assert held.tolist() == [18, 19, 12, 13, 14, 24]
    assert sorted(train.tolist() + held.tolist()) == list(range(25))
    assert set(train.tolist()) >= {20, 21}


def test_analyze_part_picks_the_images_training_held_out(tmp_path):
    data = _folder(tmp_path / "faces", people=3, per=10)
    for part, per in (("held-out", 2), ("train", 8)):
        out = tmp_path / part
        res = _run("analyze", "raw:16", "--data", data, "--out", out, "--part", part, "--enroll", 1,
                   "--iterations", 500, "--threads", 1, "--dpi", 40)
        assert res.exit_code == 0, res.output + repr(res.exception)
        a = json.loads((out / "analysis.json").read_text())
        assert a["counts"] == [per] * 3
        assert f"{part} part" in (out / "report.html").read_text()
    res = _run("analyze", "raw:16", "--data", data, "--out", tmp_path / "x", "--part", "test")
    assert res.exit_code != 0 and "--part 'test'" in res.output + str(res.exception)
