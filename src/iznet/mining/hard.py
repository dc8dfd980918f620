"""Hardest-negative miners: per anchor–positive pair (FaceNet) and per anchor (batch-hard)."""

from __future__ import annotations

import torch

from iznet.mining.base import IndexTriplets, Miner, label_masks, masked_argmax, masked_argmin

__all__ = ["HardMiner", "BatchHardMiner"]


class HardMiner(Miner):
    """For every ordered anchor–positive pair, the hardest negative: argmin_n d(a, n).

    That negative maximises [d(a,p) − d(a,n) + α]₊ (seeds/002, "hard triplet mining") and does not
    depend on the positive, so it is found once per anchor. Pairs are kept even when that loss is 0
    (then no negative violates the margin); the loss counts them as inactive.
    """

    name = "hard"

    def mine_triplets(self, x: torch.Tensor, labels: torch.Tensor) -> IndexTriplets:
        pos, neg = label_masks(labels)
        hardest, has_neg = masked_argmin(self.distances(x), neg)  # (B,)
        a, p = (pos & has_neg[:, None]).nonzero(as_tuple=True)
        return a, p, hardest[a]


class BatchHardMiner(Miner):
    """Per anchor, its hardest positive (farthest) and hardest negative (closest): at most B triplets.

    Anchors without a positive or without a negative in the batch are skipped (Hermans et al. 2017).
    """

    name = "batch-hard"

    def mine_triplets(self, x: torch.Tensor, labels: torch.Tensor) -> IndexTriplets:
        pos, neg = label_masks(labels)
        d = self.distances(x)
        p, has_pos = masked_argmax(d, pos)
        n, has_neg = masked_argmin(d, neg)
        a = (has_pos & has_neg).nonzero(as_tuple=True)[0]
        return a, p[a], n[a]
