"""``iznet serve``: options reach the app, loopback by default, a warning when binding elsewhere."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from iznet.cli.app import app
from iznet.cli.main import COMMAND_MODULES, _register
from iznet.cli.serve_cmds import is_loopback

_register()


@pytest.fixture
def fake_run(monkeypatch):
    """Replace uvicorn.run: record what it was asked to serve instead of serving."""
    import uvicorn

    calls = []

    def run(application, host, port, **kw):
        svc = application.state.service
        calls.append({"host": host, "port": port, "settings": svc.settings, "tag": svc.pipeline.tag,
                      "detector": svc.detector_name, "gallery": svc.gallery.path})
        svc.close()

    monkeypatch.setattr(uvicorn, "run", run)
    return calls


def invoke(*args):
    return CliRunner().invoke(app, ["serve", *[str(a) for a in args]])


def test_serve_is_registered():
    assert "iznet.cli.serve_cmds" in COMMAND_MODULES
    r = invoke("--help")
    assert r.exit_code == 0 and "--host" in r.output and "loopback" in r.output


def test_serve_defaults_to_loopback_and_passes_options(tmp_path, fake_run):
    db = tmp_path / "g.db"
    r = invoke("--gallery", db, "--embedder", "raw:16", "--detector", "haar", "--port", 8123,
               "--max-upload-mb", 2, "--max-megapixels", 5, "--threshold", "0.4")
    assert r.exit_code == 0, r.output
    (call,) = fake_run
    assert call["host"] == "127.0.0.1" and call["port"] == 8123
    assert call["gallery"] == db and call["detector"] == "haar" and call["tag"].startswith("raw(size=16")
    s = call["settings"]
    assert (s.max_upload_bytes, s.max_pixels, s.threshold) == (2 * 2**20, 5_000_000, 0.4)
    assert "warning" not in r.output and "http://127.0.0.1:8123/" in r.output


def test_serve_warns_when_not_on_loopback(tmp_path, fake_run):
    r = invoke("--host", "0.0.0.0", "--gallery", tmp_path / "g.db", "--embedder", "raw:16", "--detector", "haar")
    assert r.exit_code == 0, r.output
    assert "warning: listening on 0.0.0.0" in r.output and "--token" in r.output
    assert fake_run[0]["host"] == "0.0.0.0" and fake_run[0]["settings"].token is None
    r = invoke("--host", "0.0.0.0", "--gallery", tmp_path / "g.db", "--embedder", "raw:16", "--detector", "haar",
               "--token", "s3cret")
    assert r.exit_code == 0 and "warning" not in r.output and "need the token" in r.output
    assert fake_run[1]["settings"].token == "s3cret"


def test_serve_bad_model_spec_is_a_clear_error(tmp_path, fake_run):
    from iznet.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["serve", "--gallery", str(tmp_path / "g.db"), "--embedder", "nope/missing.pt", "--detector", "haar"])
    assert e.value.code == 2 and fake_run == []


@pytest.mark.parametrize("host, expected", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("192.168.1.10", False), ("::", False), ("example.org", False),
])
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected
