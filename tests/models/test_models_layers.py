"""Building blocks checked against hand computations: Maxout, L2 pooling, Conv-BN-ReLU, preprocess, counters."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from iznet.errors import ModelError
from iznet.models import ConvBNReLU, L2Pool2d, Maxout, count_flops, count_params, flops_by_module, preprocess


def test_maxout_shape_and_hand_example():
    m = Maxout(3, 2, pieces=2)
    assert m(torch.zeros(5, 3)).shape == (5, 2)
    with torch.no_grad():
        m.linear.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [-1, 0, 0]]))
        m.linear.bias.copy_(torch.tensor([0.0, 0.5, 0.0, 0.0]))
    x = torch.tensor([[1.0, 2.0, 3.0], [-2.0, -1.0, 0.5]])
    # linear units: row0 -> [1, 2.5, 3, -1], row1 -> [-2, -0.5, 0.5, 2]; max over (0,1) and (2,3)
    expected = torch.tensor([[2.5, 3.0], [-0.5, 2.0]])
    assert torch.equal(m(x), expected)


def test_maxout_gradient_goes_to_the_winner_only():
    m = Maxout(1, 1, pieces=2)
    with torch.no_grad():
        m.linear.weight.copy_(torch.tensor([[1.0], [2.0]]))
        m.linear.bias.zero_()
    m(torch.tensor([[1.0]])).sum().backward()
    assert m.linear.weight.grad.flatten().tolist() == [0.0, 1.0]


def test_l2pool_matches_hand_computation():
    x = torch.arange(16, dtype=torch.float64).reshape(1, 1, 4, 4) - 5
    pool = L2Pool2d(3, stride=1, padding=1, eps=0.0)
    y = pool(x)
    assert y.shape == x.shape
    xp = torch.nn.functional.pad(x, (1, 1, 1, 1))
    for i in range(4):
        for j in range(4):
            window = xp[0, 0, i:i + 3, j:j + 3]
            assert y[0, 0, i, j].item() == pytest.approx(math.sqrt((window ** 2).sum().item()), rel=1e-12)


def test_l2pool_stride2_and_finite_gradient_at_zero():
    pool = L2Pool2d(3, stride=2, padding=1)
    assert pool(torch.zeros(2, 4, 14, 14)).shape == (2, 4, 7, 7)
    x = torch.zeros(1, 2, 5, 5, requires_grad=True)
    pool(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    # eps only matters near zero: sqrt(9 * 1 + 1e-6) for an all-ones window
    assert pool(torch.ones(1, 1, 5, 5))[0, 0, 1, 1].item() == pytest.approx(3.0, abs=1e-6)


def test_convbnrelu_bias_only_without_bn():
    with_bn = ConvBNReLU(3, 8, 3, bn=True)
    without = ConvBNReLU(3, 8, 3, bn=False)
    assert with_bn.conv.bias is None and isinstance(with_bn.bn, nn.BatchNorm2d)
    assert without.conv.bias is not None and isinstance(without.bn, nn.Identity)
    assert with_bn(torch.randn(2, 3, 9, 9)).min() >= 0


def test_flops_conv_counted_by_hand():
    conv = nn.Conv2d(3, 64, 7, stride=2, padding=3)
    assert count_flops(conv, 220) == 110 * 110 * 64 * 7 * 7 * 3


def test_flops_linear_grouped_conv_and_ignored_layers():
    model = nn.Sequential(
        nn.Conv2d(4, 8, 3, padding=1, groups=2),  # 6x6x8 outputs, each 2*3*3 MACs
        nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),  # ignored
        nn.Flatten(), nn.Linear(8 * 3 * 3, 10),
    )

    class FourChannel(nn.Module):  # count_flops feeds 3 channels; adapt with a 1x1 conv
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 1, bias=False)
            self.body = model

        def forward(self, x):
            return self.body(self.stem(x))

    per = flops_by_module(FourChannel(), 6)
    assert per == {"stem": 6 * 6 * 4 * 3, "body.0": 6 * 6 * 8 * 2 * 9, "body.5": 72 * 10}


def test_count_params_with_and_without_norm():
    m = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Linear(4, 2))
    assert count_params(m) == 108 + 8 + 10
    assert count_params(m, exclude_norm=True) == 108 + 10


def test_preprocess_normalises_and_resizes():
    img = torch.tensor([0, 255, 51], dtype=torch.uint8).view(1, 3, 1, 1).expand(2, 3, 8, 8).contiguous()
    x = preprocess(img)
    assert x.dtype == torch.float32 and x.shape == (2, 3, 8, 8)
    assert x[0, :, 0, 0].tolist() == pytest.approx([-1.0, 1.0, 51 / 255 * 2 - 1])
    y = preprocess(img, 4)
    assert y.shape == (2, 3, 4, 4)
    assert torch.allclose(y, x[:, :, :4, :4])  # a constant image stays constant after antialiased resizing
    assert preprocess(img[0], 5).shape == (3, 5, 5)


def test_preprocess_antialias_keeps_a_dot_that_plain_sampling_misses():
    dot = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    dot[..., 0, 0] = 255
    y = preprocess(dot, 2)  # plain bilinear samples pixels 1-2 and 5-6 only: the dot would vanish (-1)
    assert y[0, 0, 0, 0] > -0.99
    assert y[0, 0, 1, 1] == pytest.approx(-1.0)


@pytest.mark.parametrize("bad", [torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 4, 4, dtype=torch.uint8),
                                 torch.zeros(4, 4, dtype=torch.uint8)])
def test_preprocess_rejects_bad_input(bad):
    with pytest.raises(ModelError):
        preprocess(bad, 4)


def test_depthwise_pool_starts_as_the_average_pool_and_learns_per_position():
    from iznet.models.layers import DepthwisePool2d

    x = torch.randn(3, 5, 4, 4)
    pool = DepthwisePool2d(5, 4)
    assert torch.allclose(pool(x), x.mean(dim=(2, 3), keepdim=True), atol=1e-6)
    # a hand-set weight: channel c reads position (c % 4, 1) only, times c + 1
    with torch.no_grad():
        pool.weight.zero_()
        for c in range(5):
            pool.weight[c, 0, c % 4, 1] = c + 1
    want = torch.stack([x[:, c, c % 4, 1] * (c + 1) for c in range(5)], dim=1)
    assert torch.allclose(pool(x)[:, :, 0, 0], want, atol=1e-6)
    # float64 gradients against finite differences, for the input and the weight
    p64 = DepthwisePool2d(2, 3).double()
    with torch.no_grad():
        p64.weight.copy_(torch.randn_like(p64.weight))
    xi = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, w: torch.nn.functional.conv2d(a, w, groups=2), (xi, p64.weight))
    assert torch.autograd.gradcheck(p64, (xi,))


def test_depthwise_pool_names_the_size_it_needs():
    from iznet.errors import ModelError
    from iznet.models.layers import DepthwisePool2d

    with pytest.raises(ModelError, match=r"\(5, 4, 4\).*input size"):
        DepthwisePool2d(5, 4)(torch.zeros(1, 5, 3, 3))
