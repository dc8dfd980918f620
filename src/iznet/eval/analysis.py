"""The write-up's three analysis tools as numbers, plus accuracy on the same labelled set.

Given the embeddings of a labelled set (one row per image, one label per row) this module computes:

* **intra-person distances**: for each person, the Euclidean distances of every pair of that person's
  embeddings (what the write-up draws as one box per member);
* **prototype distance tables**: each person's medoid (a real embedding of theirs, see
  :func:`iznet.recognize.prototypes.medoid`) and centroid (renormalised mean), and the (P, P) table of
  Euclidean distances between them (the write-up's Tables 2-6 are medoid tables);
* **a verdict per person**: the write-up reads the boxplot and the medoid table together ("the maximum
  dispersion of her embeddings is 1.2 while the medoid distances can be as low as 1.06 and 0.79: the
  clusters may overlap"). Here that reading is made mechanical: a person is *separated* when every other
  person's medoid lies farther from their medoid than the upper whisker of their own intra-distance
  boxplot, else they *overlap with* each person whose medoid is that close (nearest first). The whisker
  is matplotlib's default (the drawn one): the largest intra distance not above Q3 + 1.5 IQR, with
  quartiles by linear interpolation (``np.percentile``), so the verdict agrees with the drawn boxplot;
* **accuracy**: closed-set rank-1 with the first ``k`` images of each person enrolled
  (:func:`iznet.eval.identification.closed_set_identification`), and verification (ROC, AUC, 10-fold
  accuracy, EER) on same/different pairs drawn from the set (:mod:`iznet.eval.verification`).

Everything here is numpy on the embeddings; it never embeds images and never touches files, except
:func:`summarize_run`, which reads the JSON files of a training run folder it is handed.

>>> import numpy as np
>>> emb = np.eye(3, dtype=np.float32)[[0, 0, 1, 1, 2, 2]]
>>> r = analyze_embeddings(emb, [0, 0, 1, 1, 2, 2], ["a", "b", "c"], enroll=1)
>>> [v.verdict for v in r.verdicts]
['separated', 'separated', 'separated']
"""

from __future__ import annotations

import dataclasses
import json
import logging
from math import comb
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from iznet.errors import IznetError
from iznet.recognize.prototypes import pairwise_distances

_logger = logging.getLogger(__name__)

WHIS = 1.5
"""Whisker reach in IQRs beyond the quartiles (matplotlib's default ``whis``)."""


class AnalysisError(IznetError):
    """Embeddings and labels that cannot be analysed, or a run folder that cannot be summarised."""


# ------------------------------------------------------------------------------------------ checks
def _check(embeddings, labels, classes: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    emb = np.asarray(embeddings, dtype=np.float64)
    lab = np.asarray(labels).reshape(-1)
    if emb.ndim != 2 or emb.shape[0] == 0:
        raise AnalysisError(f"embeddings must be a non-empty (N, D) array; got shape {emb.shape}")
    if emb.shape[0] != lab.size:
        raise AnalysisError(f"{emb.shape[0]} embeddings but {lab.size} labels; give one label per embedding")
    if not np.isfinite(emb).all():
        raise AnalysisError("embeddings contain NaN or inf; check the embedder")
    if not np.issubdtype(lab.dtype, np.integer):
        raise AnalysisError("labels must be integers 0..P-1; use labels_from_names() for string names")
    n_classes = int(lab.max()) + 1 if classes is None else len(classes)
    if lab.min() < 0 or lab.max() >= n_classes:
        raise AnalysisError(f"labels must lie in 0..{n_classes - 1} (one per class name)")
    names = [str(i) for i in range(n_classes)] if classes is None else [str(c) for c in classes]
    return emb, lab.astype(np.int64), names


def labels_from_names(names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Integer labels (N,) and sorted class names from one name per row."""
    classes = sorted({str(n) for n in names})
    lut = {c: i for i, c in enumerate(classes)}
    return np.array([lut[str(n)] for n in names], dtype=np.int64), classes


# ------------------------------------------------------------------------------- intra distances
def intra_distances(embeddings, labels, n_classes: int | None = None) -> list[np.ndarray]:
    """Pairwise Euclidean distances within each person.

    Args:
        embeddings: (N, D).
        labels: (N,) integers 0..P-1.
        n_classes: P (default: ``max(labels) + 1``).

    Returns:
        P arrays; array ``p`` holds the C(n_p, 2) distances of the unordered pairs of person ``p``'s
        embeddings (empty when the person has fewer than two images).
    """
    emb, lab, names = _check(embeddings, labels, None if n_classes is None else [str(i) for i in range(n_classes)])
    out = []
    for p in range(len(names)):
        e = emb[lab == p]
        d = pairwise_distances(e, e)
        out.append(d[np.triu_indices(len(e), 1)])
    return out


@dataclasses.dataclass
class BoxStats:
    """One box of a boxplot, as matplotlib draws it by default (``whis=1.5``).

    Attributes:
        n: number of values (pairs).
        mean, median, q1, q3: the statistics (quartiles by linear interpolation).
        whisker_low, whisker_high: the drawn whisker ends: the most extreme values within
            ``q1 - 1.5 IQR`` and ``q3 + 1.5 IQR`` (never inside the box).
        limit_high: ``q3 + 1.5 IQR`` itself.
        max: the largest value (an outlier when above ``whisker_high``).
        n_outliers: values beyond either whisker.
    """

    n: int
    mean: float
    median: float
    q1: float
    q3: float
    whisker_low: float
    whisker_high: float
    limit_high: float
    max: float
    n_outliers: int


def box_stats(values, whis: float = WHIS) -> BoxStats | None:
    """Boxplot statistics of ``values`` (M,), the same numbers ``matplotlib.cbook.boxplot_stats`` gives.

    Returns None for an empty array.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return None
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    iqr = q3 - q1
    lo_lim, hi_lim = q1 - whis * iqr, q3 + whis * iqr
    inside_hi = x[x <= hi_lim]
    w_hi = q3 if inside_hi.size == 0 or inside_hi.max() < q3 else float(inside_hi.max())
    inside_lo = x[x >= lo_lim]
    w_lo = q1 if inside_lo.size == 0 or inside_lo.min() > q1 else float(inside_lo.min())
    return BoxStats(n=int(x.size), mean=float(x.mean()), median=float(med), q1=float(q1), q3=float(q3),
                    whisker_low=float(w_lo), whisker_high=float(w_hi), limit_high=float(hi_lim),
                    max=float(x.max()), n_outliers=int(np.sum((x < w_lo) | (x > w_hi))))


# ------------------------------------------------------------------------------------ prototypes
def person_medoids(embeddings, labels, n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each person's medoid (the project's one definition, :func:`iznet.recognize.prototypes.medoid`).

    Returns:
        ``(vectors, indices)``: (P, D) float32 medoid rows and (P,) int64 row index of each medoid in
        ``embeddings``.
    """
    from iznet.recognize.prototypes import medoid

    emb, lab, names = _check(embeddings, labels, None if n_classes is None else [str(i) for i in range(n_classes)])
    vecs, idx = [], []
    for p in range(len(names)):
        rows = np.flatnonzero(lab == p)
        if rows.size == 0:
            raise AnalysisError(f"class {names[p]!r} has no embeddings")
        i, v = medoid(emb[rows])
        vecs.append(v)
        idx.append(rows[i])
    return np.stack(vecs), np.asarray(idx, dtype=np.int64)


def person_centroids(embeddings, labels, n_classes: int | None = None) -> np.ndarray:
    """Each person's centroid (:func:`iznet.recognize.prototypes.centroid`): (P, D) float32 unit rows."""
    from iznet.recognize.prototypes import centroid

    emb, lab, names = _check(embeddings, labels, None if n_classes is None else [str(i) for i in range(n_classes)])
    out = []
    for p in range(len(names)):
        rows = lab == p
        if not rows.any():
            raise AnalysisError(f"class {names[p]!r} has no embeddings")
        out.append(centroid(emb[rows]))
    return np.stack(out)


def distance_table(prototypes) -> np.ndarray:
    """(P, P) Euclidean distances between prototype rows (P, D); the diagonal is exactly 0."""
    protos = np.asarray(prototypes, dtype=np.float64)
    t = pairwise_distances(protos, protos)
    np.fill_diagonal(t, 0.0)
    return t


# ------------------------------------------------------------------------------------- verdicts
@dataclasses.dataclass
class PersonVerdict:
    """How one person's cluster sits among the others.

    Attributes:
        name: the person.
        n_images: their embeddings.
        whisker: upper whisker of their intra-distance boxplot (None with fewer than two images).
        nearest: the person whose medoid is nearest to theirs (None when alone).
        nearest_distance: that medoid distance.
        overlaps: ``(name, medoid distance)`` of every person whose medoid is within the whisker,
            nearest first.
        verdict: ``"separated"``, ``"overlaps with A, B"`` (the three nearest, then ``"and N more"``), or
            ``"too few images"``.
    """

    name: str
    n_images: int
    whisker: float | None
    nearest: str | None
    nearest_distance: float | None
    overlaps: list[tuple[str, float]]
    verdict: str

    @property
    def separated(self) -> bool:
        return self.verdict == "separated"

    def line(self) -> str:
        """One sentence, e.g. ``"Ann: overlaps with Bo (0.61): medoid distance <= whisker 0.93"``."""
        if self.whisker is None:
            return f"{self.name}: too few images ({self.n_images}) for a boxplot"
        if self.nearest is None:
            return f"{self.name}: the only person (whisker {self.whisker:.2f})"
        if self.separated:
            return (f"{self.name}: separated (nearest medoid {self.nearest} at {self.nearest_distance:.2f} "
                    f"> whisker {self.whisker:.2f})")
        ov = ", ".join(f"{n} ({d:.2f})" for n, d in self.overlaps[:5])
        more = f" and {len(self.overlaps) - 5} more" if len(self.overlaps) > 5 else ""
        return f"{self.name}: overlaps with {ov}{more}: medoid distance <= whisker {self.whisker:.2f}"


def verdicts(box: Sequence[BoxStats | None], medoid_table: np.ndarray, names: Sequence[str],
             counts: Sequence[int]) -> list[PersonVerdict]:
    """Compare each person's upper whisker with the distances from their medoid to the other medoids.

    Args:
        box: per-person intra-distance box statistics (None for fewer than two images).
        medoid_table: (P, P) medoid distance table.
        names: P person names.
        counts: P image counts.
    """
    table = np.asarray(medoid_table, dtype=np.float64)
    out = []
    for p, name in enumerate(names):
        others = [q for q in range(len(names)) if q != p]
        near = min(others, key=lambda q: table[p, q]) if others else None
        near_d = float(table[p, near]) if near is not None else None
        b = box[p]
        if b is None:
            out.append(PersonVerdict(str(name), int(counts[p]), None, None if near is None else str(names[near]),
                                     near_d, [], "too few images"))
            continue
        w = b.whisker_high
        close = sorted((q for q in others if table[p, q] <= w), key=lambda q: table[p, q])
        ov = [(str(names[q]), float(table[p, q])) for q in close]
        text = "separated"
        if ov:
            more = f" and {len(ov) - 3} more" if len(ov) > 3 else ""
            text = "overlaps with " + ", ".join(n for n, _ in ov[:3]) + more
        out.append(PersonVerdict(str(name), int(counts[p]), float(w), None if near is None else str(names[near]),
                                 near_d, ov, text))
    return out


# -------------------------------------------------------------------------------------- accuracy
def draw_pairs(labels, max_pairs: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Equal numbers of same-person and different-person pairs over a labelled set.

    ``n = min(max_pairs // 2, same pairs in the set, different pairs in the set)`` of each kind. A kind
    with at most ``50 n`` pairs is enumerated and ``n`` of them are chosen without replacement (all of
    them when there are exactly ``n``); a larger kind is drawn uniformly with replacement by
    :class:`iznet.sampling.pairs.UniformPairSampler` (repeats are then under 1%). Equal numbers keep
    the accuracy of a threshold meaningful (with 24 people, 96% of all pairs are different-person
    pairs, and "always different" would score 96%).

    Returns:
        ``(pairs (2n, 2) int64, same (2n,) bool, how)``; ``how`` says what was done for each kind. The
        pairs are in a seeded random order, so contiguous folds mix both kinds.

    Raises:
        AnalysisError: the set has no same-person pair or no different-person pair.
    """
    from iznet.sampling.pairs import UniformPairSampler

    lab = np.asarray(labels).reshape(-1)
    sizes = np.bincount(lab) if lab.size else np.zeros(0, np.int64)
    n_pos = int(sum(comb(int(k), 2) for k in sizes))
    n_neg = int((lab.size ** 2 - int((sizes.astype(np.int64) ** 2).sum())) // 2)
    if n_pos == 0 or n_neg == 0:
        raise AnalysisError(f"the set has {n_pos} same-person and {n_neg} different-person pairs; "
                            "verification needs both (at least two people, one with two images)")
    n = min(max(1, int(max_pairs) // 2), n_pos, n_neg)
    rng = np.random.default_rng(seed)
    parts, how = [], []
    for want_same, total in ((True, n_pos), (False, n_neg)):
        kind = "same" if want_same else "different"
        if total <= 50 * n:
            if want_same:
                chunks = []
                for c in range(sizes.size):
                    rows = np.flatnonzero(lab == c)
                    i, j = np.triu_indices(rows.size, 1)
                    chunks.append(np.stack([rows[i], rows[j]], 1))
                every = np.concatenate(chunks)
            else:  # total <= 50 n <= 50 max_pairs: the set is small enough to list every pair
                i, j = np.triu_indices(lab.size, 1)
                keep = lab[i] != lab[j]
                every = np.stack([i[keep], j[keep]], 1)
            pick = every if total == n else every[rng.choice(total, size=n, replace=False)]
            how.append(f"all {total} {kind}" if total == n else f"{n} of {total} {kind} (without replacement)")
        else:
            sampler = UniformPairSampler(lab, positive_fraction=0.5, seed=int(rng.integers(2**31)))
            pick = sampler.sample_positive(n) if want_same else sampler.sample_negative(n)
            how.append(f"{n} of {total} {kind} (uniform, with replacement)")
        parts.append(pick.astype(np.int64))
    pairs = np.concatenate(parts)
    same = np.repeat([True, False], n)
    perm = rng.permutation(2 * n)
    return pairs[perm], same[perm], ", ".join(how)


def verification_numbers(embeddings, labels, max_pairs: int = 20000, seed: int = 0,
                         folds: int = 10) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Verification on pairs drawn from the set (:func:`draw_pairs`).

    Returns:
        ``(numbers, dist, same)``: numbers holds ``n_pairs``, ``n_same``, ``n_different``, ``pairs``
        (how they were drawn), ``auc``, ``eer``, ``accuracy`` (k-fold: threshold from the other folds),
        ``accuracy_std``, ``best_threshold`` and ``best_accuracy`` (on all the pairs: optimistic),
        ``mean_same``, ``mean_different``; ``dist`` (M,) and ``same`` (M,) for an ROC figure.
    """
    from iznet.eval.verification import best_threshold, verification_report

    emb = np.asarray(embeddings, dtype=np.float64)
    pairs, same, how = draw_pairs(labels, max_pairs, seed)
    dist = np.linalg.norm(emb[pairs[:, 0]] - emb[pairs[:, 1]], axis=1)
    rep = verification_report(dist, same, folds=min(folds, dist.size), protocol="pairs from the analysed set")
    thr, best = best_threshold(dist, same)
    return ({"n_pairs": int(dist.size), "n_same": int(same.sum()), "n_different": int((~same).sum()),
             "pairs": how, "auc": rep.auc, "eer": rep.eer, "accuracy": rep.accuracy,
             "accuracy_std": rep.accuracy_std, "folds": len(rep.fold_accuracy),
             "best_threshold": thr, "best_accuracy": best,
             "mean_same": float(dist[same].mean()), "mean_different": float(dist[~same].mean())},
            dist, same)


# ------------------------------------------------------------------------------------- the result
@dataclasses.dataclass
class AnalysisResult:
    """Every number of one analysis of a labelled embedding set.

    Attributes:
        names: P person names (label order).
        counts: P image counts.
        intra: P intra-distance box statistics (None for a person with fewer than two images).
        medoid_index: P row indices of the medoids in the analysed embeddings.
        medoid_table: (P, P) distances between medoids.
        centroid_table: (P, P) distances between centroids.
        verdicts: one :class:`PersonVerdict` per person.
        identification: closed-set rank-1 numbers (see
            :func:`iznet.eval.identification.closed_set_identification`), or None with the reason in
            ``notes``.
        verification: :func:`verification_numbers`, or None with the reason in ``notes``.
        notes: anything a reader should know (skipped parts and why).
        extra: caller's additions (embedder, data, command, t-SNE settings).
        pair_dist: (M,) distances of the verification pairs (for an ROC figure; not in ``to_dict``).
        pair_same: (M,) True for same-person pairs (not in ``to_dict``).
    """

    names: list[str]
    counts: list[int]
    intra: list[BoxStats | None]
    medoid_index: np.ndarray
    medoid_table: np.ndarray
    centroid_table: np.ndarray
    verdicts: list[PersonVerdict]
    identification: dict[str, Any] | None
    verification: dict[str, Any] | None
    notes: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    pair_dist: np.ndarray | None = dataclasses.field(default=None, repr=False)
    pair_same: np.ndarray | None = dataclasses.field(default=None, repr=False)

    @property
    def mean_intra(self) -> float | None:
        """Mean intra-person distance over every same-person pair of every person (pair-weighted)."""
        boxes = [b for b in self.intra if b is not None]
        n = sum(b.n for b in boxes)
        return None if n == 0 else float(sum(b.mean * b.n for b in boxes) / n)

    @property
    def min_inter(self) -> float | None:
        """Smallest distance between two different people's medoids."""
        p = len(self.names)
        if p < 2:
            return None
        return float(self.medoid_table[~np.eye(p, dtype=bool)].min())

    @property
    def n_separated(self) -> int:
        return sum(v.separated for v in self.verdicts)

    def summary(self) -> dict[str, Any]:
        """The headline numbers: people, images, mean intra, min inter, separated people, rank-1, AUC."""
        ident = self.identification or {}
        ver = self.verification or {}
        return {"people": len(self.names), "images": int(sum(self.counts)), "mean_intra": self.mean_intra,
                "min_inter_medoid": self.min_inter, "separated": self.n_separated,
                "rank1": ident.get("rank1"), "enroll": ident.get("k"),
                "verification_auc": ver.get("auc"), "verification_accuracy": ver.get("accuracy")}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tables as nested lists, verdicts with their sentence)."""
        return {
            "summary": self.summary(),
            "names": list(self.names),
            "counts": [int(c) for c in self.counts],
            "intra": {n: (None if b is None else dataclasses.asdict(b)) for n, b in zip(self.names, self.intra)},
            "medoid_index": [int(i) for i in self.medoid_index],
            "medoid_table": np.asarray(self.medoid_table).tolist(),
            "centroid_table": np.asarray(self.centroid_table).tolist(),
            "verdicts": [{**dataclasses.asdict(v), "overlaps": [[n, d] for n, d in v.overlaps], "line": v.line()}
                         for v in self.verdicts],
            "identification": self.identification,
            "verification": self.verification,
            "notes": list(self.notes),
            **({"extra": self.extra} if self.extra else {}),
        }


def analyze_embeddings(embeddings, labels, classes: Sequence[str] | None = None, *, enroll: int = 5,
                       max_pairs: int = 20000, seed: int = 0, with_accuracy: bool = True
                       ) -> AnalysisResult:
    """Run the three tools and the accuracy numbers on one labelled embedding set.

    Args:
        embeddings: (N, D) embeddings (L2-normalised rows expected: distances then lie in 0..2).
        labels: (N,) integers 0..P-1; within a person, row order decides who is enrolled.
        classes: P person names (default ``"0"..``).
        enroll: images enrolled per person for closed-set rank-1 (the rest are probes).
        max_pairs: pairs for the verification numbers (see :func:`draw_pairs`).
        seed: seed of the pair draw.
        with_accuracy: compute identification and verification (off: only the three tools).

    Returns:
        an :class:`AnalysisResult`; a part that cannot be computed (e.g. no probes because every
        person has at most ``enroll`` images) is None and ``notes`` says why.
    """
    emb, lab, names = _check(embeddings, labels, classes)
    counts = np.bincount(lab, minlength=len(names))
    if (counts == 0).any():
        missing = [names[i] for i in np.flatnonzero(counts == 0)]
        raise AnalysisError(f"no embeddings for {', '.join(missing[:5])}; drop empty classes first")
    boxes = [box_stats(d) for d in intra_distances(emb, lab, len(names))]
    med, med_idx = person_medoids(emb, lab, len(names))
    cen = person_centroids(emb, lab, len(names))
    med_table, cen_table = distance_table(med), distance_table(cen)
    result = AnalysisResult(names=names, counts=[int(c) for c in counts], intra=boxes, medoid_index=med_idx,
                            medoid_table=med_table, centroid_table=cen_table,
                            verdicts=verdicts(boxes, med_table, names, counts),
                            identification=None, verification=None)
    if not with_accuracy:
        return result
    if len(names) < 2:
        result.notes.append("accuracy skipped: one person only")
        return result
    from iznet.eval.identification import closed_set_identification
    from iznet.eval.verification import MetricInputError

    try:
        result.identification = closed_set_identification(emb, lab, enroll)
    except MetricInputError as e:
        result.notes.append(f"identification skipped: {e}")
    try:
        result.verification, result.pair_dist, result.pair_same = verification_numbers(emb, lab, max_pairs, seed)
    except (MetricInputError, AnalysisError) as e:
        result.notes.append(f"verification skipped: {e}")
    return result


# --------------------------------------------------------------------------------- run summaries
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise AnalysisError(f"cannot read {path}: {e}") from None


def find_analysis(run_dir: str | Path) -> Path | None:
    """``analysis.json`` in the run folder or one level below it (e.g. ``RUN/analysis/``), else None."""
    run_dir = Path(run_dir)
    direct = run_dir / "analysis.json"
    if direct.is_file():
        return direct
    found = sorted(run_dir.glob("*/analysis.json"))
    return found[0] if found else None


def _run_mining(cfg: dict[str, Any]) -> str | None:
    """What chose a run's training examples: the miner for triplet runs, else what the loss uses, and how
    P×K batches weighted people when not uniformly."""
    loss = cfg.get("loss")
    if loss == "pair":
        return "uniform pairs"
    what = {"contrastive": "all pairs of the batch", "cosface": "P×K batch"}.get(loss, cfg.get("mining"))
    weight = cfg.get("people_weight", "uniform")
    if weight != "uniform" and what is not None:
        what += f", people ∝ {'n' if weight == 'images' else '√n'}"
    return what


def _run_loss(cfg: dict[str, Any]) -> str | None:
    """The loss, with the CosFace identity term and its weight when one was added."""
    loss, w = cfg.get("loss"), cfg.get("id_weight") or 0
    return f"{loss} + {w:g}×cosface" if loss and w else loss


def _run_name(run_dir: Path) -> str:
    """The folder name; ``parent/foldK`` for the fold folders of ``scripts/lfw_view2.py``."""
    if run_dir.name.startswith("fold") and run_dir.name[4:].isdigit() and run_dir.parent.name:
        return f"{run_dir.parent.name}/{run_dir.name}"
    return run_dir.name


def _run_input_size(cfg: dict[str, Any]) -> int | None:
    """The input side a run trained at: its override, else the model's native side (None if unknown)."""
    size = (cfg.get("model_kwargs") or {}).get("input_size")
    if size:
        return int(size)
    if not cfg.get("model"):
        return None
    try:
        from iznet.models import model_info

        return int(model_info(cfg["model"])["input_size"])
    except Exception:  # noqa: BLE001 - an unknown or renamed model leaves the cell empty
        return None


def summarize_run(run_dir: str | Path) -> dict[str, Any]:
    """One row of a run comparison, from the files a training run writes.

    Reads ``summary.json`` (required), ``config.json`` (model, loss, mining) and, when present, an
    ``analysis.json`` written by ``iznet analyze`` (see :func:`find_analysis`).

    Returns:
        dict with ``run``, ``path``, ``model``, ``input_size``, ``loss``, ``mining`` (for pair and contrastive
        runs, what the loss draws instead of a miner), ``samples``, ``steps``, ``dev_acc``,
        ``dev_auc``, ``test_acc``, ``test_auc``, ``rank1`` (dict or None), ``mean_intra``,
        ``min_inter``, ``separated``, ``people``, ``analysis`` (path or None) and ``report``
        (path of the analysis's ``report.html`` or None). Missing values are None.

    Raises:
        AnalysisError: the folder is missing or holds no ``summary.json``.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise AnalysisError(f"run folder {run_dir} does not exist")
    summ_path = run_dir / "summary.json"
    if not summ_path.is_file():
        raise AnalysisError(f"{run_dir} holds no summary.json; is it a finished training run folder "
                            "(written by `iznet train`)?")
    summ = _read_json(summ_path)
    cfg = {}
    if (run_dir / "config.json").is_file():
        cfg = _read_json(run_dir / "config.json").get("config", {}) or {}
    dev, test = summ.get("dev") or {}, summ.get("test") or {}
    row: dict[str, Any] = {
        "run": _run_name(run_dir), "path": str(run_dir), "model": cfg.get("model"),
        "input_size": _run_input_size(cfg), "loss": _run_loss(cfg), "mining": _run_mining(cfg),
        "samples": summ.get("samples"), "steps": summ.get("steps"),
        "dev_acc": dev.get("best_acc"), "dev_auc": dev.get("auc"),
        "test_acc": test.get("acc_at_threshold", test.get("best_acc")) if test else None,
        "test_auc": test.get("auc") if test else None,
        "rank1": None, "mean_intra": None, "min_inter": None, "separated": None, "people": None,
        "analysis": None, "report": None,
    }
    ana_path = find_analysis(run_dir)
    if ana_path is not None:
        ana = _read_json(ana_path)
        s = ana.get("summary", {})
        row.update(rank1=s.get("rank1"), mean_intra=s.get("mean_intra"), min_inter=s.get("min_inter_medoid"),
                   separated=s.get("separated"), people=s.get("people"), analysis=str(ana_path))
        rep = ana_path.parent / "report.html"
        row["report"] = str(rep) if rep.is_file() else None
    return row
