"""Unknown-face rules measured on simulated galleries: how many right, wrong and unknown answers each gives.

A user enrols a group (a dozen people, a few photos each) and labels new photos of them and of strangers.
:func:`simulate_groups` replays that many times on embedded faces of people with known identities: each round
draws ``group_size`` people with more than ``k`` images, enrols their first ``k`` (one prototype each, by
default the pipeline's own, :data:`iznet.recognize.prototypes.DEFAULT_METHOD`), labels their other images (*members*) and the images of ``strangers`` other people who
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
from typing import Sequence

import numpy as np

from iznet.recognize.matcher import Matcher, gallery_threshold, largest_accepting as _largest_accepting
from iznet.recognize.prototypes import DEFAULT_METHOD, centroid, mean_pair_distance, medoid, pairwise_distances

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


def _galleries(emb: np.ndarray, labels: np.ndarray, group_size: int, k: int, strangers: int, rounds: int, seed: int,
               method: str):
    """The simulated galleries of :func:`simulate_groups` and :func:`probe_features`, one per round: yields
    ``(P, enrolled, probe_rows, probe_true, stranger_rows)``, the (group_size, D) prototypes, each member's k
    enrolled embeddings, the rows of the members' other images with their member index, and the strangers'
    rows."""
    if method not in ("medoid", "centroid"):
        raise ValueError(f"unknown prototype method {method!r}: choose medoid or centroid")
    people, inv = np.unique(labels, return_inverse=True)
    rows = [np.flatnonzero(inv == i) for i in range(len(people))]
    eligible = [i for i, r in enumerate(rows) if len(r) > k]
    if len(eligible) < group_size or len(people) < group_size + strangers:
        raise ValueError(f"need {group_size} people with more than {k} images and {group_size + strangers} people "
                         f"in all; got {len(eligible)} and {len(people)}")
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        members = rng.choice(eligible, size=group_size, replace=False)
        others = np.setdiff1d(np.arange(len(people)), members)
        stranger_ids = rng.choice(others, size=strangers, replace=False)
        enrolled = [emb[rows[p][:k]] for p in members]
        P = np.stack([e[medoid(e)[0]] if method == "medoid" else centroid(e) for e in enrolled])
        probe_rows = np.concatenate([rows[p][k:] for p in members])
        probe_true = np.concatenate([[j] * (len(rows[p]) - k) for j, p in enumerate(members)])
        yield P, enrolled, probe_rows, probe_true, np.concatenate([rows[p] for p in stranger_ids])


def simulate_groups(emb: np.ndarray, labels: np.ndarray, settings: RuleSettings, *, group_size: int = 12,
                    k: int = 5, strangers: int = 12, rounds: int = 50, seed: int = 0,
                    method: str = DEFAULT_METHOD, self_rule: dict | None = None) -> dict:
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
        method: ``centroid`` (the pipeline's default) or ``medoid`` prototypes, one per person.
        self_rule: also score rule ``"self"``: the rule each gallery chooses on its own enrolled photos
            (:func:`iznet.recognize.self_rule.choose_self_rule`, these keyword arguments), or ``gallery+margin``
            where it chooses none; ``out["self_rule"]["chosen"]`` is the share of galleries that chose one.

    Returns:
        ``{"rules": {rule: {"right", "wrong", "unknown", "strangers_rejected", "strangers_named"}}, "members": n,
        "strangers": n, "rounds": rounds, ...}``; shares are pooled over all rounds.
    """
    emb = np.asarray(emb, dtype=np.float64)
    labels = np.asarray(labels)
    rules = RULES + (("self",) if self_rule is not None else ())
    counts = {r: np.zeros(5, dtype=np.int64) for r in rules}  # right, wrong, unknown, str_rejected, str_named
    n_mem = n_str = 0
    t_gal, t_self = [], []
    names = [str(j) for j in range(group_size)]
    owner = [names[j] for j in range(group_size) for _ in range(k)]
    for P, enrolled, probe_rows, probe_true, str_rows in _galleries(emb, labels, group_size, k, strangers, rounds,
                                                                    seed, method):
        tg = gallery_threshold(Matcher(P, names), np.concatenate(enrolled), owner, settings.far)
        t_gal.append(tg)
        chosen = None
        if self_rule is not None:
            from iznet.recognize.self_rule import choose_self_rule

            chosen = choose_self_rule(np.concatenate(enrolled), np.repeat(np.arange(group_size), k), **self_rule)
            t_self.append(None if chosen is None else (chosen.threshold, chosen.margin))
        for part, idx in (("members", probe_rows), ("strangers", str_rows)):
            d = pairwise_distances(emb[idx], P)
            order = np.argsort(d, axis=1)
            best = d[np.arange(len(idx)), order[:, 0]]
            second = d[np.arange(len(idx)), order[:, 1]]
            for rule in rules:
                if rule == "self" and chosen is not None:
                    named = (best <= chosen.threshold) & ((second - best) >= chosen.margin)
                else:
                    named = decide(best, second, "gallery+margin" if rule == "self" else rule,
                                   settings.threshold, tg, settings.margin)
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
    if self_rule is not None:
        got = [t for t in t_self if t is not None]
        out["self_rule"] = {**self_rule, "chosen": len(got) / max(1, len(t_self)),
                            "threshold_median": float(np.median([t for t, _ in got])) if got else None,
                            "margin_median": float(np.median([m for _, m in got])) if got else None}
    for rule, c in counts.items():
        out["rules"][rule] = {"right": c[0] / max(1, n_mem), "wrong": c[1] / max(1, n_mem),
                              "unknown": c[2] / max(1, n_mem), "strangers_rejected": c[3] / max(1, n_str),
                              "strangers_named": c[4] / max(1, n_str)}
    return out


def rule_grid(emb: np.ndarray, labels: np.ndarray, threshold: float, fars: Sequence[float],
              margins: Sequence[float], group_sizes: Sequence[int] = (12,), **kwargs) -> list[dict]:
    """Every rule of :data:`RULES` at every (far, margin) setting, simulated at every gallery size.

    Each row is ``{"rule", "far", "margin", "by_size": {size: shares}}`` plus the shares a rule must be judged
    by over all sizes (:func:`combine_sizes`). ``far`` is None for rules without the gallery threshold and
    ``margin`` None for rules without the margin, so each distinct rule appears once. ``kwargs`` go to
    :func:`simulate_groups` (``k``, ``strangers``, ``rounds``, ``seed``, ``method``).
    """
    rows: dict[tuple, dict] = {}
    for size in group_sizes:
        for far in fars:
            for margin in margins:
                out = simulate_groups(emb, labels, RuleSettings(threshold, far, margin), group_size=int(size),
                                      **kwargs)
                for rule in RULES:
                    key = (rule, far if "gallery" in rule else None, margin if "margin" in rule else None)
                    r = rows.setdefault(key, {"rule": rule, "far": key[1], "margin": key[2], "by_size": {}})
                    r["by_size"].setdefault(str(int(size)), out["rules"][rule])
    return [combine_sizes(r) for r in rows.values()]


def combine_sizes(row: dict) -> dict:
    """A rule's shares over several gallery sizes: right and unknown averaged; wrong names, strangers named
    (and strangers rejected) at the worst size, since a rule must keep its limits for a small group and a
    large one alike."""
    per = list(row["by_size"].values())
    return {"rule": row["rule"], "far": row["far"], "margin": row["margin"],
            "right": float(np.mean([p["right"] for p in per])),
            "wrong": max(p["wrong"] for p in per),
            "unknown": float(np.mean([p["unknown"] for p in per])),
            "strangers_rejected": min(p["strangers_rejected"] for p in per),
            "strangers_named": max(p["strangers_named"] for p in per),
            "by_size": row["by_size"]}


def choose_rule(rows: Sequence[dict], max_wrong: float = 0.03, max_strangers_named: float = 0.1) -> dict | None:
    """The row with the most right names among those with wrong names at most ``max_wrong`` and named
    strangers at most ``max_strangers_named`` (the first such row on ties); None when no row keeps both."""
    ok = [r for r in rows if r["wrong"] <= max_wrong and r["strangers_named"] <= max_strangers_named]
    return max(ok, key=lambda r: r["right"]) if ok else None


def held_out_calibration(enrolled: np.ndarray, enrolled_labels: np.ndarray, probes: np.ndarray,
                         probe_labels: np.ndarray, far: float, stranger_far: float = 0.1,
                         method: str = DEFAULT_METHOD) -> dict:
    """An unknown-face threshold chosen on a group's held-out photos, for a model trained on that group.

    A model fine-tuned on a group has seen the photos it will be enrolled with: their distances to the other
    people are wider than a new photo's, so rules computed on them (the gallery rule, a threshold inherited
    from the base model) give out wrong names. Here the training photos are enrolled (``method`` prototypes,
    the pipeline's default) and each held-out photo, which the model never trained on, plays two parts: a
    member to be named, and a stranger who looks like the nearest *other* person (the photo with its own
    person left out of the gallery). The threshold is the largest one under which at most ``far`` of the
    held-out photos get another person's name as members and at most ``stranger_far`` of them get a name as
    strangers (the rule the bundled embedder's threshold was chosen by: few wrong names, few named
    strangers). The right / wrong / unknown shares of the held-out photos at it are reported (optimistic:
    the threshold was chosen on them).

    Args:
        enrolled: (N, D) unit embeddings of the training photos.
        enrolled_labels: (N,) person of each (any comparable values).
        probes: (M, D) unit embeddings of the held-out photos.
        probe_labels: (M,) their people (each must be among ``enrolled_labels``).
        far: share of held-out photos that may be named as another enrolled person.
        stranger_far: share of held-out photos that may be named when their person is not enrolled.
        method: prototype method (``iznet.recognize.prototypes.compute_prototypes``).

    Returns:
        ``{"threshold", "target_far", "target_stranger_far", "far" (strangers named), "right", "wrong",
        "unknown", "nearest_right" (the nearest person is the right one, any distance), "n_probes", "n_people"}``.

    Raises:
        ValueError: fewer than two people, no probe, or a probe's person with no enrolled photo.
    """
    from iznet.recognize.matcher import nearest_other_distances
    from iznet.recognize.prototypes import compute_prototypes

    enrolled, probes = np.asarray(enrolled, np.float64), np.asarray(probes, np.float64)
    el, pl = np.asarray(enrolled_labels), np.asarray(probe_labels)
    people = np.unique(el)
    if len(people) < 2 or len(pl) == 0:
        raise ValueError(f"need two or more enrolled people and a held-out photo; got {len(people)} and {len(pl)}")
    missing = sorted(set(pl.tolist()) - set(people.tolist()))
    if missing:
        raise ValueError(f"held-out photos of people with no enrolled photo: {missing[:5]}")
    blocks, names = [], []
    for p in people:
        P = compute_prototypes(enrolled[el == p], method=method)
        blocks.append(P)
        names += [str(p)] * len(P)
    matcher = Matcher(np.concatenate(blocks), names)
    owners = [str(x) for x in pl]
    n = len(owners)
    imp = nearest_other_distances(matcher, probes, owners)  # as strangers
    d = matcher.person_distances(probes)
    col = {nm: i for i, nm in enumerate(matcher.names)}
    best = d.argmin(axis=1)
    best_d = d[np.arange(n), best]
    right = best == np.array([col[o] for o in owners])
    t = min(_largest_accepting(best_d[~right], math.floor(far * n + 1e-9)),
            _largest_accepting(imp, math.floor(stranger_far * n + 1e-9)))
    named = best_d <= t
    return {"threshold": float(t), "target_far": float(far), "target_stranger_far": float(stranger_far),
            "far": float(np.mean(imp <= t)), "right": float(np.sum(named & right) / n),
            "wrong": float(np.sum(named & ~right) / n), "unknown": float(np.sum(~named) / n),
            "nearest_right": float(np.mean(right)), "n_probes": n, "n_people": int(len(people))}


# ------------------------------------------------------------------------------------- the spread rule
#: columns of :func:`probe_features` rows
FEATURES = ("best", "second", "pair_mean", "pairs", "right")


def probe_features(emb: np.ndarray, labels: np.ndarray, *, group_size: int = 12, k: int = 5, strangers: int = 12,
                   rounds: int = 50, seed: int = 0, method: str = DEFAULT_METHOD) -> dict[str, np.ndarray]:
    """What an unknown-face rule sees for every probe of the galleries :func:`simulate_groups` draws (the same
    draws for the same arguments): the distance to the nearest person and to the runner-up, the nearest person's
    mean distance between two of their enrolled photos and the number of such pairs, and whether the nearest
    person is the right one (always False for strangers).

    Returns:
        ``{"members": (M, 5), "strangers": (S, 5)}`` float64, columns :data:`FEATURES`.
    """
    emb = np.asarray(emb, dtype=np.float64)
    labels = np.asarray(labels)
    out: dict[str, list] = {"members": [], "strangers": []}
    pairs = k * (k - 1) / 2
    for P, enrolled, probe_rows, probe_true, str_rows in _galleries(emb, labels, group_size, k, strangers, rounds,
                                                                    seed, method):
        pair_mean = np.array([mean_pair_distance(e) for e in enrolled])
        for part, idx in (("members", probe_rows), ("strangers", str_rows)):
            d = pairwise_distances(emb[idx], P)
            order = np.argsort(d, axis=1)
            n = np.arange(len(idx))
            right = order[:, 0] == probe_true if part == "members" else np.zeros(len(idx), dtype=bool)
            out[part].append(np.stack([d[n, order[:, 0]], d[n, order[:, 1]], pair_mean[order[:, 0]],
                                       np.full(len(idx), pairs), right], axis=1))
    return {part: np.concatenate(v) for part, v in out.items()}


def spread_scores(X: np.ndarray, a: float, b: float, prior: float, n0: float,
                  cap: float | None = None) -> np.ndarray:
    """:class:`iznet.recognize.matcher.SpreadRule`'s score ``best - a * spread - b * margin`` of
    :func:`probe_features` rows (``inf`` where ``best`` is above ``cap``): a face is named when it is
    ``<= c``. The spread is shrunk to ``prior`` as :func:`iznet.recognize.matcher.person_spreads` does it."""
    X = np.asarray(X, dtype=np.float64)
    pairs = X[:, 3]
    denom = pairs + n0
    spread = np.where(denom > 0, (pairs * X[:, 2] + n0 * prior) / np.where(denom > 0, denom, 1.0), prior)
    s = X[:, 0] - a * spread - b * (X[:, 1] - X[:, 0])
    if cap is not None:
        s = np.where(X[:, 0] <= cap, s, np.inf)
    return s


def spread_shares(features: dict[str, np.ndarray], rule) -> dict[str, float]:
    """Right / wrong / unknown shares of members and the share of strangers rejected under ``rule`` (a
    :class:`~iznet.recognize.matcher.SpreadRule`, with its cap), from :func:`probe_features`."""
    M, S = features["members"], features["strangers"]
    nm = spread_scores(M, rule.a, rule.b, rule.prior, rule.n0, rule.cap) <= rule.c
    ns = spread_scores(S, rule.a, rule.b, rule.prior, rule.n0, rule.cap) <= rule.c
    right = M[:, 4] == 1
    n, m = max(1, len(M)), max(1, len(S))
    return {"right": float(np.sum(nm & right) / n), "wrong": float(np.sum(nm & ~right) / n),
            "unknown": float(np.sum(~nm) / n), "strangers_rejected": float(np.sum(~ns) / m),
            "strangers_named": float(np.sum(ns) / m)}


def spread_prior(emb: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """The median over people with at least ``k`` photos of the mean distance between two of their first ``k``
    (the spread a person with no pair of photos is given)."""
    emb = np.asarray(emb, dtype=np.float64)
    labels = np.asarray(labels)
    vals = []
    for p in np.unique(labels):
        e = emb[labels == p][:k]
        if len(e) >= max(2, k):
            vals.append(mean_pair_distance(e))
    if not vals:
        raise ValueError(f"no person has {k} or more photos: the prior spread cannot be measured")
    return float(np.median(vals))


def choose_spread_rule(features: dict, prior: float, cap_grid: Sequence[float], a_grid: Sequence[float],
                       b_grid: Sequence[float], n0_grid: Sequence[float], c_grid: Sequence[float],
                       max_wrong: float | dict = 0.01, max_strangers_named: float | dict = 0.1
                       ) -> tuple[dict | None, list[dict]]:
    """The spread rule (:class:`~iznet.recognize.matcher.SpreadRule`: a face is named when ``best <= cap`` and
    ``best - a * spread - b * margin <= c``, the spread shrunk to ``prior`` by ``n0`` pairs; every combination of
    the grids) with the most right names, on average over every setting in ``features`` (a dict
    ``{setting: probe_features(...)}``, e.g. photos enrolled x gallery size), among those that keep wrong names
    at most ``max_wrong`` and named strangers at most ``max_strangers_named`` at *every* setting. Either limit
    may be a dict with one value per setting (keys as in ``features``), e.g. what another rule gives there.

    Returns:
        ``(chosen, rows)``: for every (cap, a, b, n0) its best ``c`` (rows without an admissible ``c`` are left
        out), each ``{"a", "b", "c", "prior", "n0", "cap", "right" (mean), "wrong" (worst), "strangers_named"
        (worst), "by_setting"}``; ``chosen`` is the best row (the first on ties), None when no row keeps the
        limits.
    """
    cs = np.sort(np.asarray(c_grid, dtype=np.float64))

    def per_setting(limit, what):
        if not isinstance(limit, dict):
            return np.full((len(features), 1), float(limit))
        missing = [key for key in features if key not in limit]
        if missing:
            raise ValueError(f"{what} has no limit for the settings {missing}")
        return np.array([[float(limit[key])] for key in features])

    lim_w, lim_s = per_setting(max_wrong, "max_wrong"), per_setting(max_strangers_named, "max_strangers_named")
    rows = []
    for cap, a in ((t, a) for t in cap_grid for a in a_grid):
        for b in b_grid:
            for n0 in n0_grid:
                R, W, S = [], [], []
                for f in features.values():
                    M = f["members"]
                    sm = spread_scores(M, a, b, prior, n0, cap)
                    ss = np.sort(spread_scores(f["strangers"], a, b, prior, n0, cap))
                    ok = M[:, 4] == 1
                    n = max(1, len(M))
                    R.append(np.searchsorted(np.sort(sm[ok]), cs, side="right") / n)
                    W.append(np.searchsorted(np.sort(sm[~ok]), cs, side="right") / n)
                    S.append(np.searchsorted(ss, cs, side="right") / max(1, len(ss)))
                R, W, S = np.array(R), np.array(W), np.array(S)
                admissible = (W <= lim_w).all(0) & (S <= lim_s).all(0)
                if not admissible.any():
                    continue
                i = int(np.argmax(np.where(admissible, R.mean(0), -1.0)))
                rows.append({"a": float(a), "b": float(b), "c": float(cs[i]), "prior": float(prior), "n0": float(n0),
                             "cap": float(cap), "right": float(R[:, i].mean()), "wrong": float(W[:, i].max()),
                             "strangers_named": float(S[:, i].max()),
                             "by_setting": {str(key): {"right": float(R[j, i]), "wrong": float(W[j, i]),
                                                       "strangers_named": float(S[j, i])}
                                            for j, key in enumerate(features)}})
    chosen = max(rows, key=lambda r: r["right"]) if rows else None
    return chosen, rows
