"""Small random checkpoints for the ONNX export tests (no shared data, no trained model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("onnx", reason="ONNX export tests need the onnx extra: pip install 'iznet[onnx]' or ./setup.sh")
pytest.importorskip("onnxruntime", reason="ONNX runtime tests need the onnx extra: pip install 'iznet[onnx]' or "
                                          "./setup.sh")

EMB_SIZE = 64  # small crops keep the random nn4_small fast
DET_SIZE = 128


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread here: these tests compare numbers, and on a busy 2-core machine torch's OpenMP barriers
    with 2 threads can make every forward pass a hundred times slower. onnxruntime follows torch's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def private_onnx_cache(tmp_path, monkeypatch):
    """Never export into the user's ~/.cache: commands run without --onnx-dir use a temporary cache."""
    monkeypatch.setenv("IZNET_ONNX_DIR", str(tmp_path / "onnx_cache"))


@pytest.fixture(scope="session")
def ckpt_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export_ckpts")


def _embedder_ckpt(folder: Path, name: str, tta: bool) -> Path:
    from iznet.utils.checkpoint import save_checkpoint
    from iznet.models import create_model

    torch.manual_seed(1)
    model = create_model("nn4_small")
    return save_checkpoint(folder / name, kind="embedder", model="nn4_small", model_kwargs={},
                           state_dict=model.state_dict(), meta={"input_size": EMB_SIZE, "tta": tta})


@pytest.fixture(scope="session")
def embedder_ckpt(ckpt_dir) -> Path:
    """A random nn4_small embedder checkpoint at 64 px, no flip TTA."""
    return _embedder_ckpt(ckpt_dir, "emb.pt", tta=False)


@pytest.fixture(scope="session")
def embedder_gdc_ckpt(ckpt_dir) -> Path:
    """nn4_small at 64 px with the depthwise pooling head (random position weights) and flip TTA."""
    from iznet.utils.checkpoint import save_checkpoint
    from iznet.models import create_model

    torch.manual_seed(3)
    model = create_model("nn4_small", input_size=EMB_SIZE, head="gdc")
    with torch.no_grad():
        model.head.pool.weight.uniform_(0.0, 0.2)
    return save_checkpoint(ckpt_dir / "emb_gdc.pt", kind="embedder", model="nn4_small",
                           model_kwargs={"input_size": EMB_SIZE, "head": "gdc"}, state_dict=model.state_dict(),
                           meta={"input_size": EMB_SIZE, "tta": True})


@pytest.fixture(scope="session")
def embedder_tta_ckpt(ckpt_dir) -> Path:
    """The same with flip TTA (the bundled embedder's setting)."""
    return _embedder_ckpt(ckpt_dir, "emb_tta.pt", tta=True)


@pytest.fixture(scope="session")
def embedder_zoom_ckpt(ckpt_dir) -> Path:
    """Flip TTA and two test-time zoom views (``meta["tta_zooms"]``)."""
    from iznet.utils.checkpoint import save_checkpoint
    from iznet.models import create_model

    torch.manual_seed(4)
    model = create_model("nn4_small")
    return save_checkpoint(ckpt_dir / "emb_zoom.pt", kind="embedder", model="nn4_small", model_kwargs={},
                           state_dict=model.state_dict(),
                           meta={"input_size": EMB_SIZE, "tta": True, "tta_zooms": [0.88, 0.75]})


@pytest.fixture(scope="session")
def detector_ckpt(ckpt_dir) -> Path:
    """A random 'light' detector checkpoint at 128 px with a low confidence threshold (so it finds boxes)."""
    from iznet.detect.detector import save_detector
    from iznet.detect.model import create_detector

    torch.manual_seed(2)
    model = create_detector("light", image_size=DET_SIZE)
    with torch.no_grad():  # make the random confidences spread, so some boxes pass and NMS has work
        model.pred.bias.view(len(model.anchors), 5)[:, 0] = 0.0
    pp = {"conf_threshold": 0.2, "iou_threshold": 0.4, "max_detections": 12}
    return save_detector(ckpt_dir / "det.pt", model, "light", {"image_size": DET_SIZE},
                         meta={"postprocess": pp})
