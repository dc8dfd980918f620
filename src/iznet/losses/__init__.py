"""Losses for embedders: triplet, contrastive, and DeepFace's pair classifier; distances they share."""

from iznet.losses.base import LossError
from iznet.losses.contrastive import ContrastiveLoss, contrastive_loss
from iznet.losses.distances import pairwise_distances, row_distances, safe_sqrt
from iznet.losses.pair_classifier import PairClassificationLoss, PairClassifier
from iznet.losses.triplet import TripletLoss

__all__ = [
    "LossError",
    "TripletLoss",
    "ContrastiveLoss",
    "contrastive_loss",
    "PairClassifier",
    "PairClassificationLoss",
    "pairwise_distances",
    "row_distances",
    "safe_sqrt",
]
