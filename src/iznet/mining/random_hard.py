"""Random-hard negatives (seeds/002): a random negative whose triplet loss exceeds m''."""

from __future__ import annotations

import torch

from iznet.mining.base import GeneratorMixin, IndexTriplets, Miner, MiningError, label_masks

__all__ = ["RandomHardMiner"]


class RandomHardMiner(GeneratorMixin, Miner):
    """For every ordered anchor–positive pair, a uniformly random negative with
    d(a,p) − d(a,n) + margin > min_loss.

    seeds/002: "fix m'' and choose a random x^n where L = ‖f(a)−f(p)‖² − ‖f(a)−f(n)‖² + m > m''". With
    the default m'' = 0 that is any negative with a non-zero loss: between hard (the maximum loss) and
    semi-hard (loss below the margin). Pairs with no such negative give no triplet.

    Args:
        margin: the triplet margin m (α), >= 0.
        min_loss: m'', the loss a triplet must exceed.
        squared: compare squared distances.
        seed: seed of the random choice (None: torch's global RNG).
    """

    name = "random-hard"

    def __init__(self, margin: float = 0.2, min_loss: float = 0.0, squared: bool = True, seed: int | None = None):
        super().__init__(squared=squared)
        if not margin >= 0:
            raise MiningError(f"margin must be >= 0, got {margin!r}")
        self.margin = float(margin)
        self.min_loss = float(min_loss)
        self._init_generator(seed)

    def mine_triplets(self, x: torch.Tensor, labels: torch.Tensor) -> IndexTriplets:
        pos, neg = label_masks(labels)
        d = self.distances(x)
        a, p = pos.nonzero(as_tuple=True)
        loss = d[a, p][:, None] - d[a] + self.margin  # (Q, B)
        n, has = self.random_choice(neg[a] & (loss > self.min_loss))
        return a[has], p[has], n[has]

    def __repr__(self) -> str:
        return (f"RandomHardMiner(margin={self.margin}, min_loss={self.min_loss}, squared={self.squared})")
