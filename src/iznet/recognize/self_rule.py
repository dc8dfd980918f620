"""An unknown-face rule chosen on the gallery itself, by leaving its own photos out.

The shipped rule (a distance threshold, tightened to the gallery, plus a runner-up margin) was chosen on
development people with 5 photos each. A gallery with more photos a person knows its people better, and the
same rule then answers "unknown" for faces whose nearest person is right. The gallery can measure that
itself: every enrolled photo of a person with two or more photos plays

- a *member*: its distances to every person, its own person's centroid recomputed without it (the photo is
  a new picture of someone enrolled with one photo fewer); named right, wrong, or unknown;
- a *stranger*: its distances to the other people only (its own person left out, so it is a stranger who
  looks like someone in the gallery); any name it gets is wrong.

For each runner-up margin of a grid, the largest threshold that keeps the members' wrong names at most
``max_wrong`` of them and the strangers' names at most ``max_strangers`` of them is found exactly (names grow
with the threshold), and the (threshold, margin) that names most members right wins. Only centroid
prototypes (the pipeline's default) are left out exactly; a gallery with too little evidence
(:data:`MIN_MEMBERS` member photos, :data:`MIN_PEOPLE` people) gets no rule (None), and the caller keeps
the shipped one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from iznet.errors import GalleryError
from iznet.recognize.matcher import largest_accepting as _largest_accepting
from iznet.recognize.prototypes import pairwise_distances

MARGINS = tuple(round(0.025 * i, 3) for i in range(9))  # 0 .. 0.2
MIN_MEMBERS = 40  # photos of people with two or more photos, below which a gallery chooses nothing
MIN_PEOPLE = 3


@dataclass
class SelfRule:
    """The rule a gallery chose for itself, with what it gave on the gallery's own photos."""

    threshold: float
    margin: float
    right: float  # shares of member photos (each left out of its own person)
    wrong: float
    unknown: float
    strangers_named: float  # share of photos named with their own person left out
    members: int
    people: int


def leave_one_out(embeddings, labels) -> dict[str, np.ndarray]:
    """Each enrolled photo's distances as a member (own centroid without it) and as a stranger (own person
    left out), against the centroid prototypes of everyone.

    Args:
        embeddings: (N, D) unit embeddings of the gallery's photos.
        labels: (N,) person of each photo (any comparable values).

    Returns:
        ``{"member": (N, P) distances, "stranger": (N, P) with the own column inf, "own": (N,) own column,
        "usable": (N,) bool, photos whose person has another photo}``; columns in ``np.unique(labels)`` order.
    """
    X = np.asarray(embeddings, dtype=np.float64)
    lab = np.asarray(labels)
    if X.ndim != 2 or len(X) != len(lab):
        raise GalleryError(f"embeddings {X.shape} and {len(lab)} labels do not match")
    people, own = np.unique(lab, return_inverse=True)
    sums = np.zeros((len(people), X.shape[1]))
    np.add.at(sums, own, X)
    counts = np.bincount(own, minlength=len(people))
    C = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    D = pairwise_distances(X, C)
    stranger = D.copy()
    stranger[np.arange(len(X)), own] = np.inf
    rest = sums[own] - X  # the own person's sum without the photo
    norm = np.linalg.norm(rest, axis=1)
    usable = (counts[own] >= 2) & (norm > 1e-8)
    c_loo = rest / np.maximum(norm, 1e-12)[:, None]
    member = D.copy()
    d_own = np.linalg.norm(X - c_loo, axis=1)
    member[np.arange(len(X)), own] = np.where(usable, d_own, np.inf)
    return {"member": member, "stranger": stranger, "own": own, "usable": usable}


def _best_two(D: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(D, axis=1, kind="stable")
    rows = np.arange(len(D))
    second = D[rows, order[:, 1]] if D.shape[1] > 1 else np.full(len(D), np.inf)
    return order[:, 0], D[rows, order[:, 0]], second


def choose_self_rule(embeddings, labels, max_wrong: float = 0.01, max_strangers: float = 0.1,
                     margins: Sequence[float] = MARGINS, cap: float | None = None,
                     min_members: int = MIN_MEMBERS, min_people: int = MIN_PEOPLE) -> SelfRule | None:
    """The (threshold, margin) that names most of a gallery's own photos right, left out one at a time, with
    at most ``max_wrong`` of them named as another person and at most ``max_strangers`` of them named when
    their person is left out (module docstring).

    Args:
        embeddings, labels: the gallery's photos (:func:`leave_one_out`).
        max_wrong, max_strangers: the limits, shares of the member photos.
        margins: runner-up margins tried.
        cap: the threshold never exceeds it (None: no cap).
        min_members, min_people: below either, None (too little evidence).

    Returns:
        A :class:`SelfRule`, or None.
    """
    loo = leave_one_out(embeddings, labels)
    use = loo["usable"]
    n_people = len(np.unique(np.asarray(labels)))
    n = int(use.sum())
    if n < min_members or n_people < max(2, min_people):
        return None
    own = loo["own"][use]
    nb, db, d2 = _best_two(loo["member"][use])
    _, sb, s2 = _best_two(loo["stranger"][use])
    right = nb == own
    allowed_wrong = math.floor(max_wrong * n + 1e-9)
    allowed_str = math.floor(max_strangers * n + 1e-9)
    best: SelfRule | None = None
    for m in margins:
        ok_m = (d2 - db) >= m
        ok_s = (s2 - sb) >= m
        t = min(_largest_accepting(db[ok_m & ~right], allowed_wrong), _largest_accepting(sb[ok_s], allowed_str))
        if cap is not None:
            t = min(t, float(cap))
        if not math.isfinite(t):  # nothing to bound it: the largest distance seen
            t = float(max(db.max(), sb[np.isfinite(sb)].max(initial=0.0)))
        named = ok_m & (db <= t)
        rule = SelfRule(threshold=float(t), margin=float(m), right=float((named & right).mean()),
                        wrong=float((named & ~right).mean()), unknown=float((~named).mean()),
                        strangers_named=float((ok_s & (sb <= t)).mean()), members=n, people=n_people)
        if best is None or rule.right > best.right:
            best = rule
    return best
