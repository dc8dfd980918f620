"""iznet.loading: options checked once, defaults, runtimes, confidence and the unknown-face rule."""

from __future__ import annotations

import pytest

from iznet.detect.tta import TTA_MODES
from iznet.errors import ModelError
from iznet.loading import DetectorOptions, EmbedderOptions, load_detector, load_embedder, parse_threshold
from iznet.utils.assets import DEFAULT_DETECTOR_FILE, DEFAULT_EMBEDDER_FILE


@pytest.mark.parametrize("kwargs, message", [
    ({"runtime": "tensorrt"}, "choose one of auto, torch, onnx"),
    ({"tta": "mirror"}, "choose one of off, flip, full"),
    ({"conf": 1.5}, "must lie in 0..1"),
    ({"conf": float("nan")}, "must lie in 0..1"),
    ({"runtime": "onnx", "device": "cuda"}, "runs on the CPU"),
    ({"threads": 0}, "threads must be 1 or more"),
    ({"spec": "haar", "conf": 0.5}, "iznet detectors only"),
    ({"spec": "yunet:x.onnx", "conf": 0.5}, "iznet detectors only"),
])
def test_detector_options_refuse_bad_values(kwargs, message):
    with pytest.raises(ModelError, match=message):
        DetectorOptions(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"runtime": "gpu"}, "choose one of auto, torch, onnx"),
    ({"runtime": "onnx", "tta": True}, "set when an embedder is exported"),
    ({"runtime": "onnx", "device": "cuda:0"}, "runs on the CPU"),
    ({"threads": -1}, "threads must be 1 or more"),
])
def test_embedder_options_refuse_bad_values(kwargs, message):
    with pytest.raises(ModelError, match=message):
        EmbedderOptions(**kwargs)


def test_options_are_normalised():
    o = DetectorOptions("  haar ", runtime=" ONNX ", tta="Flip")
    assert (o.spec, o.runtime, o.tta) == ("haar", "onnx", "flip")
    assert DetectorOptions("").spec is None and set(TTA_MODES) == {"off", "flip", "full"}
    with pytest.raises(TypeError, match="not both"):
        load_detector(DetectorOptions(), tta="off")


@pytest.mark.skipif(not DEFAULT_DETECTOR_FILE.is_file(), reason="no bundled detector")
def test_bundled_detector_with_tta_and_confidence():
    from iznet.detect.tta import tta_config

    det = load_detector(tta="off", conf=0.55)
    assert det.config.conf_threshold == 0.55 and det.tta == tta_config("off")
    assert load_detector().config.conf_threshold == pytest.approx(0.3)  # the default, untouched
    with pytest.raises(ModelError, match="ONNX file"):
        load_detector(spec="model.onnx")
    with pytest.raises(ModelError, match="neither 'haar'"):
        load_detector(spec="no/such/detector.pt")


def test_embedder_defaults_and_fitted_baselines():
    with pytest.raises(ModelError, match="must be fitted"):
        load_embedder(spec="pca:8")
    assert load_embedder(spec="pca:8", fixed=False).needs_fit
    assert load_embedder(spec="raw:12").input_size == 12
    with pytest.raises(ModelError, match="ONNX file"):
        load_embedder(spec="e.onnx")
    if DEFAULT_EMBEDDER_FILE.is_file():
        assert load_embedder(tta=True).tta and not load_embedder(tta=False).tta


@pytest.mark.parametrize("value, want", [(None, "stored"), ("stored", "stored"), (" STORED ", "stored"),
                                         ("none", None), ("0.9", 0.9), (0.5, 0.5), ("0", 0.0), ("2", 2.0)])
def test_parse_threshold(value, want):
    assert parse_threshold(value) == want


@pytest.mark.parametrize("value", ["low", "2.5", "-0.1", "nan", float("inf")])
def test_parse_threshold_refuses(value):
    with pytest.raises(ModelError, match="unknown-face threshold"):
        parse_threshold(value)


def test_auto_runtime_is_onnx_where_it_can_run_and_torch_otherwise(monkeypatch):
    import iznet.loading as loading

    monkeypatch.setattr(loading, "_onnx_available", lambda: True)
    assert loading._concrete(DetectorOptions(runtime="auto")).runtime == "onnx"
    assert loading._concrete(DetectorOptions(runtime="auto", device="cuda")).runtime == "torch"
    assert loading._concrete(EmbedderOptions(runtime="auto")).runtime == "onnx"
    assert loading._concrete(EmbedderOptions(runtime="auto", tta=True)).runtime == "torch"  # fixed at export
    assert loading._concrete(EmbedderOptions(runtime="torch")).runtime == "torch"
    monkeypatch.setattr(loading, "_onnx_available", lambda: False)
    assert loading._concrete(DetectorOptions(runtime="auto")).runtime == "torch"
