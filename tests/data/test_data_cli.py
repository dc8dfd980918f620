"""``iznet pack``: smoke tests on tiny folders, through the real entry point."""

from __future__ import annotations

import pytest

from data_fixtures import make_identity_folder, make_lfw_tiny
from iznet.cli.main import main
from iznet.data.pack import load_pack


def _run(argv):
    try:
        main(argv)
    except SystemExit as e:
        return e.code or 0
    return 0


def test_pack_folder_cli(tmp_path, capsys):
    root = make_identity_folder(tmp_path / "people", {"ann": 2, "ben": 1}, (30, 30))
    (root / "ben" / "broken.jpg").write_text("nope")
    out = tmp_path / "f.pt"
    assert _run(["pack", "folder", str(root), "--size", "24", "--out", str(out), "--crop", "none"]) == 0
    cap = capsys.readouterr()
    assert "packed 3 images of 2 classes at 24x24" in cap.out and "MB" in cap.out
    assert "skipped 1 unreadable file" in cap.out and "broken.jpg" in cap.err
    assert len(load_pack(out)) == 3


def test_pack_lfw_cli(tmp_path, capsys):
    root = make_lfw_tiny(tmp_path / "data" / "lfw")
    out = tmp_path / "lfw.pt"
    assert _run(["pack", "lfw", "--data", str(tmp_path / "data"), "--size", "16", "--out", str(out),
                 "--quality", "70"]) == 0
    assert "packed 14 images of 9 classes at 16x16 (JPEG q70" in capsys.readouterr().out
    assert load_pack(out).quality == 70


@pytest.mark.parametrize("argv,msg", [
    (["pack", "folder", "{tmp}/missing", "--out", "{tmp}/x.pt"], "does not exist"),
    (["pack", "folder", "{tmp}", "--out", "{tmp}/x.pt", "--crop", "wobbly"], "unknown crop"),
    (["pack", "lfw", "--data", "{tmp}", "--out", "{tmp}/x.pt"], "no LFW folder"),
])
def test_pack_cli_errors(tmp_path, capsys, argv, msg):
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and msg in err


def test_cli_quality_default_matches_library():
    from iznet.cli import data_cmds
    from iznet.data.pack import DEFAULT_QUALITY

    assert data_cmds._DEFAULT_QUALITY == DEFAULT_QUALITY
