"""Parity with pytorch-metric-learning where it has the same definition (skipped when it is not installed).

PML is not a dependency; ``pip install pytorch-metric-learning`` to run these.
"""

from __future__ import annotations

import pytest
import torch

from iznet.losses import TripletLoss
from iznet.mining import BatchHardMiner

pml = pytest.importorskip("pytorch_metric_learning", reason="pytorch-metric-learning is not installed")


def batch(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(8).repeat_interleave(4)
    x = torch.nn.functional.normalize(torch.randn(32, 16, generator=g, dtype=torch.float64), dim=1)
    return x, labels


@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_triplet_loss_over_all_triplets_matches_pml(squared, seed):
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.losses import TripletMarginLoss

    x, labels = batch(seed)
    ref = TripletMarginLoss(margin=0.2, distance=LpDistance(normalize_embeddings=False, power=2 if squared else 1))
    # PML's default reducer averages over the non-zero losses: our "mean_active"
    ours = TripletLoss(margin=0.2, squared=squared, reduction="mean_active")
    assert ours(x, labels).item() == pytest.approx(ref(x, labels).item(), rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_batch_hard_miner_matches_pml(seed):
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.miners import BatchHardMiner as PMLBatchHard

    x, labels = batch(seed)
    ref = PMLBatchHard(distance=LpDistance(normalize_embeddings=False))(x, labels)
    ours = BatchHardMiner()(x, labels)
    assert set(zip(*[t.tolist() for t in ours])) == set(zip(*[t.tolist() for t in ref]))
