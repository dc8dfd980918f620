"""Losses for embedders: triplet, contrastive, DeepFace's pair classifier and a cosine-margin identity
classifier (CosFace); distances they share."""

from iznet.losses.base import LossError
from iznet.losses.contrastive import ContrastiveLoss, contrastive_loss
from iznet.utils.distances import pairwise_distances, row_distances, safe_sqrt
from iznet.losses.margin_softmax import CosFaceLoss
from iznet.losses.pair_classifier import PairClassificationLoss, PairClassifier
from iznet.losses.triplet import TripletLoss

__all__ = [
    "LossError",
    "TripletLoss",
    "ContrastiveLoss",
    "CosFaceLoss",
    "contrastive_loss",
    "PairClassifier",
    "PairClassificationLoss",
    "pairwise_distances",
    "row_distances",
    "safe_sqrt",
]
