"""FaceNet's semi-hard negatives: farther than the positive, but inside the margin."""

from __future__ import annotations

import torch

from iznet.mining.base import GeneratorMixin, IndexTriplets, Miner, MiningError, label_masks, masked_argmin

__all__ = ["SemiHardMiner"]


class SemiHardMiner(GeneratorMixin, Miner):
    """For every ordered anchor–positive pair, one negative with d(a,p) < d(a,n) < d(a,p) + margin.

    That is 0 < [d(a,p) − d(a,n) + margin] < margin: the loss is active but the negative is not closer
    than the positive (FaceNet §3.2, eq. 4; seeds/002 with m' = m). Distances are squared by default,
    as in FaceNet (α = 0.2). Pairs with no semi-hard negative give no triplet (no fallback).

    Args:
        margin: α, > 0.
        squared: compare squared distances.
        choice: "hardest" (the closest semi-hard negative, as FaceNet-style implementations do) or
            "random" (uniform among the semi-hard negatives).
        seed: seed of the random choice (None: torch's global RNG).
    """

    name = "semi-hard"

    def __init__(self, margin: float = 0.2, squared: bool = True, choice: str = "hardest", seed: int | None = None):
        super().__init__(squared=squared)
        if not margin > 0:
            raise MiningError(f"semi-hard margin must be > 0, got {margin!r}")
        if choice not in ("hardest", "random"):
            raise MiningError(f"choice must be 'hardest' or 'random', got {choice!r}")
        self.margin = float(margin)
        self.choice = choice
        self._init_generator(seed)

    def mine_triplets(self, x: torch.Tensor, labels: torch.Tensor) -> IndexTriplets:
        pos, neg = label_masks(labels)
        d = self.distances(x)
        a, p = pos.nonzero(as_tuple=True)
        d_ap = d[a, p][:, None]  # (Q, 1)
        d_an = d[a]  # (Q, B)
        ok = neg[a] & (d_an > d_ap) & (d_an < d_ap + self.margin)
        if self.choice == "hardest":
            n, has = masked_argmin(d_an, ok)
        else:
            n, has = self.random_choice(ok)
        return a[has], p[has], n[has]

    def __repr__(self) -> str:
        return f"SemiHardMiner(margin={self.margin}, squared={self.squared}, choice={self.choice!r})"
