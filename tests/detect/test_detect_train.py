import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from iznet.detect.detector import YoloFaceDetector, load_detector
from iznet.detect.train import DetectorTrainConfig, DetectorTrainer
from iznet.errors import ModelError, TrainingError


def _cfg(**kw):
    base = dict(backbone="light", width=8, image_size=64, epochs=2, batch_size=4, lr=3e-3, workers=0,
                dev_composites=2, max_faces=2)
    base.update(kw)
    return DetectorTrainConfig(**base)


def test_trainer_writes_run_and_resumes(tmp_path, tiny_pack):
    run = tmp_path / "run"
    tr = DetectorTrainer(_cfg(), tiny_pack, run, device="cpu")
    summary = tr.fit()
    assert summary["epochs"] == 2
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and {"loss_loss", "loss_xy", "dev_ap50", "dev_recall30", "images_per_s"} <= set(lines[0])
    assert all(np.isfinite(x["loss_loss"]) for x in lines)
    det = YoloFaceDetector.from_checkpoint(run / "best.pt")
    assert det.model.image_size == 64 and det.config.conf_threshold == 0.3
    found = det.detect(np.zeros((50, 70, 3), np.uint8))
    assert found.image_size == (70, 50)
    # resume: two more epochs continue from epoch 2
    tr2 = DetectorTrainer(_cfg(epochs=4), tiny_pack, run, device="cpu")
    tr2.resume(run / "last.pt")
    assert tr2.epoch == 2 and tr2.step == tr.step
    tr2.fit()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 4


def test_bad_config_and_resume(tmp_path, tiny_pack):
    with pytest.raises(TrainingError, match="unknown backbone"):
        DetectorTrainer(_cfg(backbone="vgg"), tiny_pack, tmp_path)
    with pytest.raises(TrainingError, match="multiple of 32"):
        _cfg(image_size=100).validate()
    tr = DetectorTrainer(_cfg(epochs=1), tiny_pack, tmp_path / "r", device="cpu")
    tr.fit()
    with pytest.raises(TrainingError, match="no training state"):
        tr.resume(tmp_path / "r" / "best.pt")


def test_load_detector_specs(tmp_path):
    assert load_detector("haar").name == "haar"
    with pytest.raises(ModelError, match="yunet:PATH"):
        load_detector("yunet")
    with pytest.raises(ModelError, match="does not exist"):
        load_detector("yunet:/no/such/model.onnx")
    with pytest.raises(ModelError, match="neither"):
        load_detector(tmp_path / "missing.pt")
    torch.save({"format": "iznet-checkpoint-v1", "kind": "embedder"}, tmp_path / "emb.pt")
    with pytest.raises(ModelError, match="expected 'detector'"):
        load_detector(tmp_path / "emb.pt")


def _run(args):
    from iznet.cli.main import _register
    from iznet.cli.app import app

    _register()
    return CliRunner().invoke(app, args)


def test_cli_detect_json_no_face_and_broken_image(tmp_path, tiny_pack):
    DetectorTrainer(_cfg(epochs=1), tiny_pack, tmp_path / "run", device="cpu").fit()
    from PIL import Image

    Image.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(tmp_path / "plain.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    res = _run(["detect", str(tmp_path / "plain.jpg"), str(tmp_path / "broken.jpg"), "--detector",
                str(tmp_path / "run" / "best.pt"), "--conf", "0.99", "--out", str(tmp_path / "drawn")])
    assert res.exit_code == 1
    assert "plain.jpg: no face found" in res.output
    assert "broken.jpg" in res.output and "cannot read" in res.output
    assert (tmp_path / "drawn" / "plain_boxes.jpg").is_file()
    res = _run(["detect", str(tmp_path / "plain.jpg"), "--detector", str(tmp_path / "run" / "best.pt"),
                "--tta", "mirror"])
    assert res.exit_code == 2 and "choose one of off, flip, full" in res.output
    for mode in ("off", "flip"):
        res = _run(["detect", str(tmp_path / "plain.jpg"), "--detector", str(tmp_path / "run" / "best.pt"),
                    "--tta", mode, "--json"])
        assert res.exit_code == 0, res.output
    res = _run(["detect", str(tmp_path / "plain.jpg"), "--json", "--detector", "haar"])
    assert res.exit_code == 0
    doc = json.loads(next(line for line in res.output.splitlines() if line.startswith("{")))
    assert doc["faces"] == [] and doc["width"] == 60 and doc["detector"] == "haar"
    assert "no face found in" in res.output


def test_cli_train_detector_smoke(tmp_path, tiny_pack):
    tiny_pack.save(tmp_path / "p.pt")
    res = _run(["train-detector", "--data", str(tmp_path / "p.pt"), "--out", str(tmp_path / "run"), "--width", "8",
                "--image-size", "64", "--epochs", "1", "--batch-size", "4", "--workers", "0", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "best dev AP@0.5" in res.output and (tmp_path / "run" / "best.pt").is_file()


def test_cli_train_detector_toy_options(tmp_path):
    res = _run(["train-detector", "--toy", "--out", str(tmp_path / "toy"), "--width", "8", "--steps", "3",
                "--assign", "match", "--conf-target", "one", "--crowd", "0.25", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "toy" / "toy.json").read_text())
    assert summary["config"]["assign"] == "match" and summary["config"]["crowd"] == 0.25
    assert summary["config"]["width"] == 8 and 0.0 <= summary["solved_100"] <= 1.0
    # the command trains exactly the model train_toy gives for the same config (what the docs rely on)
    from iznet.detect.toy import ToyConfig, train_toy
    expected, _ = train_toy(ToyConfig(width=8, steps=3, assign="match", conf_target="one", crowd=0.25))
    saved = torch.load(tmp_path / "toy" / "toy_model.pt")
    assert all(torch.equal(saved[k], v) for k, v in expected.state_dict().items())
    res = _run(["train-detector", "--toy", "--out", str(tmp_path / "bad"), "--assign", "nearest"])
    assert res.exit_code != 0 and "--assign" in res.output


def test_init_from_trained_weights(tmp_path, tiny_pack):
    src = DetectorTrainer(_cfg(epochs=1), tiny_pack, tmp_path / "a", device="cpu")
    src.fit()
    best = tmp_path / "a" / "best.pt"
    tr = DetectorTrainer(_cfg(epochs=1, image_size=96), tiny_pack, tmp_path / "b", device="cpu")
    tr.init_from(best)
    want = YoloFaceDetector.from_checkpoint(best).model.state_dict()
    for name, v in tr.model.state_dict().items():
        assert torch.equal(v, want[name]), name
    assert tr.epoch == 0 and tr.step == 0 and tr.meta["init"] == str(best)
    tr.fit()
    assert json.loads((tmp_path / "b" / "config.json").read_text())["init"] == str(best)
    with pytest.raises(TrainingError, match="give --width 8"):
        DetectorTrainer(_cfg(width=16), tiny_pack, tmp_path / "c", device="cpu").init_from(best)
    other = torch.load(best, weights_only=False)
    other["model_kwargs"]["anchors"] = [[1.0, 1.0], [1.0, 1.3]]
    torch.save(other, tmp_path / "other_anchors.pt")
    with pytest.raises(TrainingError, match="anchors"):
        DetectorTrainer(_cfg(), tiny_pack, tmp_path / "d", device="cpu").init_from(tmp_path / "other_anchors.pt")


def test_cli_train_detector_init(tmp_path, tiny_pack):
    tiny_pack.save(tmp_path / "p.pt")
    common = ["train-detector", "--data", str(tmp_path / "p.pt"), "--image-size", "64", "--epochs", "1",
              "--batch-size", "4", "--workers", "0", "--device", "cpu"]
    assert _run(common + ["--out", str(tmp_path / "a"), "--width", "8"]).exit_code == 0
    best = str(tmp_path / "a" / "best.pt")
    res = _run(common + ["--out", str(tmp_path / "b"), "--init", best])  # the width comes from the weights
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "b" / "config.json").read_text())["config"]["width"] == 8
    res = _run(common + ["--out", str(tmp_path / "b"), "--init", best, "--resume"])
    assert res.exit_code != 0 and "not both" in res.output
    res = _run(common + ["--out", str(tmp_path / "c"), "--init", str(tmp_path / "none.pt")])
    assert isinstance(res.exception, ModelError) and "none.pt does not exist" in str(res.exception)


def test_trainer_with_hard_negatives_and_file_errors(tmp_path, tiny_pack):
    from iznet.detect.train import load_hard_negatives

    name = tiny_pack.select_photos("train")[0].name
    good = tmp_path / "hard.json"
    good.write_text(json.dumps({"boxes": {name: [[2, 2, 20, 20]]}, "scores": {name: [0.5]}}))
    tr = DetectorTrainer(_cfg(epochs=1, hard_negatives=str(good), hard_ratio=1.0), tiny_pack, tmp_path / "r",
                         device="cpu")
    n = len(tiny_pack.select_photos("train"))
    assert len(tr.train_set) == 3 * n
    tr.fit()
    assert json.loads((tmp_path / "r" / "config.json").read_text())["config"]["hard_negatives"] == str(good)
    with pytest.raises(TrainingError, match="not found"):
        load_hard_negatives(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"boxes": {name: [[1, 2, 3]]}}))
    with pytest.raises(TrainingError, match="not a hard-negative file"):
        load_hard_negatives(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(TrainingError, match="not a hard-negative file"):
        load_hard_negatives(bad)
    with pytest.raises(TrainingError, match="hard-negative ratio"):
        _cfg(hard_ratio=-1.0).validate()


def test_fine_tune_a_detector_with_landmarks(tmp_path, tiny_pack):
    """The bundled detector has a landmark branch: `--init` from such a detector trains the boxes, keeps the
    branch as it was (the pack has no landmark labels), says so, and resumes as a landmark run."""
    from iznet.detect.detector import save_detector
    from iznet.detect.model import create_detector

    torch.manual_seed(0)
    start = create_detector("light", width=8, image_size=64, landmarks=True)
    save_detector(tmp_path / "lm.pt", start, "light", {"width": 8, "image_size": 64, "landmarks": True,
                                                        "anchors": [list(a) for a in start.anchors]}, {})
    tiny_pack.save(tmp_path / "p.pt")
    common = ["train-detector", "--data", str(tmp_path / "p.pt"), "--image-size", "64", "--epochs", "1",
              "--batch-size", "4", "--workers", "0", "--device", "cpu", "--out", str(tmp_path / "run")]
    res = _run(common + ["--init", str(tmp_path / "lm.pt")])
    assert res.exit_code == 0, res.output
    assert "retrain it with scripts/train_landmarks.py" in res.output
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=False)
    assert best["model_kwargs"]["landmarks"] and "landmarks_stale" in best["meta"]
    before = start.state_dict()
    branch = [k for k in best["state_dict"] if k.startswith("landmark_branch.")]
    # the weights' average (EMA) of a constant is that constant up to rounding
    assert branch and all(torch.allclose(best["state_dict"][k], before[k], rtol=1e-5, atol=1e-7) for k in branch)
    assert not all(torch.allclose(best["state_dict"][k].float(), before[k].float(), rtol=1e-5, atol=1e-7)
                   for k in best["state_dict"] if k not in branch)
    assert load_detector(tmp_path / "run" / "best.pt").detect(np.zeros((64, 64, 3), np.uint8)).landmarks is not None
    res = _run(common[:-6] + ["--epochs", "2", "--workers", "0", "--device", "cpu", "--out", str(tmp_path / "run"),
                              "--resume"])
    assert res.exit_code == 0, res.output
    # a run built without the branch refuses such a start, naming the setting
    with pytest.raises(TrainingError, match="with landmarks"):
        DetectorTrainer(_cfg(), tiny_pack, tmp_path / "x", device="cpu").init_from(tmp_path / "lm.pt")
