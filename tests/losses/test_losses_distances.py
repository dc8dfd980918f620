"""pairwise_distances: values, and finite gradients at zero distance."""

from __future__ import annotations

import torch

from iznet.losses import pairwise_distances, row_distances


def test_matches_cdist_and_zero_diagonal():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 5, dtype=torch.float64, generator=g)
    y = torch.randn(4, 5, dtype=torch.float64, generator=g)
    assert torch.allclose(pairwise_distances(x), torch.cdist(x, x), atol=1e-10)
    assert torch.allclose(pairwise_distances(x, squared=True), torch.cdist(x, x) ** 2, atol=1e-10)
    assert torch.allclose(pairwise_distances(x, y), torch.cdist(x, y), atol=1e-10)
    assert (pairwise_distances(x).diagonal() == 0).all()
    assert torch.allclose(row_distances(x[:4], y), (x[:4] - y).norm(dim=1))


def test_gradient_is_finite_at_zero_distance():
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = torch.cat([x, x[:2]]).requires_grad_(True)  # rows 5, 6 duplicate rows 0, 1
    d = pairwise_distances(x)
    assert d[0, 5] < 1e-6  # zero up to rounding of the matrix form
    d.sum().backward()
    assert torch.isfinite(x.grad).all()
    y = x.detach().clone().requires_grad_(True)
    row_distances(y, y.detach()).sum().backward()
    assert torch.isfinite(y.grad).all() and (y.grad == 0).all()


def test_gradcheck_off_the_diagonal():
    x = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: pairwise_distances(t), (x,))
    assert torch.autograd.gradcheck(lambda t: pairwise_distances(t, squared=True), (x,))


def test_float32_under_autocast_and_for_half_inputs():
    x = torch.nn.functional.normalize(torch.randn(64, 32, generator=torch.Generator().manual_seed(3)), dim=1)
    ref = torch.cdist(x.double(), x.double()) ** 2
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d2 = pairwise_distances(x, squared=True)
    assert d2.dtype == torch.float32 and (d2 - ref).abs().max() < 1e-5
    assert pairwise_distances(x.to(torch.bfloat16)).dtype == torch.float32
    assert row_distances(x.half(), x.half()).dtype == torch.float32
