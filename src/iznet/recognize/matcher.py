"""Matching embeddings against the gallery's prototypes, with an "unknown" threshold.

The rule (also in ``docs/gallery.md``): for a face embedding ``e``, a person's distance is the smallest
Euclidean distance from ``e`` to any of that person's prototypes. The best person is the one with the
smallest distance; the answer is that person's name when the distance is ``<= threshold`` and ``"unknown"``
otherwise (no threshold: always the best person, i.e. closed-set identification). The margin is the
second-best person's distance minus the best one's: how clearly the best person won; with ``min_margin``
a best person who wins by less is answered ``"unknown"`` too (a look-alike in the gallery is not a name).
With a :class:`SpreadRule` the answer is a name only when ``distance - a * spread - b * margin <= c`` and the
distance is at most the rule's cap (in place of the threshold, when there is a runner-up), where ``spread`` is
how far apart the best person's own enrolled photos lie (:func:`person_spreads`): a person photographed in
many ways may be matched from further away, a clear win counts for more than a close one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from iznet.errors import GalleryError
from iznet.recognize.gallery import EMPTY_MESSAGE
from iznet.recognize.prototypes import DEFAULT_METHOD, mean_pair_distance, pairwise_distances

if TYPE_CHECKING:
    from iznet.recognize.gallery import Gallery

UNKNOWN = "unknown"


@dataclass(frozen=True)
class SpreadRule:
    """The unknown-face rule that weighs the runner-up margin and the person's own spread.

    A face is named only when ``distance - a * spread - b * margin <= c`` and ``distance <= cap``, with
    ``spread`` the person's :func:`person_spreads` value: the mean distance between two of their enrolled
    photos, shrunk towards ``prior`` as if ``n0`` pairs at ``prior`` had been seen too (a person with one photo
    has no spread of their own and gets ``prior``). ``cap`` takes the place of the matcher's threshold when
    there is a runner-up to compare with; a gallery of one person has none, and keeps the threshold. The six
    numbers are chosen for one embedder on development people (``scripts/choose_spread_rule.py``) and
    shipped in its calibration as ``spread_rule``.
    """

    a: float
    b: float
    c: float
    prior: float
    n0: float
    cap: float

    KEYS = ("a", "b", "c", "prior", "n0", "cap")  # the calibration dict's keys (a class constant, not a field)

    def __post_init__(self):
        for key in self.KEYS:
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise GalleryError(f"spread rule: {key} must be a finite number, got {v!r}")
        if self.a < 0 or self.b < 0 or self.n0 < 0 or self.prior < 0:
            raise GalleryError(f"spread rule: a, b, prior and n0 must be >= 0, got {self.to_dict()}")

    @classmethod
    def from_dict(cls, d) -> "SpreadRule":
        """From a calibration's ``spread_rule`` dict; a missing or extra key raises :class:`GalleryError`."""
        keys = cls.KEYS
        if not isinstance(d, dict) or set(d) != set(keys):
            raise GalleryError(f"a spread rule needs exactly the keys {', '.join(keys)}; got {d!r}"
                               " (rewrite the calibration with scripts/make_assets.py --spread-rule)")
        return cls(**{k: d[k] for k in keys})

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.KEYS}

    def named(self, distance, spread, margin) -> np.ndarray:
        """True where the score passes, ``distance - a * spread - b * margin <= c`` (arrays broadcast; an
        infinite margin passes when ``b > 0``); the cap is the caller's (:class:`Matcher`)."""
        d, s, m = (np.asarray(x, dtype=np.float64) for x in (distance, spread, margin))
        score = d - self.a * s - (self.b * m if self.b else 0.0)  # b = 0: an infinite margin adds nothing
        return score <= self.c


def person_spreads(embeddings, labels, n_people: int, rule: SpreadRule) -> np.ndarray:
    """Each person's spread for :class:`SpreadRule`: ``(pairs * mean + n0 * prior) / (pairs + n0)``, where
    ``mean`` is the mean Euclidean distance over the ``pairs`` pairs of the person's embeddings.

    Args:
        embeddings: (N, D) enrolled embeddings.
        labels: (N,) person index of each row, in ``range(n_people)``.
        n_people: number of people.
        rule: gives ``prior`` and ``n0``.

    Returns:
        float64 (n_people,); a person with one embedding (no pair) and ``n0 = 0`` gets ``prior``.
    """
    X = np.asarray(embeddings, dtype=np.float64)
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(lab) != len(X):
        raise GalleryError(f"{len(lab)} labels for {len(X)} embeddings")
    out = np.full(n_people, float(rule.prior))
    for j in range(n_people):
        e = X[lab == j]
        pairs = len(e) * (len(e) - 1) / 2
        if pairs == 0:
            continue
        out[j] = (pairs * mean_pair_distance(e) + rule.n0 * rule.prior) / (pairs + rule.n0)
    return out


@dataclass(frozen=True)
class Match:
    """The answer for one face.

    Attributes:
        name: the best person's name, or ``"unknown"`` when their distance is above the threshold.
        distance: Euclidean distance to the best person's nearest prototype.
        nearest: the best person's name, even when ``name`` is ``"unknown"``.
        second_name: the runner-up person, or None when the gallery holds one person.
        second_distance: the runner-up's distance (``inf`` when there is none).
        margin: ``second_distance - distance`` (``inf`` when there is no runner-up).
    """

    name: str
    distance: float
    nearest: str
    second_name: str | None
    second_distance: float
    margin: float

    @property
    def known(self) -> bool:
        return self.name != UNKNOWN

    def to_dict(self) -> dict:
        """JSON-ready dict; infinite distances become None."""

        def fin(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "name": self.name,
            "distance": fin(self.distance),
            "nearest": self.nearest,
            "second_name": self.second_name,
            "second_distance": fin(self.second_distance),
            "margin": fin(self.margin),
        }


class Matcher:
    """Nearest-prototype matcher.

    Args:
        prototypes: (P, D) prototype rows.
        names: either one name per prototype row (rows with the same name belong to one person; this is what
            :meth:`Gallery.prototypes` returns), or, with ``person_of_prototype``, one name per person.
        threshold: distances above it are answered ``"unknown"``; None: never.
        person_of_prototype: (P,) index into ``names`` of each prototype row, for several prototypes per person.
        min_margin: answer ``"unknown"`` when the runner-up person is closer than ``distance + min_margin``
            (0: off).
        spread_rule: a :class:`SpreadRule` the best person must pass too, with ``spreads``: (n_people,) each
            person's spread (:func:`person_spreads`), in the order of the people (:attr:`names`).

    >>> m = Matcher(np.eye(2), ["ann", "bob"], threshold=0.5)
    >>> m.match(np.array([[1.0, 0.0]]))[0].name
    'ann'
    """

    def __init__(
        self,
        prototypes,
        names: Sequence[str],
        threshold: float | None = None,
        person_of_prototype: Sequence[int] | None = None,
        min_margin: float = 0.0,
        spread_rule: SpreadRule | None = None,
        spreads: Sequence[float] | None = None,
    ):
        P = np.asarray(prototypes, dtype=np.float64)
        if not (math.isfinite(float(min_margin)) and min_margin >= 0):
            raise GalleryError(f"min_margin must be a finite number >= 0, got {min_margin!r}")
        self.min_margin = float(min_margin)
        if P.size == 0 or len(names) == 0:
            raise GalleryError(EMPTY_MESSAGE)
        if P.ndim != 2:
            raise GalleryError(f"prototypes must be a (P, D) array, got shape {P.shape}")
        if not np.all(np.isfinite(P)):
            raise GalleryError("prototypes contain NaN or infinite values")
        if person_of_prototype is None:
            if len(names) != len(P):
                raise GalleryError(f"{len(names)} names for {len(P)} prototypes; give one name per prototype row")
            people = list(dict.fromkeys(names))
            index = {n: i for i, n in enumerate(people)}
            owner = np.array([index[n] for n in names], dtype=np.int64)
        else:
            people = list(names)
            if len(set(people)) != len(people):
                raise GalleryError("names must be distinct when person_of_prototype is given")
            owner = np.asarray(person_of_prototype, dtype=np.int64).reshape(-1)
            if len(owner) != len(P):
                raise GalleryError(f"person_of_prototype has {len(owner)} entries for {len(P)} prototypes")
            if owner.min() < 0 or owner.max() >= len(people):
                raise GalleryError(f"person_of_prototype must index names (0..{len(people) - 1})")
            lacking = sorted(set(range(len(people))) - set(owner.tolist()))
            if lacking:
                raise GalleryError(f"no prototype for {', '.join(people[i] for i in lacking)}")
        if threshold is not None:
            try:
                ok = math.isfinite(float(threshold))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise GalleryError(f"threshold must be a finite number or None, got {threshold!r}")
        order = np.argsort(owner, kind="stable")
        self.prototypes = P[order]
        self.person_of_prototype = owner[order]
        self._starts = np.flatnonzero(np.r_[True, np.diff(self.person_of_prototype) != 0])
        self.names = people
        self.threshold = None if threshold is None else float(threshold)
        self.spread_rule = spread_rule
        self.spreads = None
        if spread_rule is not None:
            sp = None if spreads is None else np.asarray(spreads, dtype=np.float64).reshape(-1)
            if sp is None or len(sp) != len(people) or not np.all(np.isfinite(sp)):
                raise GalleryError(f"a spread rule needs one finite spread per person ({len(people)}), got "
                                   f"{None if sp is None else sp.tolist()}")
            self.spreads = sp

    @classmethod
    def from_gallery(
        cls,
        gallery: Gallery,
        embedder_tag: str,
        method: str = DEFAULT_METHOD,
        k: int = 3,
        threshold: float | None | str = "stored",
        min_margin: float = 0.0,
        spread_rule: SpreadRule | None = None,
    ) -> Matcher:
        """A matcher over a gallery's prototypes; ``threshold="stored"`` uses the one calibrated for the embedder
        (see :meth:`Gallery.set_threshold`), or none when nothing is stored. With ``spread_rule`` the people's
        spreads come from their enrolled embeddings."""
        P, names = gallery.prototypes(embedder_tag, method=method, k=k)
        if threshold == "stored":
            threshold = gallery.threshold(embedder_tag)
        spreads = None
        if spread_rule is not None:
            X, labels, people = gallery.embeddings(embedder_tag)
            by_name = dict(zip(people, person_spreads(X, labels, len(people), spread_rule)))
            spreads = [by_name.get(n, spread_rule.prior) for n in dict.fromkeys(names)]
        return cls(P, names, threshold=threshold, min_margin=min_margin, spread_rule=spread_rule,
                   spreads=spreads)

    @property
    def dim(self) -> int:
        return int(self.prototypes.shape[1])

    def person_distances(self, embeddings) -> np.ndarray:
        """Distance of each embedding to each person (min over the person's prototypes).

        Args:
            embeddings: (N, D) or (D,).

        Returns:
            float64 (N, n_people), columns in the order of :attr:`names`.
        """
        E = np.asarray(embeddings, dtype=np.float64)
        if E.ndim == 1:
            E = E[None, :]
        if E.ndim != 2 or E.shape[1] != self.dim:
            raise GalleryError(
                f"embeddings of shape {E.shape} do not fit the gallery's {self.dim}-d prototypes;"
                " embed with the same model the gallery was enrolled with"
            )
        if len(E) == 0:
            return np.zeros((0, len(self.names)))
        D = pairwise_distances(E, self.prototypes)
        return np.minimum.reduceat(D, self._starts, axis=1)

    def match(self, embeddings) -> list[Match]:
        """Name every embedding (N, D) (or one (D,)); returns N :class:`Match`."""
        dist = self.person_distances(embeddings)
        out: list[Match] = []
        for row in dist:
            order = np.argsort(row, kind="stable")
            best = int(order[0])
            d = float(row[best])
            if len(order) > 1:
                second = int(order[1])
                name2, d2 = self.names[second], float(row[second])
            else:
                name2, d2 = None, math.inf
            limit = self.threshold
            if self.spread_rule is not None and name2 is not None:  # a runner-up: the rule's own cap
                limit = self.spread_rule.cap
            known = (limit is None or d <= limit) and d2 - d >= self.min_margin
            if known and self.spread_rule is not None:
                known = bool(self.spread_rule.named(d, self.spreads[best], d2 - d))
            out.append(
                Match(
                    name=self.names[best] if known else UNKNOWN,
                    distance=d,
                    nearest=self.names[best],
                    second_name=name2,
                    second_distance=d2,
                    margin=d2 - d,
                )
            )
        return out


def nearest_other_distances(matcher: "Matcher", embeddings, owners: Sequence[str]) -> np.ndarray:
    """For each enrolled embedding, its distance to the nearest person *other* than its owner: what a
    stranger who looks like that person would score (see :func:`gallery_threshold`)."""
    d = matcher.person_distances(embeddings).copy()
    col = {n: i for i, n in enumerate(matcher.names)}
    d[np.arange(len(owners)), [col[o] for o in owners]] = np.inf
    return d.min(axis=1)


def gallery_threshold(matcher: "Matcher", embeddings, owners: Sequence[str], far: float) -> float:
    """The largest threshold that would give at most ``far`` of a gallery's own enrolled photos the name of
    another enrolled person; ``inf`` with fewer than two people.

    Args:
        matcher: a matcher over the gallery's prototypes.
        embeddings: (N, D) the enrolled photos' embeddings.
        owners: (N,) their people's names (in ``matcher.names``).
        far: share of those photos that may be misnamed.
    """
    if len(matcher.names) < 2 or len(owners) == 0:
        return math.inf
    imp = nearest_other_distances(matcher, embeddings, owners)
    return calibrate_threshold(imp, np.zeros(len(imp), dtype=bool), far)


def largest_accepting(distances: np.ndarray, allowed: int) -> float:
    """The largest threshold ``t`` with at most ``allowed`` of ``distances`` ``<= t`` (``inf``: all may be)."""
    d = np.sort(np.asarray(distances, dtype=np.float64))
    if allowed >= d.size:
        return math.inf
    return float(np.nextafter(d[allowed], -np.inf))


def calibrate_threshold(dist, same, target_far: float = 1e-3) -> float:
    """The largest distance threshold whose false-accept rate on impostor pairs is at most ``target_far``.

    A pair is accepted when its distance is ``<= threshold``. With the impostor distances sorted as
    ``s[0] <= s[1] <= ...`` and ``m = floor(target_far * n_impostors)``, at most ``m`` of them may be accepted,
    so the threshold is the largest float strictly below ``s[m]`` (ties with ``s[m]`` are rejected too).

    Args:
        dist: (N,) distances of held-out pairs.
        same: (N,) True for a genuine pair (same person), False for an impostor pair.
        target_far: the wanted false-accept rate, in [0, 1].

    Returns:
        The threshold (``inf`` when the target allows accepting every impostor pair).

    >>> calibrate_threshold([0.2, 0.5, 0.7, 0.9, 1.1], [True, False, False, False, False], 0.25) < 0.7
    True
    """
    d = np.asarray(dist, dtype=np.float64).reshape(-1)
    s = np.asarray(same).reshape(-1)
    if d.shape != s.shape:
        raise GalleryError(f"dist has {d.size} entries but same has {s.size}")
    if not np.all(np.isfinite(d)):
        raise GalleryError("distances contain NaN or infinite values")
    if not 0.0 <= target_far <= 1.0:
        raise GalleryError(f"target_far must be in [0, 1], got {target_far}")
    impostor = np.sort(d[~s.astype(bool)])
    if impostor.size == 0:
        raise GalleryError("no impostor pairs (same=False): the false-accept rate cannot be measured")
    m = math.floor(target_far * impostor.size + 1e-9)
    if m >= impostor.size:
        return math.inf
    return float(np.nextafter(impostor[m], -np.inf))
