"""Unknown-face rules measured on simulated galleries: how many right, wrong and unknown answers each gives.

A user enrols a group (a dozen people, a few photos each) and labels new photos of them and of strangers.
:func:`simulate_groups` replays that many times on embedded faces of people with known identities: each round
draws ``group_size`` people with more than ``k`` images, enrols their first ``k`` (medoid prototypes, the
pipeline's default), labels their other images (*members*) and the images of ``strangers`` other people who
are not enrolled. Each rule in :data:`RULES` turns the distance to the nearest person (and to the
runner-up) into a name or "unknown":

- ``fixed``: the embedder's calibrated threshold ``t`` (distance ``<= t``), the rule of a gallery without a
  calibration of its own;
- ``gallery``: ``min(t, t_g)`` where ``t_g`` comes from the gallery itself: the distance from every enrolled
  photo to the nearest *other* person's prototype is what a stranger who looks like that person would get,
  and ``t_g`` is the largest threshold that names at most ``far`` of those photos
  (:func:`iznet.recognize.matcher.gallery_threshold`, what the pipeline does); it tightens the threshold in a
  gallery of look-alikes;
- ``margin``: ``fixed`` plus a runner-up margin: the nearest person must beat the second one by at least
  ``margin`` (the ratio test of keypoint matching, here on distances);
- ``gallery+margin``: both.

Shares: over member probes, right / wrong (another enrolled person's name) / unknown; over stranger probes,
the share rejected (answered unknown) and the share given a name (always wrong).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from iznet.recognize.matcher import Matcher, gallery_threshold
from iznet.recognize.prototypes import medoid, pairwise_distances

RULES = ("fixed", "gallery", "margin", "gallery+margin")


@dataclass
class RuleSettings:
    threshold: float  # the embedder's calibrated threshold
    far: float = 0.01  # gallery rule: impostor share accepted among the gallery's own distances
    margin: float = 0.1  # margin rule: runner-up distance minus best distance, at least


def decide(best: np.ndarray, second: np.ndarray, rule: str, t: float, t_gallery: float, margin: float) -> np.ndarray:
    """True where the nearest person's name is given under ``rule`` (else "unknown")."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}: choose one of {', '.join(RULES)}")
    thr = min(t, t_gallery) if rule.startswith("gallery") else t
    ok = best <= thr
    if rule.endswith("margin"):
        ok &= (second - best) >= margin
    return ok


def simulate_groups(emb: np.ndarray, labels: np.ndarray, settings: RuleSettings, *, group_size: int = 12,
                    k: int = 5, strangers: int = 12, rounds: int = 50, seed: int = 0) -> dict:
    """Right / wrong / unknown shares of each rule over ``rounds`` simulated galleries.

    Args:
        emb: (N, D) unit embeddings.
        labels: (N,) identity of each row (any hashable values); rows of a person in the order to enrol.
        settings: the fixed threshold and the gallery / margin parameters.
        group_size: enrolled people per gallery.
        k: photos enrolled per person (people need more than ``k`` to be drawn as members).
        strangers: people not enrolled whose photos are labelled too (drawn from everyone else).
        rounds: galleries simulated.
        seed: seeds the draws.

    Returns:
        ``{"rules": {rule: {"right", "wrong", "unknown", "strangers_rejected", "strangers_named"}}, "members": n,
        "strangers": n, "rounds": rounds, ...}``; shares are pooled over all rounds.
    """
    emb = np.asarray(emb, dtype=np.float64)
    labels = np.asarray(labels)
    people, inv = np.unique(labels, return_inverse=True)
    rows = [np.flatnonzero(inv == i) for i in range(len(people))]
    eligible = [i for i, r in enumerate(rows) if len(r) > k]
    if len(eligible) < group_size or len(people) < group_size + strangers:
        raise ValueError(f"need {group_size} people with more than {k} images and {group_size + strangers} people "
                         f"in all; got {len(eligible)} and {len(people)}")
    rng = np.random.default_rng(seed)
    counts = {r: np.zeros(5, dtype=np.int64) for r in RULES}  # right, wrong, unknown, str_rejected, str_named
    n_mem = n_str = 0
    t_gal = []
    for _ in range(rounds):
        members = rng.choice(eligible, size=group_size, replace=False)
        others = np.setdiff1d(np.arange(len(people)), members)
        stranger_ids = rng.choice(others, size=strangers, replace=False)
        protos, enrolled, owner = [], [], []
        for j, p in enumerate(members):
            e = emb[rows[p][:k]]
            protos.append(e[medoid(e)[0]])
            enrolled.append(e)
            owner += [j] * k
        P = np.stack(protos)
        names = [str(j) for j in range(group_size)]
        tg = gallery_threshold(Matcher(P, names), np.concatenate(enrolled), [names[o] for o in owner], settings.far)
        t_gal.append(tg)
        probe_rows = np.concatenate([rows[p][k:] for p in members])
        probe_true = np.concatenate([[j] * (len(rows[p]) - k) for j, p in enumerate(members)])
        str_rows = np.concatenate([rows[p] for p in stranger_ids])
        for part, idx in (("members", probe_rows), ("strangers", str_rows)):
            d = pairwise_distances(emb[idx], P)
            order = np.argsort(d, axis=1)
            best = d[np.arange(len(idx)), order[:, 0]]
            second = d[np.arange(len(idx)), order[:, 1]]
            for rule in RULES:
                named = decide(best, second, rule, settings.threshold, tg, settings.margin)
                if part == "members":
                    right = order[:, 0] == probe_true
                    counts[rule][0] += int((named & right).sum())
                    counts[rule][1] += int((named & ~right).sum())
                    counts[rule][2] += int((~named).sum())
                else:
                    counts[rule][3] += int((~named).sum())
                    counts[rule][4] += int(named.sum())
        n_mem += len(probe_rows)
        n_str += len(str_rows)
    out = {"rounds": rounds, "group_size": group_size, "k": k, "strangers_per_round": strangers,
           "members": n_mem, "strangers": n_str, "threshold": settings.threshold, "far": settings.far,
           "margin": settings.margin, "gallery_threshold_median": float(np.median(t_gal)), "rules": {}}
    for rule, c in counts.items():
        out["rules"][rule] = {"right": c[0] / max(1, n_mem), "wrong": c[1] / max(1, n_mem),
                              "unknown": c[2] / max(1, n_mem), "strangers_rejected": c[3] / max(1, n_str),
                              "strangers_named": c[4] / max(1, n_str)}
    return out
