"""The small networks can learn: a few noisy images of 3-4 "people" become separable in a few optimiser steps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from iznet.models import create_model


def _people(n_people: int = 4, per_person: int = 2, size: int = 96, seed: int = 0):
    """Each person is a faint smooth colour pattern; each image adds a stronger random pattern and noise."""
    g = torch.Generator().manual_seed(seed)
    identity = F.interpolate(torch.rand(n_people, 3, 4, 4, generator=g) * 2 - 1, size=(size, size),
                             mode="bilinear", align_corners=False)
    images, labels = [], []
    for p in range(n_people):
        for _ in range(per_person):
            nuisance = F.interpolate(torch.rand(1, 3, 3, 3, generator=g) * 2 - 1, size=(size, size),
                                     mode="bilinear", align_corners=False)[0]
            noise = 0.3 * torch.randn(3, size, size, generator=g)
            images.append((0.35 * identity[p] + 0.6 * nuisance + noise).clamp(-1, 1))
            labels.append(p)
    return torch.stack(images), torch.tensor(labels)


def _batch_all_triplet_loss(emb: torch.Tensor, labels: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    d2 = torch.cdist(emb, emb).pow(2)
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(labels), dtype=torch.bool)
    valid = pos[:, :, None] & ~same[:, None, :]  # (anchor, positive, negative)
    return F.relu(d2[:, :, None] - d2[:, None, :] + margin)[valid].mean()


def _separation(emb: torch.Tensor, labels: torch.Tensor) -> tuple[float, float, float]:
    """Leave-one-out nearest-neighbour accuracy, mean same-person and mean other-person distance."""
    d = torch.cdist(emb, emb)
    eye = torch.eye(len(labels), dtype=torch.bool)
    same = labels[:, None] == labels[None, :]
    nn_acc = (labels[d.masked_fill(eye, float("inf")).argmin(1)] == labels).float().mean().item()
    return nn_acc, d[same & ~eye].mean().item(), d[~same].mean().item()


@pytest.mark.parametrize("name, n_people, steps, kw", [("nn4_small", 4, 15, {}), ("nn4", 3, 8, {}),
                                                     ("nn4_small", 4, 15, {"head": "gdc"})])
def test_overfits_a_tiny_set(name, n_people, steps, kw):
    torch.manual_seed(0)
    x, y = _people(n_people, per_person=2)
    model = create_model(name, **kw)
    with torch.no_grad():
        acc_before, _, _ = _separation(model.eval()(x), y)
    assert acc_before < 1.0  # the task is not already solved by a random network

    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        loss = _batch_all_triplet_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    # a few steps leave BN's running statistics short of the trained batch's: recompute them exactly ("precise BN")
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        model(x)
        acc, intra, inter = _separation(model.eval()(x), y)
    assert acc == 1.0
    assert intra < inter
