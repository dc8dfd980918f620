"""`iznet export` and `iznet label --runtime onnx` on the bundled models and demo photo."""

from __future__ import annotations

import json

import numpy as np
import pytest

from iznet.cli.main import main


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run the iznet command as a user would (IznetError -> exit status 2); (status, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def demo_labels(tmp_path_factory):
    """`label --demo --json` with both runtimes; the ONNX one twice (the second reuses the cache)."""
    import torch
    from typer.testing import CliRunner

    from iznet.cli.app import app
    from iznet.cli.main import _register

    _register()
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # see conftest.one_thread
    cache = tmp_path_factory.mktemp("onnx_cache")
    runs, stamps = {}, []
    try:
        for key, extra in [("torch", ["--runtime", "torch"]), ("onnx", ["--runtime", "onnx", "--onnx-dir", str(cache)]),
                           ("onnx_again", ["--runtime", "onnx", "--onnx-dir", str(cache)])]:
            res = CliRunner().invoke(app, ["label", "--demo", "--json", *extra])
            assert res.exit_code == 0, (extra, res.output, res.exception)
            runs[key] = json.loads(res.stdout.strip().splitlines()[-1])
            stamps.append(sorted((p.name, p.stat().st_mtime_ns) for p in cache.glob("*.onnx")))
    finally:
        torch.set_num_threads(before)
    return runs, stamps, cache


def test_label_onnx_gives_the_same_boxes_and_names_as_torch(demo_labels):
    runs, _, _ = demo_labels
    ref, got = runs["torch"], runs["onnx"]
    assert len(ref["faces"]) >= 6, "the demo photo has six people in front (some tiles show one more behind)"
    assert got["embedder"] == ref["embedder"] and got["threshold"] == ref["threshold"]
    assert [f["name"] for f in got["faces"]] == [f["name"] for f in ref["faces"]]
    np.testing.assert_allclose([f["box"] for f in got["faces"]], [f["box"] for f in ref["faces"]], atol=0.5)
    # aligned crops follow the landmarks to a fraction of a pixel: the points' last 0.05 px (the letterbox's
    # rounding ties) move a distance by about 0.001
    np.testing.assert_allclose([f["distance"] for f in got["faces"]], [f["distance"] for f in ref["faces"]],
                               atol=5e-3)
    np.testing.assert_allclose([f["det_score"] for f in got["faces"]], [f["det_score"] for f in ref["faces"]],
                               atol=1e-3)


def test_label_onnx_exports_once_into_the_cache(demo_labels):
    runs, (after_torch, after_first, after_second), _ = demo_labels
    assert after_torch == []  # the torch runtime writes no ONNX file
    assert sorted(name.split("-")[0] for name, _ in after_first) == ["detector", "embedder"]
    assert after_second == after_first  # reused, not exported again
    assert runs["onnx_again"]["faces"] == runs["onnx"]["faces"]  # from the cache, the torch-free path


def test_label_from_the_cache_never_imports_torch(demo_labels, tmp_path):
    import os
    import subprocess
    import sys

    runs, _, cache = demo_labels
    code = ("import sys\nfrom iznet.cli.main import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
            "    assert not e.code, e.code\nassert 'torch' not in sys.modules, 'torch was imported'\n")
    for runtime in ("auto", "onnx"):
        res = subprocess.run([sys.executable, "-c", code, "label", "--demo", "--json", "--runtime", runtime,
                              "--onnx-dir", str(cache)], capture_output=True, text=True, cwd=tmp_path,
                             env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        assert json.loads(res.stdout.strip().splitlines()[-1])["faces"] == runs["onnx_again"]["faces"]


def test_export_command_writes_a_checked_file(capsys, tmp_path):
    from iznet.export.onnx_runtime import read_onnx_metadata

    code, out, err = cli(capsys, "export", "default-detector", "--format", "onnx", "--out", tmp_path / "d.onnx")
    assert code == 0, err
    assert "onnx.checker: ok" in out and "max abs difference" in out
    md = read_onnx_metadata(tmp_path / "d.onnx")
    assert md["iznet.kind"] == "detector" and md["iznet.input_size"] == "416" and md["iznet.source"] == "detector.pt"


@pytest.mark.parametrize("args, message", [
    (["export", "nope", "--out", "{tmp}/x.onnx"], "no such file or folder"),
    (["export", "{tmp}/missing.pt", "--out", "{tmp}/x.onnx"], "no such file or folder"),
    (["export", "default-embedder", "--format", "tflite", "--out", "{tmp}/x.onnx"], "only onnx"),
    (["export", "default-embedder", "--out", "{tmp}"], "is a folder"),
    (["label", "--demo", "--json", "--runtime", "tensorrt"], "choose one of auto, torch, onnx"),
    (["label", "--demo", "--json", "--runtime", "torch", "-e", "{tmp}/e.onnx"],
     "is an ONNX file: run it with --runtime onnx"),
    (["label", "--demo", "--json", "-e", "{tmp}/e.onnx"], "does not exist"),  # auto: onnxruntime is installed
    (["label", "--demo", "--json", "--runtime", "onnx", "-e", "{tmp}/e.onnx"], "does not exist"),
    (["label", "--demo", "--json", "--runtime", "onnx", "-d", "{tmp}/none.pt"], "neither 'haar'"),
])
def test_bad_inputs_give_clear_errors(capsys, tmp_path, args, message):
    code, out, err = cli(capsys, *[a.format(tmp=tmp_path) for a in args])
    assert code == 2
    assert message in " ".join((out + err).split()), out + err
    assert not (tmp_path / "x.onnx").exists()
