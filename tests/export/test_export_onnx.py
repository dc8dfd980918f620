"""ONNX export and the onnxruntime embedder/detector: same numbers as PyTorch, self-describing files, cache."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from iznet.errors import ModelError
from iznet.export.onnx_export import FORMAT, export_model
from iznet.export.onnx_runtime import OnnxDetector, OnnxEmbedder, cache_name, cached_export, read_onnx_metadata
from iznet.loading import load_detector, load_embedder

EMB_SIZE, DET_SIZE = 64, 128  # the input sizes of the random checkpoints in conftest.py


def _crops(n: int, side: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, side, side), dtype=np.uint8))


@pytest.mark.parametrize("which", ["embedder_ckpt", "embedder_tta_ckpt", "embedder_gdc_ckpt", "embedder_zoom_ckpt"])
def test_embedder_onnx_matches_torch(which, request, tmp_path):
    from iznet.recognize.embedder import load_embedder
    from iznet.recognize.pipeline import embedder_tag

    ckpt = request.getfixturevalue(which)
    report = export_model(ckpt, tmp_path / "e.onnx")
    assert report.kind == "embedder" and report.input_size == EMB_SIZE
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-4

    torch_emb = load_embedder(str(ckpt), device="cpu")
    onnx_emb = OnnxEmbedder(tmp_path / "e.onnx", threads=1)
    # 80 px crops: both resize with the same preprocess; batch_size 2 over 5 crops gives batches 2, 2, 1
    crops = _crops(5, 80)
    want = torch_emb.embed(crops, batch_size=2)
    got = onnx_emb.embed(crops, batch_size=2)
    assert got.shape == want.shape == (5, 128)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # the gallery tag is the PyTorch embedder's, so galleries enrolled with the checkpoint still match
    assert embedder_tag(onnx_emb) == embedder_tag(torch_emb)
    assert onnx_emb.tta == torch_emb.tta and onnx_emb.dim == 128 and onnx_emb.trained
    assert onnx_emb.zooms == torch_emb.zooms == ((0.88, 0.75) if which == "embedder_zoom_ckpt" else ())


def test_embedder_metadata_describes_the_file(embedder_tta_ckpt, tmp_path):
    export_model(embedder_tta_ckpt, tmp_path / "e.onnx", verify=False)
    md = read_onnx_metadata(tmp_path / "e.onnx")
    assert md["iznet.format"] == FORMAT and md["iznet.kind"] == "embedder"
    assert md["iznet.input_size"] == str(EMB_SIZE) and md["iznet.embedding_dim"] == "128"
    assert md["iznet.tta"] == "true" and md["iznet.source"] == "emb_tta.pt"
    assert len(md["iznet.source_sha256"]) == 64 and md["iznet.tag"].startswith("nn4_small@")


def test_the_shipped_unknown_face_rule_travels_with_the_onnx_file(tmp_path):
    from iznet.utils.checkpoint import load_checkpoint, save_checkpoint
    from iznet.models import create_model

    cal = {"threshold": 0.81, "gallery_far": 0.05, "margin": 0.06, "source": "development pairs",
           "spread_rule": {"a": 1.5, "b": 3.0, "c": -1.0, "prior": 0.8, "n0": 5.0, "cap": 1.0}}
    m = create_model("nn4_small", input_size=EMB_SIZE)
    ck = save_checkpoint(tmp_path / "cal.pt", kind="embedder", model="nn4_small", model_kwargs={"input_size": EMB_SIZE},
                         state_dict=m.state_dict(), meta={"calibration": cal})
    assert load_checkpoint(ck)["meta"]["calibration"] == cal
    export_model(ck, tmp_path / "cal.onnx", verify=False)
    emb = OnnxEmbedder(tmp_path / "cal.onnx", threads=1)
    assert emb.calibrated_threshold == 0.81 and emb.calibration == {k: cal[k] for k in ("threshold", "gallery_far",
                                                                                        "margin", "spread_rule")}


def test_detector_onnx_matches_torch(detector_ckpt, tmp_path):
    from iznet.detect.detector import YoloFaceDetector

    report = export_model(detector_ckpt, tmp_path / "d.onnx")
    assert report.kind == "detector" and report.input_size == DET_SIZE and report.max_abs_diff <= report.tolerance
    torch_det = YoloFaceDetector.from_checkpoint(detector_ckpt, device="cpu")
    onnx_det = OnnxDetector(tmp_path / "d.onnx", threads=1)
    assert onnx_det.config == torch_det.config and onnx_det.image_size == DET_SIZE

    x = torch.rand(3, 3, DET_SIZE, DET_SIZE, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = torch_det.model(x).numpy()
    got = onnx_det.forward(x.numpy())
    assert got.shape == want.shape == (3, DET_SIZE // 32, DET_SIZE // 32, 2, 5)
    np.testing.assert_allclose(got, want, atol=1e-4 * max(1.0, np.abs(want).max()), rtol=0)

    # whole detection (letterbox, decode, NMS, un-letterbox) on a non-square photo: the same boxes
    photo = np.random.default_rng(4).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    (tb, ts), (ob, os_) = torch_det.detect(photo).numpy(), onnx_det.detect(photo).numpy()
    assert len(tb) > 0, "the random detector should find boxes at threshold 0.2"
    assert len(ob) == len(tb)
    np.testing.assert_allclose(ob, tb, atol=0.5)
    np.testing.assert_allclose(os_, ts, atol=1e-4)

    # the side is dynamic (test-time augmentation runs 1.3x the trained side): same raw output at 2 more cells
    assert report.metadata["iznet.dynamic_side"] == "true" and onnx_det.tta == torch_det.tta
    big = torch.rand(1, 3, DET_SIZE + 64, DET_SIZE + 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = torch_det.model(big).numpy()
    np.testing.assert_allclose(onnx_det.forward(big.numpy()), want, atol=1e-4 * max(1.0, np.abs(want).max()), rtol=0)


@pytest.mark.parametrize("refiner", [False, True])
def test_detector_with_landmarks_exports_them(tmp_path, refiner, caplog):
    from iznet.detect.detector import YoloFaceDetector, save_detector
    from iznet.detect.model import create_detector

    torch.manual_seed(4)
    model = create_detector("light", image_size=DET_SIZE, landmarks=True, refiner=refiner)
    with torch.no_grad():
        model.pred.bias.view(len(model.anchors), 5)[:, 0] = 0.0
    ck = save_detector(tmp_path / "lm.pt", model, "light", {"image_size": DET_SIZE, "landmarks": True,
                                                            "refiner": refiner},
                       meta={"postprocess": {"conf_threshold": 0.2, "iou_threshold": 0.4, "max_detections": 12}})
    report = export_model(ck, tmp_path / "lm.onnx")
    assert report.max_abs_diff <= report.tolerance and report.metadata["iznet.landmarks"] == "true"
    torch_det = YoloFaceDetector.from_checkpoint(ck, device="cpu")
    onnx_det = OnnxDetector(tmp_path / "lm.onnx", threads=1)
    x = torch.rand(2, 3, DET_SIZE, DET_SIZE, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = torch_det.model(x).numpy()
    got = onnx_det.forward(x.numpy())
    assert got.shape == want.shape == (2, DET_SIZE // 32, DET_SIZE // 32, 2, 15)
    np.testing.assert_allclose(got, want, atol=1e-4 * max(1.0, np.abs(want).max()), rtol=0)
    photo = np.random.default_rng(4).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    td, od = torch_det.detect(photo), onnx_det.detect(photo)
    assert len(td) > 0 and len(od) == len(td) and td.landmarks is not None and od.landmarks is not None
    # this untrained network scores nearly every box 0.5: compare face by face in box order, not score order
    o_order, t_order = (np.lexsort(d.xyxy.numpy().T[::-1].round(1)) for d in (od, td))
    np.testing.assert_allclose(od.landmarks.numpy()[o_order], td.landmarks.numpy()[t_order], atol=0.5)
    side = tmp_path / "lm.refiner.onnx"
    assert side.exists() == refiner and (onnx_det.refiner is not None) == refiner
    if refiner:  # the refined points differ from the coarse ones, and the file without its refiner warns
        coarse = YoloFaceDetector(torch_det.model, torch_det.config, tta=torch_det.tta)
        coarse.model.landmark_refiner = None
        assert np.abs(coarse.detect(photo).landmarks.numpy() - td.landmarks.numpy()).max() > 0.01
        side.unlink()
        with caplog.at_level("WARNING"):
            assert OnnxDetector(tmp_path / "lm.onnx", threads=1).refiner is None
        assert "refiner lm.refiner.onnx is missing" in caplog.text


def _strip_dynamic_side(path):
    """Make ``path`` look like a file exported before the side was dynamic (metadata without the flag)."""
    import onnx

    proto = onnx.load(str(path))
    kept = [p for p in proto.metadata_props if p.key != "iznet.dynamic_side"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    onnx.save(proto, str(path))


def test_fixed_side_files_run_one_side_and_the_cache_exports_them_again(detector_ckpt, tmp_path, caplog):
    from iznet.recognize.gallery import sha256_file

    export_model(detector_ckpt, tmp_path / "old.onnx")
    _strip_dynamic_side(tmp_path / "old.onnx")
    with caplog.at_level("WARNING"):
        old = OnnxDetector(tmp_path / "old.onnx", threads=1, tta="full")
    assert old.tta.sides(DET_SIZE) == (DET_SIZE,) and old.tta.flip
    assert "fixed input side" in caplog.text and "export it again" in caplog.text

    cache = tmp_path / "cache"
    target = cache / cache_name("detector", sha256_file(detector_ckpt))
    cached_export(detector_ckpt, "detector", cache, OnnxDetector)
    _strip_dynamic_side(target)
    again = cached_export(detector_ckpt, "detector", cache, OnnxDetector)
    assert again.dynamic_side and again.tta.sides(DET_SIZE) == (128, 160)  # 1.3 x 128 to a multiple of 32


def test_run_folder_and_kind_checks(embedder_ckpt, detector_ckpt, tmp_path):
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(embedder_ckpt, run / "model.pt")
    assert export_model(run, tmp_path / "r.onnx", verify=False).kind == "embedder"
    with pytest.raises(ModelError, match="holds a 'detector' checkpoint, expected 'embedder'"):
        export_model(detector_ckpt, tmp_path / "x.onnx", kind="embedder")
    with pytest.raises(ModelError, match="holds an exported embedder, expected an exported detector"):
        OnnxDetector(tmp_path / "r.onnx")


def test_cache_exports_once_and_repairs_bad_files(detector_ckpt, tmp_path):
    from iznet.recognize.gallery import sha256_file

    cache = tmp_path / "cache"
    det = cached_export(detector_ckpt, "detector", cache, OnnxDetector)
    target = cache / cache_name("detector", sha256_file(detector_ckpt))
    assert isinstance(det, OnnxDetector) and det.path == target
    stamp = target.stat().st_mtime_ns
    again = cached_export(detector_ckpt, "detector", cache, OnnxDetector)
    assert again.path == target and target.stat().st_mtime_ns == stamp  # reused, not exported again

    target.write_bytes(b"not an onnx file")  # a broken cache entry is exported again
    repaired = cached_export(detector_ckpt, "detector", cache, OnnxDetector)
    assert repaired.metadata["iznet.source_sha256"] == sha256_file(detector_ckpt)

    blocker = tmp_path / "file"
    blocker.write_text("x")  # a cache that cannot be created: the export goes to a temporary folder
    tmp_det = cached_export(detector_ckpt, "detector", blocker / "sub", OnnxDetector)
    assert isinstance(tmp_det, OnnxDetector) and not tmp_det.path.exists()


def test_runtime_loaders_pass_non_networks_through(tmp_path):
    from iznet.recognize.embedder import RawPixelEmbedder

    assert isinstance(load_embedder(spec="raw:16", runtime="onnx", onnx_dir=tmp_path), RawPixelEmbedder)
    assert type(load_detector(spec="haar", runtime="onnx", onnx_dir=tmp_path)).__name__ == "HaarDetector"
    untrained = load_embedder(spec="nn4_small", runtime="onnx", onnx_dir=tmp_path)  # random weights: a temporary export
    assert isinstance(untrained, OnnxEmbedder) and not untrained.trained
    assert not any(tmp_path.iterdir())  # nothing cached for it


def test_missing_onnxruntime_or_onnx_says_how_to_install(embedder_ckpt, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ModelError, match=r"pip install 'iznet\[onnx\]'"):
        load_embedder(spec=None, runtime="onnx", onnx_dir=tmp_path)
    with pytest.raises(ModelError, match=r"onnxruntime is needed.*--no-verify"):
        export_model(embedder_ckpt, tmp_path / "e.onnx")
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ModelError, match=r"needs the 'onnx' package.*\./setup\.sh"):
        export_model(embedder_ckpt, tmp_path / "e.onnx", verify=False)
    assert not (tmp_path / "e.onnx").exists()


@pytest.mark.parametrize("bad, message", [
    ("nope", "no such file or folder"),
    ("missing.pt", "no such file or folder"),
])
def test_export_bad_model_names(bad, message, tmp_path):
    with pytest.raises(ModelError, match=message):
        export_model(tmp_path / bad if bad.endswith(".pt") else bad, tmp_path / "x.onnx")


def test_export_bad_files(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ModelError, match="not a readable iznet checkpoint"):
        export_model(tmp_path / "junk.pt", tmp_path / "x.onnx")
    (tmp_path / "m.onnx").write_bytes(b"junk")
    with pytest.raises(ModelError, match="already is an ONNX file"):
        export_model(tmp_path / "m.onnx", tmp_path / "x.onnx")
    with pytest.raises(ModelError, match="not an ONNX model onnxruntime can load"):
        OnnxEmbedder(tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="does not exist"):
        OnnxEmbedder(tmp_path / "none.onnx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="folder without model.pt"):
        export_model(tmp_path / "empty", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_ensemble_runs_each_member_on_onnxruntime(embedder_ckpt, tmp_path):
    from iznet.recognize.embedder import EnsembleEmbedder
    from iznet.recognize.pipeline import embedder_tag

    spec = f"{embedder_ckpt}+raw:8"
    onnx_ens = load_embedder(spec=spec, runtime="onnx", onnx_dir=tmp_path)
    torch_ens = load_embedder(spec=spec, runtime="torch")
    assert isinstance(onnx_ens, EnsembleEmbedder) and isinstance(onnx_ens.members[0], OnnxEmbedder)
    assert embedder_tag(onnx_ens) == embedder_tag(torch_ens)  # a gallery enrolled on either runtime matches
    x = _crops(3, 40)
    np.testing.assert_allclose(onnx_ens.embed(x), torch_ens.embed(x), atol=1e-4)
    with pytest.raises(ModelError, match="empty member"):
        load_embedder(spec=f"{embedder_ckpt}+", runtime="onnx", onnx_dir=tmp_path)
    with pytest.raises(ModelError, match="is an ensemble: export each member"):
        export_model(spec, tmp_path / "ens.onnx")


def test_the_face_crop_convention_travels_with_checkpoint_and_onnx_file(tmp_path):
    from iznet.utils.checkpoint import save_checkpoint
    from iznet.models import create_model
    from iznet.recognize.embedder import EnsembleEmbedder, load_embedder

    m = create_model("nn4_small", input_size=EMB_SIZE)
    paths = {}
    for crop in ("aligned", "box", "tight"):
        paths[crop] = save_checkpoint(tmp_path / f"{crop}.pt", kind="embedder", model="nn4_small",
                                      model_kwargs={"input_size": EMB_SIZE}, state_dict=m.state_dict(),
                                      meta={"crop": crop})
    aligned = load_embedder(str(paths["aligned"]), device="cpu")
    assert aligned.face_crop == "aligned" and load_embedder(str(paths["box"]), device="cpu").face_crop == "box"
    with pytest.raises(ModelError, match="unknown face crop convention 'tight'"):
        load_embedder(str(paths["tight"]), device="cpu")
    with pytest.raises(ModelError, match="different face crops"):
        EnsembleEmbedder([aligned, load_embedder(str(paths["box"]), device="cpu")])
    export_model(paths["aligned"], tmp_path / "a.onnx", verify=False)
    assert read_onnx_metadata(tmp_path / "a.onnx")["iznet.crop"] == "aligned"
    assert OnnxEmbedder(tmp_path / "a.onnx", threads=1).face_crop == "aligned"
