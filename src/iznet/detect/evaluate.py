"""Detection metrics: AP at an IoU threshold (all-point interpolation) and recall at IoU thresholds.

Matching (PASCAL VOC rule): within an image, detections are taken from the highest score down; each
takes the unmatched ground-truth box it overlaps most, if that IoU reaches the threshold (a true
positive), else it is a false positive. A ground-truth box is matched at most once.

AP is the area under the precision-recall curve of all detections of all images ranked by score, with
precision made monotone (each recall level gets the best precision at that recall or beyond) and summed
over every recall step (all-point interpolation, VOC 2010+).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from iznet.detect.ops import box_iou


def _as_np(x, cols: int | None = None) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    return a.reshape(-1, cols) if cols else a.reshape(-1)


def match_image(boxes, scores, gt, iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Match one image's detections to its ground truth.

    Args:
        boxes: (P, 4) detected ``x1, y1, x2, y2``; scores: (P,); gt: (G, 4) true boxes.
        iou_threshold: minimum IoU of a true positive.

    Returns:
        ``tp`` (P,) bool in the input order, and ``matched`` (G,) bool.
    """
    boxes, scores, gt = _as_np(boxes, 4), _as_np(scores), _as_np(gt, 4)
    tp = np.zeros(len(boxes), dtype=bool)
    matched = np.zeros(len(gt), dtype=bool)
    if len(boxes) == 0 or len(gt) == 0:
        return tp, matched
    iou = box_iou(torch.from_numpy(boxes), torch.from_numpy(gt)).numpy()
    for i in np.argsort(-scores, kind="stable"):
        cand = np.where(matched, -1.0, iou[i])
        j = int(np.argmax(cand))
        if cand[j] >= iou_threshold:
            tp[i] = True
            matched[j] = True
    return tp, matched


def average_precision(detections: Sequence[tuple], ground_truth: Sequence, iou_threshold: float = 0.5) -> float:
    """AP over a dataset.

    Args:
        detections: per image ``(boxes (P, 4), scores (P,))``.
        ground_truth: per image (G, 4) true boxes.
        iou_threshold: IoU of a true positive.

    Returns:
        AP in [0, 1]; 0.0 when there is no ground truth at all.

    Example:
        >>> average_precision([([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8])], [[[0, 0, 10, 10]]])
        1.0
    """
    if len(detections) != len(ground_truth):
        raise ValueError(f"{len(detections)} detection lists but {len(ground_truth)} ground-truth lists")
    all_scores, all_tp = [], []
    n_gt = 0
    for (boxes, scores), gt in zip(detections, ground_truth):
        tp, _ = match_image(boxes, scores, gt, iou_threshold)
        all_scores.append(_as_np(scores))
        all_tp.append(tp)
        n_gt += len(_as_np(gt, 4))
    if n_gt == 0:
        return 0.0
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    tp = np.concatenate(all_tp) if all_tp else np.zeros(0, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    tp = tp[order]
    ctp = np.cumsum(tp)
    recall = ctp / n_gt
    precision = ctp / np.arange(1, len(tp) + 1)
    # all-point interpolation: envelope, then sum precision over recall steps
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[1.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.where(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def recall_at(detections: Sequence[tuple], ground_truth: Sequence, iou_threshold: float) -> float:
    """Share of true boxes matched by a detection at IoU ≥ ``iou_threshold`` (0.0 with no ground truth)."""
    hit = total = 0
    for (boxes, scores), gt in zip(detections, ground_truth):
        _, matched = match_image(boxes, scores, gt, iou_threshold)
        hit += int(matched.sum())
        total += len(matched)
    return hit / total if total else 0.0


@dataclass
class DetectionMetrics:
    """Numbers reported for a detector on a set.

    Attributes:
        ap50: AP at IoU 0.5 (ranked detections down to the low threshold the detector was run at).
        recall30, recall50: recall at IoU 0.3 / 0.5 of the detections at the operating threshold.
        precision50: precision at IoU 0.5 of the detections at the operating threshold.
        images, faces, detections: counts (detections at the operating threshold).
    """

    ap50: float
    recall30: float
    recall50: float
    precision50: float
    images: int
    faces: int
    detections: int

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_detections(ranked: Sequence[tuple], ground_truth: Sequence,
                        operating_threshold: float = 0.3, max_detections: int | None = None) -> DetectionMetrics:
    """AP@0.5 on ``ranked`` detections; recall@0.3/0.5 and precision on those at ``operating_threshold``.

    Args:
        ranked: per image ``(boxes (P, 4), scores (P,))`` from a run at a low confidence threshold.
        ground_truth: per image (G, 4).
        operating_threshold: the detector's own confidence threshold for recall and precision.
        max_detections: also keep at most this many boxes per image at the operating point.
    """
    kept = operating_point(ranked, operating_threshold, max_detections)
    n_det = sum(len(s) for _, s in kept)
    tp50 = sum(int(match_image(b, s, g, 0.5)[0].sum()) for (b, s), g in zip(kept, ground_truth))
    return DetectionMetrics(
        ap50=average_precision(ranked, ground_truth, 0.5),
        recall30=recall_at(kept, ground_truth, 0.3),
        recall50=recall_at(kept, ground_truth, 0.5),
        precision50=tp50 / n_det if n_det else 0.0,
        images=len(ground_truth),
        faces=sum(len(_as_np(g, 4)) for g in ground_truth),
        detections=n_det,
    )


def operating_point(ranked: Sequence[tuple], threshold: float, max_detections: int | None = None) -> list[tuple]:
    """Per image, the detections a detector keeps at ``threshold`` (at most ``max_detections``), by score."""
    kept = []
    for boxes, scores in ranked:
        b, s = _as_np(boxes, 4), _as_np(scores)
        order = np.argsort(-s, kind="stable")
        order = order[s[order] >= threshold]
        if max_detections is not None:
            order = order[:max_detections]
        kept.append((b[order], s[order]))
    return kept


# --------------------------------------------------------------------------- false faces

#: The kinds of a detection that matches no true face (:func:`false_face_kinds`).
FALSE_FACE_KINDS = ("loose", "unlabelled face", "no face")


def _iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return box_iou(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)).numpy()


def unlabelled_faces(teacher: np.ndarray, truth: np.ndarray, cover: float = 0.3) -> np.ndarray:
    """The teacher's boxes (K, 4) that no true box overlaps at IoU >= ``cover``: faces the labels lack."""
    teacher = _as_np(teacher, 4)
    if len(teacher) == 0:
        return teacher
    return teacher[_iou_np(teacher, _as_np(truth, 4)).max(axis=1, initial=0.0) < cover]


def false_face_kinds(boxes: np.ndarray, scores: np.ndarray, truth: np.ndarray,
                     unlabelled: np.ndarray) -> list[str | None]:
    """Per detection (in the input order): None for a true face (the VOC matching of :func:`match_image` at
    IoU 0.5), else ``"loose"`` (IoU 0.3-0.5 with a true face), ``"unlabelled face"`` (IoU >= 0.5 with one of
    ``unlabelled``) or ``"no face"``."""
    boxes, truth, unlabelled = _as_np(boxes, 4), _as_np(truth, 4), _as_np(unlabelled, 4)
    tp, _ = match_image(boxes, scores, truth, 0.5)
    near = _iou_np(boxes, truth).max(axis=1, initial=0.0)
    on_unlabelled = _iou_np(boxes, unlabelled).max(axis=1, initial=0.0)
    return [None if t else "loose" if n >= 0.3 else "unlabelled face" if u >= 0.5 else "no face"
            for t, n, u in zip(tp, near, on_unlabelled)]


def ap_ignoring(ranked: Sequence[tuple], ground_truth: Sequence, ignore: Sequence,
                iou_threshold: float = 0.5) -> float:
    """AP where detections on an ignored box (IoU >= 0.5 with it and not with a true face) leave the ranking:
    faces the labels lack count neither way."""
    kept = []
    for (boxes, scores), gt, ign in zip(ranked, ground_truth, ignore):
        b, s, ign = _as_np(boxes, 4), _as_np(scores), _as_np(ign, 4)
        drop = (_iou_np(b, ign).max(axis=1, initial=0.0) >= 0.5) & (_iou_np(b, _as_np(gt, 4)).max(
            axis=1, initial=0.0) < 0.5)
        kept.append((b[~drop], s[~drop]))
    return average_precision(kept, ground_truth, iou_threshold)


def false_faces(kept: Sequence[tuple], ground_truth: Sequence, unlabelled: Sequence) -> dict[str, int]:
    """Counts of :data:`FALSE_FACE_KINDS` over the detections a detector keeps (:func:`operating_point`)."""
    counts = {k: 0 for k in FALSE_FACE_KINDS}
    for (b, s), gt, un in zip(kept, ground_truth, unlabelled):
        for kind in false_face_kinds(b, s, gt, un):
            if kind is not None:
                counts[kind] += 1
    return counts
