"""Closed-set and open-set identification on embeddings (the "group of people" case).

Per person the first ``k`` images (in the order given) are enrolled and the rest are probes. A probe
gets the label of its nearest prototype by Euclidean distance. Prototypes:

* ``nn``: every enrolled image (nearest neighbour over all of them);
* ``centroid``: the mean of a person's enrolled embeddings, L2-renormalised back onto the unit sphere
  (embeddings live there, and an unnormalised mean of spread-out images is pulled towards the origin,
  which would favour people whose images are spread out);
* ``medoid``: the enrolled image whose summed Euclidean distance to that person's other enrolled
  images is smallest (ties: the first in order).

>>> import numpy as np
>>> emb = np.eye(2, dtype=np.float32)[[0, 0, 0, 1, 1, 1]]
>>> closed_set_identification(emb, np.array([0, 0, 0, 1, 1, 1]), k=2)["rank1"]["nn"]
1.0
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from iznet.eval.verification import MetricInputError
from iznet.recognize.prototypes import pairwise_distances

PROTOTYPES = ("nn", "centroid", "medoid")


def _check(embeddings, labels) -> tuple[np.ndarray, np.ndarray]:
    emb = np.asarray(embeddings, dtype=np.float64)
    lab = np.asarray(labels).reshape(-1)
    if emb.ndim != 2:
        raise MetricInputError(f"embeddings must be (N, D); got shape {emb.shape}")
    if emb.shape[0] != lab.size:
        raise MetricInputError(f"{emb.shape[0]} embeddings but {lab.size} labels; give one label per embedding")
    if not np.isfinite(emb).all():
        raise MetricInputError("embeddings contain NaN or inf")
    return emb, lab


def first_k_split(labels, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the first ``k`` items of each label (enrolled) and of the rest (probes), in order.

    A person with ``k`` images or fewer is fully enrolled and has no probes.
    """
    if k < 1:
        raise MetricInputError(f"k={k}: enrol at least one image per person")
    lab = np.asarray(labels).reshape(-1)
    seen: dict[Any, int] = {}
    enrol = np.zeros(lab.size, dtype=bool)
    for i, y in enumerate(lab.tolist()):
        c = seen.get(y, 0)
        enrol[i] = c < k
        seen[y] = c + 1
    return np.nonzero(enrol)[0], np.nonzero(~enrol)[0]


def medoid_index(emb: np.ndarray) -> int:
    """Row of ``emb`` (M, D) minimising the summed Euclidean distance to the other rows (ties: first)."""
    return int(np.argmin(pairwise_distances(emb, emb).sum(1)))


def centroid(emb: np.ndarray) -> np.ndarray:
    """Mean of ``emb`` (M, D), L2-renormalised (left as is when the mean is the zero vector)."""
    m = emb.mean(0)
    n = np.linalg.norm(m)
    return m / n if n > 0 else m


def build_prototypes(embeddings, labels, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Prototypes of the enrolled images.

    Args:
        embeddings: (M, D) enrolled embeddings.
        labels: (M,) their labels.
        kind: ``"nn"``, ``"centroid"`` or ``"medoid"``.

    Returns:
        prototypes (P, D) and their labels (P,); P = M for ``nn``, else one per person (sorted labels).
    """
    emb, lab = _check(embeddings, labels)
    if kind == "nn":
        return emb, lab
    if kind not in PROTOTYPES:
        raise MetricInputError(f"unknown prototype {kind!r}; choose from {', '.join(PROTOTYPES)}")
    people = np.unique(lab)
    protos = []
    for p in people:
        e = emb[lab == p]
        protos.append(centroid(e) if kind == "centroid" else e[medoid_index(e)])
    return np.stack(protos), people


def nearest_prototype(probes, prototypes, proto_labels) -> tuple[np.ndarray, np.ndarray]:
    """Label of and distance to the nearest prototype of each probe (Q, D) -> (Q,), (Q,)."""
    d = pairwise_distances(np.asarray(probes, dtype=np.float64), np.asarray(prototypes, dtype=np.float64))
    j = np.argmin(d, axis=1)
    return np.asarray(proto_labels)[j], d[np.arange(d.shape[0]), j]


def closed_set_identification(embeddings, labels, k: int,
                              prototypes: Sequence[str] = PROTOTYPES) -> dict[str, Any]:
    """Rank-1 accuracy with the first ``k`` images of each person enrolled.

    Args:
        embeddings: (N, D) embeddings (L2-normalised rows expected).
        labels: (N,) person labels; order decides which images are enrolled.
        k: images enrolled per person.
        prototypes: which prototype kinds to score.

    Returns:
        dict with ``k``, ``n_people``, ``n_enrolled``, ``n_probes``, ``people_without_probes`` and
        ``rank1`` ({kind: accuracy over all probes}).
    """
    emb, lab = _check(embeddings, labels)
    enrol, probe = first_k_split(lab, k)
    if probe.size == 0:
        raise MetricInputError(f"no probes: every person has at most k={k} images; lower --enroll")
    rank1 = {}
    for kind in prototypes:
        protos, plab = build_prototypes(emb[enrol], lab[enrol], kind)
        pred, _ = nearest_prototype(emb[probe], protos, plab)
        rank1[kind] = float(np.mean(pred == lab[probe]))
    people = np.unique(lab)
    return {"k": int(k), "n_people": int(people.size), "n_enrolled": int(enrol.size), "n_probes": int(probe.size),
            "people_without_probes": int(people.size - np.unique(lab[probe]).size), "rank1": rank1}


def threshold_for_far(impostor_dist, far: float) -> float:
    """Largest threshold at which at most ``far`` of the impostor distances are accepted (``dist <= t``)."""
    d = np.sort(np.asarray(impostor_dist, dtype=np.float64).reshape(-1))
    if d.size == 0:
        raise MetricInputError("no impostor pairs to set a threshold on; enrol at least two people")
    allowed = int(np.floor(far * d.size + 1e-9))
    uniq, counts = np.unique(d, return_counts=True)
    ok = np.nonzero(np.cumsum(counts) <= allowed)[0]
    return float(uniq[ok[-1]]) if ok.size else float(np.nextafter(uniq[0], -np.inf))


def open_set_rejection(embeddings, labels, k: int, far: float = 1e-3, *, known: Sequence | None = None,
                       unknown_fraction: float = 0.5, seed: int = 0, prototype: str = "nn") -> dict[str, Any]:
    """Open-set identification: reject strangers with a distance threshold set for a target FAR.

    People are split into known and unknown (``known`` labels, else a seeded random
    ``1 - unknown_fraction`` share). Known people enrol their first ``k`` images; their other images
    are known probes; every image of an unknown person is a stranger probe. The threshold is chosen
    on the enrolled images alone (what a deployed gallery has): pairs of enrolled images of different
    known people are the impostors, and the threshold is the largest one accepting at most ``far`` of
    them. A probe is accepted, with the label of its nearest prototype, when that distance is <= the
    threshold.

    Returns:
        dict with ``threshold``, ``target_far``, ``gallery_far`` (FAR on the enrolled impostor pairs),
        ``gallery_tar`` (accepted share of enrolled same-person pairs, None when k = 1),
        ``strangers_rejected``, ``known_accepted``, ``known_accepted_correct`` (accepted and named
        correctly), ``known_rank1`` (closed-set, no threshold), the people and probe counts and the
        ``known``/``unknown`` labels.
    """
    emb, lab = _check(embeddings, labels)
    people = np.unique(lab)
    if known is None:
        if not 0.0 < unknown_fraction < 1.0:
            raise MetricInputError(f"unknown_fraction={unknown_fraction} must lie strictly between 0 and 1")
        perm = np.random.default_rng(seed).permutation(people)
        n_known = int(round(people.size * (1.0 - unknown_fraction)))
        n_known = min(max(n_known, 2), people.size - 1)
        known_set = np.sort(perm[:n_known])
    else:
        known_set = np.unique(np.asarray(list(known)))
        missing = np.setdiff1d(known_set, people)
        if missing.size:
            raise MetricInputError(f"known people {missing.tolist()} have no embeddings")
    unknown_set = np.setdiff1d(people, known_set)
    if known_set.size < 2 or unknown_set.size < 1:
        raise MetricInputError("need at least two known people and one unknown person")

    is_known = np.isin(lab, known_set)
    kidx = np.nonzero(is_known)[0]
    enrol_k, probe_k = first_k_split(lab[kidx], k)
    enrol, known_probe = kidx[enrol_k], kidx[probe_k]
    stranger = np.nonzero(~is_known)[0]

    d = pairwise_distances(emb[enrol], emb[enrol])
    iu = np.triu_indices(enrol.size, 1)
    same = (lab[enrol][:, None] == lab[enrol][None, :])[iu]
    pair_d = d[iu]
    t = threshold_for_far(pair_d[~same], far)

    protos, plab = build_prototypes(emb[enrol], lab[enrol], prototype)
    s_pred, s_dist = nearest_prototype(emb[stranger], protos, plab)
    out: dict[str, Any] = {
        "k": int(k), "prototype": prototype, "target_far": float(far), "threshold": t,
        "gallery_far": float(np.mean(pair_d[~same] <= t)),
        "gallery_tar": float(np.mean(pair_d[same] <= t)) if same.any() else None,
        "n_known_people": int(known_set.size), "n_unknown_people": int(unknown_set.size),
        "n_known_probes": int(known_probe.size), "n_stranger_probes": int(stranger.size),
        "strangers_rejected": float(np.mean(s_dist > t)),
    }
    if known_probe.size:
        k_pred, k_dist = nearest_prototype(emb[known_probe], protos, plab)
        acc = k_dist <= t
        out.update(known_accepted=float(acc.mean()),
                   known_accepted_correct=float(np.mean(acc & (k_pred == lab[known_probe]))),
                   known_rank1=float(np.mean(k_pred == lab[known_probe])))
    else:
        out.update(known_accepted=None, known_accepted_correct=None, known_rank1=None)
    out.update(known=known_set.tolist(), unknown=unknown_set.tolist())
    return out
