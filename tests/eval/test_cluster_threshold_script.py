"""scripts/choose_cluster_threshold.py: the unknown-face threshold it reports beside the chosen cut comes from the
run's calibration.json when one is given. A run's model.pt carries the calibration of its --init (an older
model's threshold), so without the file the report named a stale threshold as the run's own."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "choose_cluster_threshold.py"


def _script():
    spec = importlib.util.spec_from_file_location("choose_cluster_threshold", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def run_files(mini_ident, tmp_path_factory):
    from iznet.data.pack import pack_identity_folder
    from iznet.models import create_model
    from iznet.utils.checkpoint import save_checkpoint

    d = tmp_path_factory.mktemp("cluster_cut")
    pack_identity_folder(mini_ident, d / "dev.pt", 32)
    m = create_model("nn4_small", input_size=32)
    inherited = {"threshold": 0.5, "source": "inherited from --init old.pt"}
    save_checkpoint(d / "model.pt", kind="embedder", model="nn4_small", model_kwargs={"input_size": 32},
                    state_dict=m.state_dict(), meta={"calibration": inherited})
    (d / "calibration.json").write_text(json.dumps({"threshold": 0.9, "target_far": 0.01}))
    return d


def _run(d: Path, *extra: str) -> dict:
    out = d / f"cut{len(extra)}.json"
    assert _script().main(["-e", str(d / "model.pt"), "--pack", str(d / "dev.pt"), "--grid", "0.5:1.0:0.25",
                           "--group-size", "3", "--rounds", "2", "--json", str(out), *extra]) == 0
    return json.loads(out.read_text())


def test_calibration_file_is_the_reported_threshold(run_files):
    got = _run(run_files, "--calibration", str(run_files / "calibration.json"))
    assert got["unknown_face_threshold"]["threshold"] == 0.9
    assert got["unknown_face_threshold"]["source"] == str(run_files / "calibration.json")
    assert [r["threshold"] for r in got["rows"]] == [0.5, 0.75, 1.0]
    # without the file: the model's own, named with where it came from
    own = _run(run_files)["unknown_face_threshold"]
    assert own["threshold"] == 0.5 and "inherited from --init old.pt" in own["source"]


def test_missing_calibration_file_is_a_clear_error(run_files, capsys):
    with pytest.raises(SystemExit) as e:
        _script().main(["-e", str(run_files / "model.pt"), "--pack", str(run_files / "dev.pt"),
                        "--calibration", str(run_files / "none.json")])
    assert e.value.code == 2
    assert "none.json: no such file (stage calibrate writes it)" in capsys.readouterr().err
