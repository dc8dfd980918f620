"""TripletLoss against explicit loops; reductions; the no-triplet case; gradcheck."""

from __future__ import annotations

import pytest
import torch

from iznet.losses import LossError, TripletLoss
from iznet.mining import BatchHardMiner, SemiHardMiner


def batch(seed, b=12, d=5, classes=3, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (b,), generator=g)
    x = torch.nn.functional.normalize(torch.randn(b, d, generator=g, dtype=dtype), dim=1)
    return x, labels


def loop_losses(x, labels, margin, squared, triplets=None):
    lab = labels.tolist()
    b = len(lab)
    if triplets is None:
        triplets = [(a, p, n) for a in range(b) for p in range(b) for n in range(b)
                    if a != p and lab[a] == lab[p] and lab[n] != lab[a]]
    out = []
    for a, p, n in triplets:
        dap = float(((x[a] - x[p]) ** 2).sum())
        dan = float(((x[a] - x[n]) ** 2).sum())
        if not squared:
            dap, dan = dap**0.5, dan**0.5
        out.append(max(0.0, dap - dan + margin))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("reduction", ["mean_active", "mean", "sum"])
def test_all_triplets_match_loop(seed, squared, reduction):
    x, labels = batch(seed)
    margin = 0.3
    ref = loop_losses(x, labels, margin, squared)
    active = [v for v in ref if v > 0]
    expected = {"sum": sum(ref), "mean": sum(ref) / len(ref), "mean_active": sum(active) / len(active)}[reduction]
    loss_fn = TripletLoss(margin=margin, squared=squared, reduction=reduction)
    loss = loss_fn(x, labels)
    assert loss.item() == pytest.approx(expected, rel=1e-9)
    assert loss_fn.last_stats == {"num_triplets": len(ref), "num_active": len(active),
                                  "active_share": len(active) / len(ref)}
    assert 0 < len(active) < len(ref)  # both kinds present: the reductions differ


def test_given_indices_and_miner():
    x, labels = batch(3)
    miner = BatchHardMiner(squared=True)
    a, p, n = miner(x, labels)
    trip = list(zip(a.tolist(), p.tolist(), n.tolist()))
    ref = loop_losses(x, labels, 0.2, True, trip)
    expected = sum(ref) / sum(v > 0 for v in ref)
    loss_fn = TripletLoss(margin=0.2)
    assert loss_fn(x, labels, (a, p, n)).item() == pytest.approx(expected, rel=1e-9)
    assert loss_fn(x, labels, miner).item() == pytest.approx(expected, rel=1e-9)
    assert loss_fn(x, None, (a, p, n)).item() == pytest.approx(expected, rel=1e-9)
    assert loss_fn.last_stats["num_triplets"] == len(trip)


@pytest.mark.parametrize("labels", [[2] * 6, list(range(6)), [0]])
@pytest.mark.parametrize("reduction", ["mean_active", "mean", "sum"])
def test_no_triplet_is_zero_with_a_gradient(labels, reduction):
    g = torch.Generator().manual_seed(len(labels))
    x = torch.nn.functional.normalize(torch.randn(len(labels), 4, generator=g), dim=1).requires_grad_(True)
    loss_fn = TripletLoss(reduction=reduction)
    for mined in (None, SemiHardMiner(), (torch.tensor([], dtype=torch.int64),) * 3):
        loss = loss_fn(x, torch.tensor(labels), mined)
        assert loss.item() == 0 and not torch.isnan(loss) and loss.requires_grad
        loss.backward()
        assert x.grad is not None and (x.grad == 0).all()
        assert loss_fn.last_stats == {"num_triplets": 0, "num_active": 0, "active_share": 0.0}


def test_no_active_triplet_is_zero_with_a_gradient():
    # two tight, far-apart clusters: every triplet is easy
    x = torch.tensor([[1.0, 0.0], [0.999, 0.04], [-1.0, 0.0], [-0.999, 0.04]], requires_grad=True)
    loss_fn = TripletLoss(margin=0.2)
    loss = loss_fn(x, torch.tensor([0, 0, 1, 1]))
    assert loss.item() == 0 and loss.requires_grad and loss_fn.last_stats["num_active"] == 0
    loss.backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("reduction", ["mean_active", "mean"])
def test_gradcheck(squared, reduction):
    x, labels = batch(4, b=8, d=4)
    lab = labels.tolist()
    trip = [(a, p, n) for a in range(8) for p in range(8) for n in range(8)
            if a != p and lab[a] == lab[p] and lab[n] != lab[a]]
    idx = tuple(torch.tensor(t) for t in zip(*trip))
    loss_fn = TripletLoss(margin=0.5, squared=squared, reduction=reduction)
    x = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: loss_fn(t, labels, idx), (x,))


def test_bad_input_raises():
    x, labels = batch(0)
    with pytest.raises(LossError, match="reduction"):
        TripletLoss(reduction="max")
    with pytest.raises(LossError, match="labels"):
        TripletLoss()(x, None)
    with pytest.raises(LossError, match="in \\[0, 12\\)"):
        TripletLoss()(x, labels, (torch.tensor([0]), torch.tensor([1]), torch.tensor([12])))
    with pytest.raises(LossError, match="one length"):
        TripletLoss()(x, labels, (torch.tensor([0, 1]), torch.tensor([1]), torch.tensor([2])))
    with pytest.raises(LossError, match="labels must have shape"):
        TripletLoss()(x, labels[:-1])
