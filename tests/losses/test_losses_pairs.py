"""ContrastiveLoss and the DeepFace pair classifier: loops, gradcheck, safety at the edges."""

from __future__ import annotations

import pytest
import torch

from iznet.losses import ContrastiveLoss, LossError, PairClassificationLoss, PairClassifier


def batch(seed, b=10, d=5, classes=3):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (b,), generator=g)
    x = torch.nn.functional.normalize(torch.randn(b, d, generator=g, dtype=torch.float64), dim=1)
    return x, labels


def loop_contrastive(x, labels, margin, pairs):
    out = []
    for i, j in pairs:
        d = float((x[i] - x[j]).norm())
        out.append(d**2 if labels[i] == labels[j] else max(0.0, margin - d) ** 2)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_contrastive_all_pairs_match_loop(seed, reduction):
    x, labels = batch(seed)
    margin = 1.2
    pairs = [(i, j) for i in range(10) for j in range(i + 1, 10)]
    ref = loop_contrastive(x, labels, margin, pairs)
    loss_fn = ContrastiveLoss(margin=margin, reduction=reduction)
    expected = sum(ref) if reduction == "sum" else sum(ref) / len(ref)
    assert loss_fn(x, labels).item() == pytest.approx(expected, rel=1e-9)
    n_pos = sum(int(labels[i] == labels[j]) for i, j in pairs)
    assert loss_fn.last_stats["num_pairs"] == 45 and loss_fn.last_stats["num_positive"] == n_pos
    active_neg = sum(1 for (i, j), v in zip(pairs, ref) if labels[i] != labels[j] and v > 0)
    assert loss_fn.last_stats["num_active_negative"] == active_neg
    assert 0 < active_neg < 45 - n_pos  # the margin separates some negatives but not all


def test_contrastive_given_pairs_and_forward_pairs():
    x, labels = batch(5)
    i, j = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 6, 7])
    ref = loop_contrastive(x, labels, 1.0, list(zip(i.tolist(), j.tolist())))
    loss_fn = ContrastiveLoss(margin=1.0)
    assert loss_fn(x, labels, (i, j)).item() == pytest.approx(sum(ref) / 4, rel=1e-9)
    assert loss_fn.forward_pairs(x[i], x[j], labels[i] == labels[j]).item() == pytest.approx(sum(ref) / 4, rel=1e-9)


def test_contrastive_safe_at_zero_distance_and_empty():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    loss_fn = ContrastiveLoss(margin=1.0)
    loss = loss_fn(x, torch.tensor([0, 1, 1]))  # pair (0, 1): different people at distance 0
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    y = torch.ones(1, 3, requires_grad=True)
    loss = loss_fn(y, torch.tensor([0]))
    assert loss.item() == 0 and loss.requires_grad
    loss.backward()
    assert (y.grad == 0).all()


@pytest.mark.parametrize("margin", [0.8, 1.5])
def test_contrastive_gradcheck(margin):
    x, labels = batch(7, b=6, d=4)
    x = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: ContrastiveLoss(margin=margin)(t, labels), (x,))


@pytest.mark.parametrize("metric", ["abs", "chi2"])
def test_pair_classifier_matches_formula_and_gradcheck(metric):
    torch.manual_seed(0)
    head = PairClassifier(dim=6, metric=metric).double()
    with torch.no_grad():
        head.fc.weight.normal_()
        head.fc.bias.normal_()
    f1 = torch.nn.functional.normalize(torch.randn(5, 6, dtype=torch.float64), dim=1)
    f2 = torch.nn.functional.normalize(torch.randn(5, 6, dtype=torch.float64), dim=1)
    w, b = head.fc.weight[0], head.fc.bias[0]
    if metric == "abs":
        feat = (f1 - f2).abs()
    else:
        feat = 0.5 * (f1 - f2) ** 2 / (f1 + f2 + 2 + 2 * head.eps)
    assert torch.allclose(head(f1, f2), feat @ w + b)
    f1.requires_grad_(True)
    f2.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, c: head(a, c), (f1, f2))
    # the learned weights and bias get gradients too
    params = (head.fc.weight, head.fc.bias)
    assert torch.autograd.gradcheck(
        lambda wt, bs: torch.nn.functional.linear(head.pair_features(f1.detach(), f2.detach()), wt, bs).squeeze(1),
        tuple(p.detach().clone().requires_grad_(True) for p in params))


def test_chi2_is_finite_where_raw_chi2_divides_by_zero():
    head = PairClassifier(dim=3, metric="chi2")
    f1 = torch.tensor([[-1.0, 0.0, 0.0], [0.6, -0.8, 0.0]], requires_grad=True)
    f2 = torch.tensor([[-1.0, 0.0, 0.0], [-0.6, 0.8, 0.0]], requires_grad=True)  # f1 + f2 = 0 in places
    out = head(f1, f2)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(f1.grad).all() and torch.isfinite(f2.grad).all()


def test_initial_head_scores_closer_pairs_higher():
    torch.manual_seed(3)
    head = PairClassifier(dim=8)
    f = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    near = torch.nn.functional.normalize(f + 0.05 * torch.randn(4, 8), dim=1)
    far = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    assert (head(f, near) > head(f, far)).all()


def test_pair_classification_loss_is_bce():
    logits = torch.tensor([2.0, -1.0, 0.5], requires_grad=True)
    same = torch.tensor([True, False, False])
    loss = PairClassificationLoss()(logits, same)
    p = torch.sigmoid(logits)
    expected = -(torch.log(p[0]) + torch.log(1 - p[1]) + torch.log(1 - p[2])) / 3
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert torch.allclose(logits.grad, (p - same.float()).detach() / 3)
    with pytest.raises(LossError):
        PairClassificationLoss()(logits, same[:2])


def test_pair_errors():
    with pytest.raises(LossError, match="metric"):
        PairClassifier(metric="cosine")
    with pytest.raises(LossError, match="\\(P, 4\\)"):
        PairClassifier(dim=4)(torch.randn(2, 3), torch.randn(2, 3))
    with pytest.raises(LossError, match="margin"):
        ContrastiveLoss(margin=0)
