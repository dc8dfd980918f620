"""Evaluation: verification metrics, identification, and the LFW / identification protocols.

>>> from iznet.eval import kfold_accuracy, closed_set_identification, evaluate_lfw
"""

from iznet.eval.identification import (PROTOTYPES, build_prototypes, centroid, closed_set_identification,
                                       first_k_split, medoid_index, nearest_prototype, open_set_rejection,
                                       pairwise_distances, threshold_for_far)
from iznet.eval.protocols import PROTOCOLS, evaluate_identification, evaluate_lfw, load_identity_images
from iznet.eval.verification import (MetricInputError, VerificationResult, accuracy_at, auc, best_threshold, eer,
                                     kfold_accuracy, kfold_val_at_far, roc, split_report, val_at_far,
                                     verification_report)

__all__ = [
    "PROTOCOLS",
    "PROTOTYPES",
    "MetricInputError",
    "VerificationResult",
    "accuracy_at",
    "auc",
    "best_threshold",
    "build_prototypes",
    "centroid",
    "closed_set_identification",
    "eer",
    "evaluate_identification",
    "evaluate_lfw",
    "first_k_split",
    "kfold_accuracy",
    "kfold_val_at_far",
    "load_identity_images",
    "medoid_index",
    "nearest_prototype",
    "open_set_rejection",
    "pairwise_distances",
    "roc",
    "split_report",
    "threshold_for_far",
    "val_at_far",
    "verification_report",
]
