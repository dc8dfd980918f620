"""scripts/lfw_view2.py scoring: the 10-fold table of one run and of an ensemble of runs (--fuse)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from iznet.eval.verification import verification_report

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "lfw_view2.py"


def _run_folder(root: Path, dists: list[np.ndarray], sames: list[np.ndarray]) -> Path:
    for k, (d, s) in enumerate(zip(dists, sames)):
        (root / f"fold{k}").mkdir(parents=True)
        np.savez_compressed(root / f"fold{k}" / "test_pairs.npz", dist=d, same=s)
    return root


@pytest.fixture
def script(monkeypatch):
    """Runs the script's main() in this process with the given arguments."""
    spec = importlib.util.spec_from_file_location("lfw_view2_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    def run(*args: str) -> None:
        monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args])
        mod.main()
    return run


def test_fuse_scores_the_rms_distance_and_checks_the_pairs(tmp_path, script, capsys):
    rng = np.random.default_rng(0)
    sames = [rng.random(40) < 0.5 for _ in range(3)]
    runs = [_run_folder(tmp_path / name, [rng.random(40) * 2 + 0.3 * ~s for s in sames], sames)
            for name in ("a", "b")]
    script("--out", str(tmp_path / "ens"), "--folds", "0,1,2", "--fuse", f"{runs[0]},{runs[1]}")
    assert '"accuracy"' in capsys.readouterr().out
    got = json.loads((tmp_path / "ens" / "view2.json").read_text())
    d = [np.concatenate([np.load(run / f"fold{k}" / "test_pairs.npz")["dist"] for k in range(3)]) for run in runs]
    same, fold = np.concatenate(sames), np.repeat(np.arange(3), 40)
    want = verification_report(np.sqrt((d[0] ** 2 + d[1] ** 2) / 2), same, fold, protocol="x").to_dict()
    assert got["accuracy"] == want["accuracy"] and got["auc"] == want["auc"]
    one = verification_report(d[1], same, fold, protocol="x").to_dict()
    assert [m["run"] for m in got["members"]] == [str(x) for x in runs] and got["members"][1]["auc"] == one["auc"]

    # runs over other pairs cannot be fused; a missing fold is named
    other = _run_folder(tmp_path / "c", [rng.random(40) for _ in sames], [~s for s in sames])
    with pytest.raises(SystemExit, match="test pairs differ"):
        script("--out", str(tmp_path / "bad"), "--folds", "0,1,2", "--fuse", f"{runs[0]},{other}")
    with pytest.raises(SystemExit, match="fold3.*train fold 3 first"):
        script("--out", str(tmp_path / "bad"), "--folds", "0,1,2,3", "--fuse", f"{runs[0]},{runs[1]}")
    with pytest.raises(SystemExit, match="two or more runs"):
        script("--out", str(tmp_path / "bad"), "--folds", "0,1,2", "--fuse", f"{runs[0]}")
    with pytest.raises(SystemExit, match="--pack and --data-root"):
        script("--out", str(tmp_path / "bad"), "--folds", "0,1,2")
    assert not (tmp_path / "bad").exists()


def test_stored_distances_keep_a_run_and_fuse_like_its_folder(tmp_path, script, capsys):
    rng = np.random.default_rng(1)
    sames = [rng.random(30) < 0.5 for _ in range(3)]
    runs = [_run_folder(tmp_path / name, [rng.random(30) * 2 + 0.3 * ~s for s in sames], sames)
            for name in ("a", "b")]
    script("--out", str(runs[1]), "--folds", "0,1,2", "--aggregate-only")
    assert "view2_distances.npz" in capsys.readouterr().out
    stored = runs[1] / "view2_distances.npz"
    z = np.load(stored)
    assert z["fold"].tolist() == [0] * 30 + [1] * 30 + [2] * 30
    assert np.array_equal(z["same"], np.concatenate(sames))
    assert np.allclose(z["dist"], np.concatenate([np.load(runs[1] / f"fold{k}" / "test_pairs.npz")["dist"]
                                                  for k in range(3)]))
    assert not list(runs[1].glob("*.tmp.npz"))

    # the stored file stands in for the folder, also for a subset of folds in another order
    for folds in ("0,1,2", "2,0"):
        script("--out", str(tmp_path / "dirs"), "--folds", folds, "--fuse", f"{runs[0]},{runs[1]}")
        script("--out", str(tmp_path / "file"), "--folds", folds, "--fuse", f"{runs[0]},{stored}")
        a, b = (json.loads((tmp_path / n / "view2.json").read_text()) for n in ("dirs", "file"))
        assert a["accuracy"] == b["accuracy"] and a["auc"] == b["auc"] and a["fold_accuracy"] == b["fold_accuracy"]
        assert b["members"][1]["run"] == str(stored) and b["members"][1]["training"][0] == {"fold": int(folds[0])}

    with pytest.raises(SystemExit, match=r"view2_distances.npz holds no pairs of fold\(s\) \[3\]"):
        script("--out", str(tmp_path / "bad"), "--folds", "0,3", "--fuse", f"{stored},{runs[0]}")
    junk = tmp_path / "junk.npz"
    np.savez(junk, dist=np.zeros(3))
    with pytest.raises(SystemExit, match="junk.npz: not a View 2 distances file"):
        script("--out", str(tmp_path / "bad"), "--folds", "0", "--fuse", f"{junk},{runs[0]}")


def test_stored_fills_in_the_folds_trained_elsewhere(tmp_path, script, capsys):
    rng = np.random.default_rng(2)
    sames = [rng.random(20) < 0.5 for _ in range(4)]
    whole = _run_folder(tmp_path / "whole", [rng.random(20) * 2 + 0.3 * ~s for s in sames], sames)
    script("--out", str(whole), "--folds", "0,1,2,3", "--aggregate-only")
    want = json.loads((whole / "view2.json").read_text())
    # the checkout that trained folds 0 and 2 is gone; only their stored distances are left
    script("--out", str(whole), "--folds", "0,2", "--aggregate-only")
    kept = tmp_path / "kept.npz"
    (whole / "view2_distances.npz").rename(kept)
    part = tmp_path / "part"
    for k in (1, 3):
        (part / f"fold{k}").mkdir(parents=True)
        (whole / f"fold{k}" / "test_pairs.npz").rename(part / f"fold{k}" / "test_pairs.npz")

    with pytest.raises(SystemExit, match=r"fold0.*--stored"):
        script("--out", str(part), "--folds", "0,1,2,3", "--aggregate-only")
    script("--out", str(part), "--folds", "0,1,2,3", "--aggregate-only", "--stored", str(kept))
    capsys.readouterr()
    got = json.loads((part / "view2.json").read_text())
    assert got["accuracy"] == want["accuracy"] and got["fold_accuracy"] == want["fold_accuracy"]
    assert np.load(part / "view2_distances.npz")["fold"].tolist() == [0] * 20 + [1] * 20 + [2] * 20 + [3] * 20

    with pytest.raises(SystemExit, match=r"kept.npz holds no pairs of fold\(s\) \[4\]"):
        script("--out", str(part), "--folds", "0,1,2,3,4", "--aggregate-only", "--stored", str(kept))
    with pytest.raises(SystemExit, match="--stored goes with --aggregate-only"):
        script("--out", str(part), "--folds", "0,1", "--stored", str(kept))


def test_sizes_scores_every_subset_like_fuse_and_its_members(tmp_path, script, capsys):
    rng = np.random.default_rng(3)
    sames = [rng.random(40) < 0.5 for _ in range(3)]
    runs = [_run_folder(tmp_path / name, [rng.random(40) * 2 + (0.2 + 0.1 * j) * ~s for s in sames], sames)
            for j, name in enumerate("abcd")]
    arg = ",".join(map(str, runs))
    script("--out", str(tmp_path / "sizes"), "--folds", "0,1,2", "--fuse", arg, "--sizes")
    out = capsys.readouterr().out
    assert "fit: accuracy" in out
    got = json.loads((tmp_path / "sizes" / "ensemble_sizes.json").read_text())
    assert [z["size"] for z in got["sizes"]] == [1, 2, 3, 4] and [z["subsets"] for z in got["sizes"]] == [4, 6, 4, 1]

    # size 1: each run scored alone; the whole set: what --fuse gives; a pair: the rms of two, by hand
    d = [np.concatenate([np.load(r / f"fold{k}" / "test_pairs.npz")["dist"] for k in range(3)]) for r in runs]
    same, fold = np.concatenate(sames), np.repeat(np.arange(3), 40)
    alone = [verification_report(x, same, fold, protocol="x").to_dict()["accuracy"] for x in d]
    assert [e["accuracy"] for e in got["sizes"][0]["ensembles"]] == alone
    assert got["sizes"][0]["accuracy_mean"] == pytest.approx(np.mean(alone))
    assert got["sizes"][0]["accuracy_min"] == min(alone) and got["sizes"][0]["accuracy_max"] == max(alone)
    script("--out", str(tmp_path / "all"), "--folds", "0,1,2", "--fuse", arg)
    capsys.readouterr()
    whole = json.loads((tmp_path / "all" / "view2.json").read_text())
    assert got["sizes"][3]["ensembles"][0]["accuracy"] == whole["accuracy"]
    pair = next(e for e in got["sizes"][1]["ensembles"] if e["runs"] == [str(runs[1]), str(runs[3])])
    want = verification_report(np.sqrt((d[1] ** 2 + d[3] ** 2) / 2), same, fold, protocol="x").to_dict()
    assert pair["accuracy"] == want["accuracy"] and pair["auc"] == want["auc"]

    # the fit A - B/m is the least-squares line of the size means against 1/m
    f = got["fit"]
    means = np.array([z["accuracy_mean"] for z in got["sizes"]])
    slope, intercept = np.polyfit(1 / np.arange(1, 5), means, 1)
    assert f["A"] == pytest.approx(intercept) and f["B"] == pytest.approx(-slope)
    assert np.max(np.abs(f["A"] - f["B"] / np.arange(1, 5) - means)) == pytest.approx(f["max_abs_residual"])

    # each run's gain: acc(S + run) - acc(S) over every subset S of the others, by explicit loops
    def acc(idx):
        return verification_report(np.sqrt(np.mean([d[i] ** 2 for i in idx], axis=0)), same, fold,
                                   protocol="x").to_dict()["accuracy"]
    for i, mb in enumerate(got["members"]):
        assert mb["run"] == str(runs[i]) and mb["accuracy"] == alone[i]
        others = [j for j in range(4) if j != i]
        for m, g in zip((1, 2, 3), mb["gains"]):
            deltas = [acc(sorted(S + (i,))) - acc(S) for S in itertools.combinations(others, m)]
            assert g["added_to"] == m and g["subsets"] == len(deltas)
            assert g["gain_mean"] == pytest.approx(np.mean(deltas)) and g["gain_max"] == pytest.approx(max(deltas))
            assert g["gain_min"] == pytest.approx(min(deltas))
        assert mb["gain_mean"] == pytest.approx(np.mean([g["gain_mean"] for g in mb["gains"]]))
    assert "mean gain (points) of adding it" in out

    with pytest.raises(SystemExit, match="--sizes goes with --fuse"):
        script("--out", str(tmp_path / "bad"), "--folds", "0,1,2", "--aggregate-only", "--sizes")
