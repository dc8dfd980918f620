import pytest
import torch

from iznet.detect.loss import YoloLoss, activate


def _logit(p):
    p = torch.as_tensor(p, dtype=torch.float64)
    return torch.log(p / (1 - p))


def _hand_case():
    """One 1x1 grid, two anchors; anchor 0 is responsible for a face at (0.5, 0.5) of size 0.25 x 0.36."""
    target = torch.zeros(1, 1, 1, 2, 5)
    target[0, 0, 0, 0] = torch.tensor([1.0, 0.5, 0.5, 0.25, 0.36])
    raw = torch.zeros(1, 1, 1, 2, 5, dtype=torch.float64)
    # predictor 0: conf 0.8, x 0.6, y 0.4 (through sigmoids), sqrt(w) 0.4, sqrt(h) 0.5 (linear: w 0.16, h 0.25)
    raw[0, 0, 0, 0, :3] = _logit([0.8, 0.6, 0.4])
    raw[0, 0, 0, 0, 3:] = torch.tensor([0.4, 0.5])
    # predictor 1 (no object): conf 0.2
    raw[0, 0, 0, 1] = torch.tensor([float(_logit(0.2)), 0, 0, 0.5, 0.5])
    return raw, target


def test_each_term_on_a_hand_computed_case():
    raw, target = _hand_case()
    out = YoloLoss(lambda_coord=25, lambda_noobj=0.5, conf_target="one")(raw, target)
    assert out["xy"].item() == pytest.approx(25 * ((0.6 - 0.5) ** 2 + (0.4 - 0.5) ** 2))      # 0.5
    assert out["wh"].item() == pytest.approx(25 * ((0.4 - 0.5) ** 2 + (0.5 - 0.6) ** 2))      # 0.5
    assert out["obj"].item() == pytest.approx((0.8 - 1.0) ** 2)                               # 0.04
    assert out["noobj"].item() == pytest.approx(0.5 * 0.2 ** 2)                               # 0.02
    assert out["loss"].item() == pytest.approx(0.5 + 0.5 + 0.04 + 0.02)


def test_iou_confidence_target_by_hand():
    raw, target = _hand_case()
    out = YoloLoss(conf_target="iou")(raw, target)
    # predicted box: centre (0.6, 0.4), 0.16 x 0.25 -> [0.52, 0.275, 0.68, 0.525]
    # face:          centre (0.5, 0.5), 0.25 x 0.36 -> [0.375, 0.32, 0.625, 0.68]
    inter = (0.625 - 0.52) * (0.525 - 0.32)
    iou = inter / (0.16 * 0.25 + 0.25 * 0.36 - inter)
    assert out["obj"].item() == pytest.approx((0.8 - iou) ** 2, rel=1e-5)


def test_iou_target_is_detached():
    raw, target = _hand_case()
    raw = raw.clone().requires_grad_(True)
    YoloLoss(conf_target="iou")(raw, target)["obj"].backward()
    assert raw.grad[0, 0, 0, 0, 0] != 0
    assert torch.all(raw.grad[..., 1:] == 0)


def test_batch_mean_and_lambdas():
    raw, target = _hand_case()
    one = YoloLoss(lambda_coord=5, lambda_noobj=1.0, conf_target="one")(raw, target)
    two = YoloLoss(lambda_coord=5, lambda_noobj=1.0, conf_target="one")(raw.repeat(2, 1, 1, 1, 1),
                                                                        target.repeat(2, 1, 1, 1, 1))
    for k in one:
        assert two[k].item() == pytest.approx(one[k].item())
    assert one["xy"].item() == pytest.approx(5 * 0.02)
    assert one["noobj"].item() == pytest.approx(0.04)


def test_no_faces_is_only_noobj_and_backward_works():
    raw = torch.randn(3, 4, 4, 2, 5, requires_grad=True)
    out = YoloLoss()(raw, torch.zeros(3, 4, 4, 2, 5))
    assert out["xy"].item() == 0 and out["wh"].item() == 0 and out["obj"].item() == 0
    assert out["noobj"].item() > 0
    out["loss"].backward()
    assert torch.isfinite(raw.grad).all() and raw.grad[..., 0].abs().sum() > 0


def test_activate_layout():
    raw = _hand_case()[0]
    a = activate(raw)
    assert a[0, 0, 0, 0].tolist() == pytest.approx([0.8, 0.6, 0.4, 0.16, 0.25])
    raw[0, 0, 0, 0, 3:] = torch.tensor([-0.3, 1.7])  # sizes are clamped to [0, 1] when decoding
    assert activate(raw)[0, 0, 0, 0, 3:].tolist() == [0.0, 1.0]


def test_size_term_has_no_dead_gradient():
    raw, target = _hand_case()
    raw[0, 0, 0, 0, 3:] = torch.tensor([3.0, -2.0])  # far outside [0, 1]: still pulled back
    raw.requires_grad_(True)
    YoloLoss()(raw, target)["wh"].backward()
    assert raw.grad[0, 0, 0, 0, 3] > 0 and raw.grad[0, 0, 0, 0, 4] < 0


def test_bad_inputs():
    with pytest.raises(ValueError):
        YoloLoss(conf_target="maybe")
    with pytest.raises(ValueError):
        YoloLoss()(torch.zeros(1, 2, 2, 2, 5), torch.zeros(1, 2, 2, 1, 5))
