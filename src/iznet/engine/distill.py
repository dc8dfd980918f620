"""A teacher's descriptors as a second training signal (``iznet train --distill FILE``).

A teacher network (dlib's ResNet, ``scripts/teacher_descriptors.py``) describes every training image once;
the student keeps its own embedding space and learns the teacher's *similarities*: within each batch, the
cosine between two student embeddings is pulled towards the cosine between the two teacher descriptors
(similarity-preserving distillation). The teacher's descriptors are first centred on their mean over the
training images and scaled to unit length: dlib's descriptors all lie in a narrow cone (the cosine between two
different people's is about 0.8), and centring spreads them the way the student's unit embeddings are spread
(different people near 0), so the student's triplet and identity terms and the teacher's agree on the scale.

Only the training images' descriptors are used (the mean too); development people are never looked at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from iznet.errors import DataError

TEACHER_FORMAT = "iznet-teacher-v1"


def load_teacher(path: str | Path, paths: Sequence[str]) -> torch.Tensor:
    """The teacher's descriptors of the images ``paths`` (a pack's relative paths), in that order.

    Returns:
        float32 (len(paths), D).

    Raises:
        DataError: not a teacher file, or images it has no descriptor of (named, with what to run).
    """
    from iznet.utils.checkpoint import safe_load

    path = Path(path)
    obj = safe_load(path, "teacher file", DataError, "make it with scripts/teacher_descriptors.py")
    if not isinstance(obj, dict) or obj.get("format") != TEACHER_FORMAT:
        raise DataError(f"{path} is not a teacher file (expected format {TEACHER_FORMAT!r}); make it with "
                        "scripts/teacher_descriptors.py")
    desc = obj["descriptors"].float()
    where = {p: i for i, p in enumerate(obj["paths"])}
    missing = [p for p in paths if p not in where]
    if missing:
        raise DataError(f"{path} has no descriptor of {len(missing)} of the {len(paths)} training images (first: "
                        f"{missing[0]}); it was made from another pack: run scripts/teacher_descriptors.py on the "
                        "training pack's box crops")
    return desc[torch.as_tensor([where[p] for p in paths], dtype=torch.int64)]


def teacher_targets(descriptors: torch.Tensor, train_indices: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Descriptors centred on their mean over ``train_indices`` and scaled to unit length (all rows).

    A row equal to the mean (no direction left) stays zero; its similarities are then all 0.
    """
    d = descriptors.float()
    idx = torch.as_tensor(np.asarray(train_indices), dtype=torch.int64)
    if len(idx) == 0:
        raise DataError("no training image to centre the teacher's descriptors on")
    mean = d[idx].double().mean(0).float()
    return F.normalize(d - mean, dim=1)


def similarity_distill_loss(emb: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over ordered pairs i != j of ``(cos(e_i, e_j) - t_i . t_j)^2``.

    Args:
        emb: (B, D) student embeddings (scaled to unit length here).
        targets: (B, D') unit teacher targets of the same images (:func:`teacher_targets`).
    """
    if emb.shape[0] != targets.shape[0]:
        raise ValueError(f"{emb.shape[0]} embeddings and {targets.shape[0]} teacher targets")
    b = emb.shape[0]
    if b < 2:
        return emb.sum() * 0.0
    e = F.normalize(emb, dim=1)
    s = e @ e.t()
    t = (targets @ targets.t()).to(s.dtype)
    off = ~torch.eye(b, dtype=torch.bool, device=emb.device)
    return (s - t)[off].pow(2).mean()


def procrustes_map(emb: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The orthogonal map ``R`` (D x D') that best carries unit embeddings onto teacher targets.

    Minimises ``||normalize(emb) @ R - targets||`` over matrices with orthonormal rows or columns (orthogonal
    Procrustes: ``R = U V^T`` for the SVD ``U S V^T`` of ``normalize(emb)^T targets``). Rows of ``emb`` that
    are all zero are left out.

    Args:
        emb: (N, D) embeddings of the training images by the starting network.
        targets: (N, D') their teacher targets (:func:`teacher_targets`).
    """
    if emb.shape[0] != targets.shape[0] or emb.shape[0] == 0:
        raise ValueError(f"{emb.shape[0]} embeddings and {targets.shape[0]} teacher targets")
    e = F.normalize(emb.double(), dim=1)
    u, _, vh = torch.linalg.svd(e.t() @ targets.double(), full_matrices=False)
    return (u @ vh).float()


def feature_distill_loss(emb: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``1 - cos(W e_i, t_i)``: each unit embedding, through the linear map ``W``
    (D' x D, a ``nn.Linear(D, D', bias=False)`` weight), towards its own image's teacher target."""
    if emb.shape[0] != targets.shape[0]:
        raise ValueError(f"{emb.shape[0]} embeddings and {targets.shape[0]} teacher targets")
    p = F.normalize(emb, dim=1) @ weight.t().to(emb.dtype)
    return (1.0 - F.cosine_similarity(p, targets.to(p.dtype), dim=1, eps=1e-12)).mean()
