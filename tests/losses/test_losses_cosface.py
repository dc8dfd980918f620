"""CosFaceLoss: against an explicit loop, gradcheck in float64, the margin's effect, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from iznet.losses import CosFaceLoss, LossError


def loop_cosface(x, labels, w, scale, margin):
    """Mean cross-entropy of s·(cos − m·[c = y]), one sample and one class at a time."""
    total = 0.0
    for i in range(x.shape[0]):
        f = [float(v) for v in x[i]]
        nf = math.sqrt(sum(v * v for v in f))
        logits = []
        for c in range(w.shape[0]):
            wc = [float(v) for v in w[c]]
            nw = math.sqrt(sum(v * v for v in wc))
            cos = sum(a * b for a, b in zip(f, wc)) / (nf * nw)
            logits.append(scale * (cos - (margin if c == int(labels[i]) else 0.0)))
        top = max(logits)
        lse = top + math.log(sum(math.exp(z - top) for z in logits))
        total += lse - logits[int(labels[i])]
    return total / x.shape[0]


def make(seed, b=7, d=5, classes=4, scale=30.0, margin=0.35):
    torch.manual_seed(seed)
    loss = CosFaceLoss(dim=d, num_classes=classes, scale=scale, margin=margin).double()
    with torch.no_grad():
        loss.weight.mul_(torch.rand(classes, 1, dtype=torch.float64) + 0.5)  # unnormalised rows
    x = torch.randn(b, d, dtype=torch.float64)
    labels = torch.randint(0, classes, (b,))
    return loss, x, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scale,margin", [(30.0, 0.35), (16.0, 0.0), (4.0, 0.6)])
def test_matches_loop(seed, scale, margin):
    loss, x, labels = make(seed, scale=scale, margin=margin)
    expected = loop_cosface(x, labels, loss.weight.detach(), scale, margin)
    assert loss(x, labels).item() == pytest.approx(expected, rel=1e-10)


def test_gradcheck_embeddings_and_class_directions():
    loss, x, labels = make(3, scale=8.0)
    x.requires_grad_(True)
    w = loss.weight.detach().clone().requires_grad_(True)

    def f(x, w):
        return torch.func.functional_call(loss, {"weight": w}, (x, labels))

    assert torch.autograd.gradcheck(f, (x, w), eps=1e-6, atol=1e-6)


def test_margin_raises_the_loss_and_class_accuracy_is_reported():
    loss, x, labels = make(4, margin=0.0)
    plain = loss(x, labels).item()
    loss.margin = 0.35
    assert loss(x, labels).item() > plain
    cos = loss.cosines(x)
    assert loss.last_stats["id_acc"] == pytest.approx(float((cos.argmax(1) == labels).double().mean()))
    # embeddings on their own class directions: every other logit is s·(0 − (1 − m)) below the true one
    eye = CosFaceLoss(dim=4, num_classes=4, scale=30.0, margin=0.35).double()
    with torch.no_grad():
        eye.weight.copy_(torch.eye(4, dtype=torch.float64))
    expected = math.log1p(3 * math.exp(-30 * 0.65))
    assert eye(torch.eye(4, dtype=torch.float64), torch.arange(4)).item() == pytest.approx(expected, rel=1e-9)
    assert eye.last_stats["id_acc"] == 1.0


def test_bad_input_and_empty_batch():
    loss = CosFaceLoss(dim=3, num_classes=4)
    with pytest.raises(LossError, match=r"labels must lie in \[0, 4\)"):
        loss(torch.randn(2, 3), torch.tensor([0, 4]))
    with pytest.raises(LossError, match=r"\(B, 3\)"):
        loss(torch.randn(2, 5), torch.tensor([0, 1]))
    with pytest.raises(LossError, match="integers"):
        loss(torch.randn(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(LossError, match="margin"):
        CosFaceLoss(dim=3, num_classes=4, margin=1.5)
    with pytest.raises(LossError, match="num_classes"):
        CosFaceLoss(dim=3, num_classes=1)
    x = torch.zeros(0, 3, requires_grad=True)
    out = loss(x, torch.zeros(0, dtype=torch.int64))
    out.backward()
    assert out.item() == 0 and loss.weight.grad is not None and torch.equal(loss.weight.grad, torch.zeros(4, 3))
