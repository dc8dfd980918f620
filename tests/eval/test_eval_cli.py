"""``iznet eval lfw`` and ``iznet eval ident`` on the synthetic mini data."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import iznet.cli.eval_cmds  # noqa: F401  (registers the "eval" sub-app)
from iznet.cli.app import app
from iznet.cli.main import main

runner = CliRunner()


def test_eval_lfw_prints_and_writes_json(mini_lfw, tmp_path):
    out = tmp_path / "r" / "lfw.json"
    res = runner.invoke(app, ["eval", "lfw", "--embedder", "pca:8,size=16", "--data", str(mini_lfw),
                              "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "accuracy     100.00%" in res.output and "AUC" in res.output and "VAL@FAR=0.001" in res.output
    d = json.loads(out.read_text())
    assert d["accuracy"] == 1.0 and d["protocol"] == "lfw-view2"
    assert d["extra"]["command"].startswith("iznet eval lfw --embedder pca:8,size=16 --protocol view2 --data ")


def test_eval_lfw_view1(mini_lfw):
    res = runner.invoke(app, ["eval", "lfw", "-e", "raw:16", "--protocol", "view1", "--data", str(mini_lfw)])
    assert res.exit_code == 0, res.output
    assert "from pairsDevTrain" in res.output


def test_eval_ident(mini_ident, tmp_path):
    out = tmp_path / "ident.json"
    res = runner.invoke(app, ["eval", "ident", "--data", str(mini_ident), "--enroll", "3", "-e", "raw:16",
                              "--open-set-far", "0.01", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "medoid" in res.output and "strangers rejected" in res.output
    d = json.loads(out.read_text())
    assert d["rank1"]["nn"] == 1.0 and d["k"] == 3 and d["open_set"]["target_far"] == 0.01


def test_untrained_network_warns(mini_ident):
    res = runner.invoke(app, ["eval", "ident", "--data", str(mini_ident), "--enroll", "3", "-e", "nn4_small",
                              "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "random weights" in res.output and "untrained" in res.output


def test_errors_are_one_line(mini_ident, capsys):
    with pytest.raises(SystemExit) as e:
        main(["eval", "ident", "-e", "raw", "--enroll", "3"])
    assert e.value.code == 2
    assert "exactly one of --data" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["eval", "ident", "--data", str(mini_ident), "-e", "bogus_net"])
    assert e.value.code == 2
    assert "unknown embedder 'bogus_net'" in capsys.readouterr().err
