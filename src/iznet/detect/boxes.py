"""Face box labels: the CSV format, teacher labelling, and reconciling loose boxes with the tight convention.

**Box convention of this project: tight face boxes**, as YuNet draws them: from the brows (or the hair
line on a bald head) to the chin, cheek to cheek, about 0.8 times as wide as high (see
:mod:`iznet.data.crops`). faces-1750 comes with *loose head boxes* (hair and some margin, placed by hand
and sometimes off) and some faces unlabelled; :func:`reconcile` turns them into tight boxes.

CSV format (the format of faces-1750's ``boxes.csv``): a header ``image,x,y,w,h`` and one row per face,
``x, y`` the top-left corner and ``w, h`` the size in pixels; :func:`write_boxes_csv` adds a ``score``
column when scores are given, and writes an image with no face as a row with empty box fields so a
labelled-but-empty photo is told apart from one never looked at.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import torch
from iznet.detect.ops import box_iou

from iznet.errors import DataError, ImageError
from iznet.utils.io import atomic_path

_logger = logging.getLogger(__name__)


@dataclass
class BoxLabels:
    """Boxes of one image: ``boxes`` (K, 4) float32 ``x1, y1, x2, y2`` pixels; ``scores`` (K,) or None."""

    boxes: np.ndarray
    scores: np.ndarray | None = None


def read_boxes_csv(path: str | Path) -> dict[str, BoxLabels]:
    """Read a box CSV (``image,x,y,w,h[,score]``).

    Returns:
        image name → :class:`BoxLabels`, in file order (an image listed with empty box fields has K = 0).

    Raises:
        DataError: missing file, missing columns, or a value that is not a number (naming the line).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"box file {path} does not exist")
    out: dict[str, tuple[list, list]] = {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"image", "x", "y", "w", "h"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{path} lacks the column(s) {', '.join(sorted(missing))}; expected image,x,y,w,h[,score]")
        has_score = "score" in (reader.fieldnames or [])
        for line, row in enumerate(reader, start=2):
            boxes, scores = out.setdefault(row["image"], ([], []))
            if not (row["x"] or "").strip():
                continue
            try:
                x, y, w, h = (float(row[k]) for k in "xywh")
                s = float(row["score"]) if has_score and (row.get("score") or "").strip() else 1.0
            except ValueError:
                raise DataError(f"{path}, line {line}: box values must be numbers, got {row}") from None
            if w <= 0 or h <= 0:
                raise DataError(f"{path}, line {line}: box width and height must be positive, got {w} x {h}")
            boxes.append([x, y, x + w, y + h])
            scores.append(s)
    return {k: BoxLabels(np.asarray(b, np.float32).reshape(-1, 4), np.asarray(s, np.float32) if has_score else None)
            for k, (b, s) in out.items()}


def write_boxes_csv(path: str | Path, labels: Mapping[str, BoxLabels]) -> Path:
    """Write labels as ``image,x,y,w,h[,score]`` (atomically); see the module docstring."""
    with_scores = any(v.scores is not None for v in labels.values())
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "x", "y", "w", "h"] + (["score"] if with_scores else []))
        for name, lab in labels.items():
            if len(lab.boxes) == 0:
                w.writerow([name, "", "", "", ""] + ([""] if with_scores else []))
            for i, (x1, y1, x2, y2) in enumerate(np.asarray(lab.boxes, dtype=np.float64).reshape(-1, 4)):
                row = [name, f"{x1:.1f}", f"{y1:.1f}", f"{x2 - x1:.1f}", f"{y2 - y1:.1f}"]
                if with_scores:
                    row.append("" if lab.scores is None else f"{float(lab.scores[i]):.4f}")
                w.writerow(row)
    return Path(path)


def label_images(detector, paths: Iterable[Path], names: Iterable[str] | None = None,
                 progress: Callable[[int], None] | None = None) -> tuple[dict[str, BoxLabels], list[tuple[Path, str]]]:
    """Pseudo labels: run a detector (``detect(image) -> Detections``) over image files.

    Args:
        detector: e.g. :class:`iznet.detect.teachers.YuNetDetector`.
        paths: image files.
        names: how each image is named in the labels (default: the file name).
        progress: called with 1 after each file.

    Returns:
        ``(labels, skipped)``; ``skipped`` lists (path, reason) of unreadable images.
    """
    from iznet.data.images import load_image

    paths = [Path(p) for p in paths]
    names = list(names) if names is not None else [p.name for p in paths]
    labels: dict[str, BoxLabels] = {}
    skipped: list[tuple[Path, str]] = []
    for p, name in zip(paths, names):
        try:
            img = load_image(p)
        except ImageError as e:
            skipped.append((e.path, e.reason))
        else:
            d = detector.detect(img)
            boxes, scores = d.numpy()
            labels[name] = BoxLabels(boxes, scores)
        if progress is not None:
            progress(1)
    return labels, skipped


# --------------------------------------------------------------------------- loose -> tight


@dataclass(frozen=True)
class BoxMapping:
    """A loose box → tight box rule, relative to the loose box (median over matched pairs).

    tight centre = loose centre + (``dx`` · w, ``dy`` · h); tight size = (``sw`` · w, ``sh`` · h).
    """

    dx: float = 0.0
    dy: float = 0.0
    sw: float = 1.0
    sh: float = 1.0

    def apply(self, boxes: np.ndarray) -> np.ndarray:
        """(K, 4) loose ``x1, y1, x2, y2`` → (K, 4) tight boxes."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        cx = (b[:, 0] + b[:, 2]) / 2 + self.dx * w
        cy = (b[:, 1] + b[:, 3]) / 2 + self.dy * h
        tw, th = self.sw * w, self.sh * h
        return np.stack([cx - tw / 2, cy - th / 2, cx + tw / 2, cy + th / 2], 1).astype(np.float32)

    @classmethod
    def fit(cls, loose: np.ndarray, tight: np.ndarray) -> "BoxMapping":
        """Median rule from matched (K, 4) loose and tight boxes (K ≥ 1)."""
        loose, tight = np.asarray(loose, np.float64).reshape(-1, 4), np.asarray(tight, np.float64).reshape(-1, 4)
        if len(loose) == 0 or len(loose) != len(tight):
            raise DataError(f"cannot fit a box mapping from {len(loose)} loose and {len(tight)} tight boxes")
        lw, lh = loose[:, 2] - loose[:, 0], loose[:, 3] - loose[:, 1]
        dx = ((tight[:, 0] + tight[:, 2]) - (loose[:, 0] + loose[:, 2])) / 2 / lw
        dy = ((tight[:, 1] + tight[:, 3]) - (loose[:, 1] + loose[:, 3])) / 2 / lh
        sw = (tight[:, 2] - tight[:, 0]) / lw
        sh = (tight[:, 3] - tight[:, 1]) / lh
        return cls(float(np.median(dx)), float(np.median(dy)), float(np.median(sw)), float(np.median(sh)))


def containment(inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """(A, B) share of each ``inner`` box's area that lies inside each ``outer`` box."""
    a = torch.as_tensor(np.asarray(inner, np.float64).reshape(-1, 4))
    b = torch.as_tensor(np.asarray(outer, np.float64).reshape(-1, 4))
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = (a[:, 2:] - a[:, :2]).clamp(min=1e-9).prod(-1)
    return (inter / area[:, None]).numpy()


def match_teacher(given: np.ndarray, teacher: np.ndarray, min_containment: float = 0.6,
                  area_ratio: tuple[float, float] = (0.12, 1.3)) -> list[tuple[int, int]]:
    """Pair loose given boxes with teacher (tight) boxes.

    A teacher box can stand for a given box when at least ``min_containment`` of it lies inside the given
    box and its area is within ``area_ratio`` of the given box's; pairs are taken greedily by
    containment × IoU, each box used once.

    Returns:
        list of ``(given index, teacher index)``.
    """
    given, teacher = np.asarray(given, np.float64).reshape(-1, 4), np.asarray(teacher, np.float64).reshape(-1, 4)
    if len(given) == 0 or len(teacher) == 0:
        return []
    cont = containment(teacher, given)  # (T, G)
    iou = box_iou(torch.from_numpy(teacher), torch.from_numpy(given)).numpy()
    area_t = (teacher[:, 2] - teacher[:, 0]) * (teacher[:, 3] - teacher[:, 1])
    area_g = (given[:, 2] - given[:, 0]) * (given[:, 3] - given[:, 1])
    ratio = area_t[:, None] / area_g[None, :]
    ok = (cont >= min_containment) & (ratio >= area_ratio[0]) & (ratio <= area_ratio[1])
    score = np.where(ok, cont * (iou + 1e-3), -1.0)
    pairs: list[tuple[int, int]] = []
    used_t, used_g = set(), set()
    for flat in np.argsort(-score, axis=None, kind="stable"):
        t, g = divmod(int(flat), len(given))
        if score[t, g] < 0:
            break
        if t in used_t or g in used_g:
            continue
        used_t.add(t)
        used_g.add(g)
        pairs.append((g, t))
    return pairs


@dataclass
class ReconcileStats:
    """What :func:`reconcile_dataset` did, for the docs."""

    images: int = 0
    given: int = 0
    matched: int = 0
    mapped: int = 0
    added: int = 0
    mapping: dict | None = None
    median_iou_mapped_vs_teacher: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ReconciledImage:
    """Labels of one image after reconciliation.

    Attributes:
        boxes: (K, 4) tight boxes for training (teacher where matched, mapped given boxes, added faces).
        given_tight: (G, 4) the given boxes mapped by the fitted rule alone (teacher-independent; for tests).
        given: (G, 4) the given loose boxes.
        avoid: (A, 4) every region that may hold a face (given, teacher at any score): kept out of backgrounds.
    """

    boxes: np.ndarray
    given_tight: np.ndarray
    given: np.ndarray
    avoid: np.ndarray


def reconcile_dataset(given: Mapping[str, BoxLabels], teacher: Mapping[str, BoxLabels], add_score: float = 0.8,
                      fit_on: Iterable[str] | None = None) -> tuple[dict[str, ReconciledImage], ReconcileStats]:
    """Bring loose given boxes to the tight convention with a teacher's boxes.

    Per image: a given box with a matching teacher box (:func:`match_teacher`) takes the teacher box; an
    unmatched given box is mapped by the median :class:`BoxMapping` fitted on the matched pairs of
    ``fit_on`` images (all images by default); a teacher box with score ≥ ``add_score`` that overlaps no
    given box (containment < 0.3) is added as an unlabelled face.

    Args:
        given: image → loose boxes (faces-1750's ``boxes.csv``).
        teacher: image → teacher boxes with scores (``iznet label-boxes --teacher yunet:PATH``).
        add_score: teacher score needed to add a face nobody labelled.
        fit_on: images whose pairs fit the mapping (pass the training split to keep test images out).

    Returns:
        image → :class:`ReconciledImage`, and the counts.
    """
    fit_names = set(given) if fit_on is None else set(fit_on)
    pairs_loose, pairs_tight = [], []
    matches: dict[str, list[tuple[int, int]]] = {}
    for name, lab in given.items():
        t = teacher.get(name)
        matches[name] = match_teacher(lab.boxes, t.boxes) if t is not None else []
        if name in fit_names:
            for g, ti in matches[name]:
                pairs_loose.append(lab.boxes[g])
                pairs_tight.append(t.boxes[ti])
    mapping = BoxMapping.fit(np.array(pairs_loose), np.array(pairs_tight)) if pairs_loose else BoxMapping()
    stats = ReconcileStats(mapping=asdict(mapping))
    out: dict[str, ReconciledImage] = {}
    ious = []
    for name, lab in given.items():
        t = teacher.get(name) or BoxLabels(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
        t_scores = t.scores if t.scores is not None else np.ones(len(t.boxes), np.float32)
        mapped = mapping.apply(lab.boxes)
        boxes = mapped.copy()
        for g, ti in matches[name]:
            boxes[g] = t.boxes[ti]
            ious.append(float(box_iou(torch.from_numpy(mapped[g:g + 1]), torch.from_numpy(t.boxes[ti:ti + 1]))))
        used_t = {ti for _, ti in matches[name]}
        extra = []
        for ti in range(len(t.boxes)):
            if ti in used_t or t_scores[ti] < add_score:
                continue
            if len(lab.boxes) and containment(t.boxes[ti:ti + 1], lab.boxes).max() >= 0.3:
                continue
            extra.append(t.boxes[ti])
        if extra:
            boxes = np.concatenate([boxes, np.array(extra, np.float32)])
        avoid = np.concatenate([lab.boxes, t.boxes, boxes]).astype(np.float32).reshape(-1, 4)
        out[name] = ReconciledImage(boxes.astype(np.float32), mapped, lab.boxes.astype(np.float32), avoid)
        stats.images += 1
        stats.given += len(lab.boxes)
        stats.matched += len(matches[name])
        stats.mapped += len(lab.boxes) - len(matches[name])
        stats.added += len(extra)
    stats.median_iou_mapped_vs_teacher = float(np.median(ious)) if ious else 0.0
    _logger.info("reconciled %d images: %s", stats.images, stats.to_dict())
    return out, stats
