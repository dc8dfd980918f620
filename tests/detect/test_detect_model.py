import pytest
import torch

from iznet.detect.evaluate import recall_at
from iznet.detect.loss import YoloLoss
from iznet.detect.model import count_parameters, create_detector, list_detectors
from iznet.detect.postprocess import postprocess
from iznet.detect.targets import encode_targets
from iznet.errors import ModelError

from detect_helpers import synthetic_image


def test_registry():
    assert list_detectors() == ["darknet53", "light"]
    with pytest.raises(ModelError, match="unknown detector"):
        create_detector("resnet")
    with pytest.raises(ModelError, match="bad options"):
        create_detector("light", depth=3)
    with pytest.raises(ModelError, match="multiple of 32"):
        create_detector("light", image_size=100)


@pytest.mark.parametrize("size,grid", [(416, 13), (128, 4), (64, 2)])
def test_light_grid_follows_input(size, grid):
    m = create_detector("light", image_size=size, width=8)
    assert m.grid == grid
    out = m(torch.rand(2, 3, size, size))
    assert out.shape == (2, grid, grid, 2, 5) and torch.isfinite(out).all()


def test_light_weights_are_1_to_3_mb():
    m = create_detector("light")
    assert 1e6 <= count_parameters(m) * 4 <= 3e6


def test_darknet53_shape_and_size():
    m = create_detector("darknet53", image_size=64).eval()
    # Darknet-53's convolutional trunk holds about 40.6M parameters (YOLOv3 paper's backbone)
    assert 40e6 < count_parameters(m.backbone) < 41e6
    with torch.no_grad():
        assert m(torch.rand(1, 3, 64, 64)).shape == (1, 2, 2, 2, 5)


def test_backward_reaches_every_parameter():
    m = create_detector("light", image_size=64, width=8)
    raw = m(torch.rand(2, 3, 64, 64))
    target = encode_targets([torch.tensor([[10.0, 10, 40, 46]]), torch.zeros(0, 4)], m.grid, m.anchors, 64)
    YoloLoss()(raw, target)["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_overfit_a_handful_of_images():
    """The light detector at 128 px (4x4 grid) learns 6 synthetic images to high recall."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    items = [synthetic_image(128, 1 + i % 2, g, min_face=24, max_face=56) for i in range(6)]
    x = torch.stack([im for im, _ in items]).float() / 255
    boxes = [torch.from_numpy(b) for _, b in items]
    m = create_detector("light", image_size=128, width=8)
    target = encode_targets(boxes, m.grid, m.anchors, 128)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3, weight_decay=0)
    loss_fn = YoloLoss()
    for _ in range(150):
        out = loss_fn(m(x), target)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        dets = postprocess(m(x), 128)
    found = [d.numpy() for d in dets]
    assert recall_at(found, [b.numpy() for b in boxes], 0.5) >= 0.85
    assert sum(len(d) for d in dets) <= sum(len(b) for b in boxes) + 2
