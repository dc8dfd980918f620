"""Every valid triplet in the batch."""

from __future__ import annotations

import torch

from iznet.mining.base import IndexTriplets, Miner, label_masks

__all__ = ["AllTripletsMiner"]


class AllTripletsMiner(Miner):
    """All (a, p, n) with a ≠ p of one label and n of another: Σ_i n_i(n_i − 1)(B − n_i) triplets.

    Anchor–positive pairs are ordered (both (a, p) and (p, a)), since the triplet loss measures the
    negative from the anchor. Memory is O(Q·B) for Q anchor–positive pairs.
    """

    name = "all"

    def mine_triplets(self, x: torch.Tensor, labels: torch.Tensor) -> IndexTriplets:
        pos, neg = label_masks(labels)
        a, p = pos.nonzero(as_tuple=True)
        row, n = neg[a].nonzero(as_tuple=True)
        return a[row], p[row], n
