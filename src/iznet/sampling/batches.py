"""P×K batches: P people, K images each, for online mining (FaceNet §3.2; Hermans et al.'s batch-hard).

An epoch is one pass over the people: they are shuffled and cut into groups of P; each group becomes a
batch of P·K dataset indices, K consecutive indices per person. A person with at least K images gives K
distinct images (a random subset); a person with fewer gives all of them plus random repeats (drawn
with replacement) up to K, so the batch shape stays fixed. People with fewer than ``min_images`` images
are left out (default 2: a lone image can only pair with a copy of itself). With ``extra = E``, each
batch also gets E images of those left-out people (distinct, uniform over their images), appended after
the P·K: no other image in the batch shares their label, so every miner uses them as negatives only. On
LFW they are the 4,069 people with one photo, a third of the images, who otherwise never take part.

``people_weight`` chooses how often each person is visited. ``"uniform"`` (FaceNet's and the default):
every person once per epoch, whatever their number of images; on LFW a person with 2 photos is then seen
as often as one with 530, so the few images of small people are repeated ~100× more often than those of
the largest. ``"images"`` and ``"sqrt"``: each batch draws its P distinct people by successive sampling
(one person at a time, with probability proportional to n_i or √n_i among those not drawn yet), so
images are visited more evenly; an epoch then has the same number of batches but no longer visits every
person. The draw uses Efraimidis–Spirakis keys (u^(1/w), the P largest), which is exactly successive
sampling in one vectorised pass over the people.

Everything is a function of (seed, epoch, batch index): the people order of an epoch comes from
``default_rng([seed, epoch])`` and the images of batch b from ``default_rng([seed, epoch, b])``, so a
run resumes exactly from (seed, epoch, batch) without replaying earlier batches.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from iznet.sampling._layout import SamplingError, class_layout

__all__ = ["PKBatchSampler", "PEOPLE_WEIGHTS", "lookalike_table"]

PEOPLE_WEIGHTS = ("uniform", "images", "sqrt")


def _positive_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise SamplingError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def lookalike_table(directions, m: int, chunk: int = 2048) -> np.ndarray:
    """Each class's ``m`` nearest other classes by the cosine of their direction vectors, nearest first.

    Args:
        directions: (C, D) one vector per class (e.g. imprinted class centroids; any norm, zero rows allowed).
        m: neighbours per class (at most C - 1 are given; the rest of a row is -1).
        chunk: rows compared at a time (memory C x chunk).

    Returns:
        (C, m) int64 class indices; ties keep the lower index first.

    >>> lookalike_table(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]), 1).tolist()
    [[1], [0], [1]]
    """
    d = np.asarray(directions, dtype=np.float64)
    if d.ndim != 2 or len(d) == 0:
        raise SamplingError(f"directions must be a (C, D) array with C >= 1, got shape {d.shape}")
    m = _positive_int("m", m)
    n = np.linalg.norm(d, axis=1, keepdims=True)
    u = np.divide(d, n, out=np.zeros_like(d), where=n > 0)
    c = len(u)
    take = min(m, c - 1)
    out = np.full((c, m), -1, dtype=np.int64)
    if take == 0:
        return out
    for a in range(0, c, chunk):
        sim = u[a:a + chunk] @ u.T
        sim[np.arange(len(sim)), np.arange(a, a + len(sim))] = -np.inf  # not oneself
        order = np.argsort(-sim, axis=1, kind="stable")[:, :take]
        out[a:a + len(sim), :take] = order
    return out


class PKBatchSampler:
    """Yields lists of P·K dataset indices; usable as ``DataLoader(dataset, batch_sampler=...)``.

    Args:
        labels: (N,) integer identity of each dataset item.
        p: people per batch.
        k: images per person.
        seed: base seed of every epoch's randomness.
        drop_last: drop the last group when fewer than P people remain (else it yields a smaller batch).
        min_images: leave out people with fewer images than this.
        extra: images of left-out people (fewer than ``min_images`` images) appended to each batch, as
            negatives only; 0: none.
        people_weight: ``"uniform"`` (each person once per epoch), ``"images"`` or ``"sqrt"`` (people
            drawn per batch with probability ∝ n_i or √n_i; see the module docstring).
        lookalikes: (num_classes, M) class indices of each class's nearest other classes, nearest first (-1:
            none), indexed like the labels; with ``group`` > 1 the batches are look-alike groups (module
            docstring). None: plain batches.
        group: people per look-alike group (a seed and ``group - 1`` of its neighbours); 1: plain batches.

    The epoch advances by itself at the end of a full pass; :meth:`set_epoch` sets it explicitly.
    :meth:`state_dict` is ``{"seed", "epoch", "batch"}`` (batch = index of the next batch to yield).
    A DataLoader fetches batches ahead of the training loop, so for an exact resume save the number
    of batches the loop has *consumed* as ``batch``, not the sampler's own counter.

    >>> s = PKBatchSampler([0, 0, 1, 1, 2, 2, 3, 3], p=2, k=2, seed=0)
    >>> len(s), [len(b) for b in s]
    (2, [4, 4])
    """

    def __init__(self, labels, p: int, k: int, seed: int = 0, drop_last: bool = True, min_images: int = 2,
                 extra: int = 0, people_weight: str = "uniform", lookalikes=None, group: int = 1):
        self.p = _positive_int("p", p)
        self.group = _positive_int("group", group)
        self.k = _positive_int("k", k)
        self.min_images = _positive_int("min_images", min_images)
        self.extra = 0 if extra == 0 else _positive_int("extra", extra)
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise SamplingError(f"seed must be an int >= 0, got {seed!r}")
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        if people_weight not in PEOPLE_WEIGHTS:
            raise SamplingError(f"people_weight {people_weight!r}: choose one of {', '.join(PEOPLE_WEIGHTS)}")
        self.people_weight = people_weight
        self.layout = class_layout(labels)
        self.people = np.flatnonzero(self.layout.sizes >= self.min_images)  # class indices kept
        self.extra_pool = np.flatnonzero(self.layout.sizes[self.layout.class_of] < self.min_images)
        if self.extra > len(self.extra_pool):
            raise SamplingError(
                f"extra={self.extra} negatives per batch, but only {len(self.extra_pool)} images belong to "
                f"people with fewer than min_images={self.min_images} images; lower extra (0: none)")
        n_people = len(self.people)
        if n_people < self.p and (self.drop_last or n_people == 0):
            raise SamplingError(
                f"only {n_people} people have at least min_images={self.min_images} images, fewer than "
                f"p={self.p}; lower p or min_images, or use more data")
        sizes = self.layout.sizes[self.people].astype(np.float64)
        self.weights = {"uniform": np.ones_like(sizes), "images": sizes, "sqrt": np.sqrt(sizes)}[people_weight]
        self.lookalikes = None
        if self.group > 1:
            if lookalikes is None:
                raise SamplingError(f"group={self.group} needs a lookalikes table (each person's nearest others)")
            table = np.asarray(lookalikes)
            n_classes = len(self.layout.sizes)
            if table.ndim != 2 or table.shape[0] != n_classes or not np.issubdtype(table.dtype, np.integer):
                raise SamplingError(f"lookalikes must be an integer ({n_classes}, M) table, one row per class; got "
                                    f"{table.dtype} {table.shape}")
            if table.size and (table.min() < -1 or table.max() >= n_classes):
                raise SamplingError(f"lookalikes holds class indices outside -1..{n_classes - 1}")
            if self.group > self.p:
                raise SamplingError(f"group={self.group} is larger than p={self.p} people per batch")
            self.lookalikes = table.astype(np.int64)
            self._takes_part = np.zeros(n_classes, dtype=bool)
            self._takes_part[self.people] = True
        self.epoch = 0
        self.batch = 0
        self._order_cache: tuple[int, np.ndarray] | None = None

    @property
    def num_people(self) -> int:
        """People taking part (those with at least ``min_images`` images)."""
        return int(len(self.people))

    def __len__(self) -> int:
        """Batches in a full epoch."""
        full, rest = divmod(self.num_people, self.p)
        return full + (1 if rest and not self.drop_last else 0)

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` from its first batch at the next iteration."""
        if isinstance(epoch, (bool, np.bool_)) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise SamplingError(f"epoch must be an int >= 0, got {epoch!r}")
        self.epoch = int(epoch)
        self.batch = 0

    def state_dict(self) -> dict[str, Any]:
        """``{"seed", "epoch", "batch"}``: everything needed to resume (see the class docstring)."""
        return {"seed": self.seed, "epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at ``state["batch"]`` of ``state["epoch"]``.

        Raises:
            SamplingError: keys missing, a seed that differs from this sampler's, or a batch out of range.
        """
        missing = {"seed", "epoch", "batch"} - set(state)
        if missing:
            raise SamplingError(f"PKBatchSampler state lacks {sorted(missing)}; expected seed, epoch and batch")
        if int(state["seed"]) != self.seed:
            raise SamplingError(f"state was saved with seed={state['seed']}, this sampler has seed={self.seed}")
        batch = int(state["batch"])
        if not 0 <= batch <= len(self):
            raise SamplingError(f"batch {batch} is outside 0..{len(self)} (batches per epoch)")
        self.set_epoch(int(state["epoch"]))
        self.batch = batch

    def epoch_people(self, epoch: int) -> np.ndarray:
        """(num_people,) class indices of ``epoch``'s people in their visiting order."""
        return self._people_order(epoch).copy()

    def _people_order(self, epoch: int) -> np.ndarray:
        if self._order_cache is None or self._order_cache[0] != epoch:
            self._order_cache = (epoch, np.random.default_rng([self.seed, epoch]).permutation(self.people))
        return self._order_cache[1]

    def batch_people(self, epoch: int, batch: int) -> np.ndarray:
        """Class indices of the people of batch ``batch`` of ``epoch``, in drawing order."""
        if self.people_weight == "uniform" and self.lookalikes is None:
            return self._people_order(epoch)[batch * self.p : (batch + 1) * self.p]
        u = np.random.default_rng([self.seed, epoch, batch, 1]).random(len(self.people))
        keys = np.log(u) / self.weights  # log(u^(1/w)): the P largest are a successive sample ∝ w
        if self.lookalikes is not None:
            return self._lookalike_people(self.people[np.argsort(-keys, kind="stable")])
        top = np.argpartition(-keys, self.p - 1)[: self.p] if self.p < len(keys) else np.arange(len(keys))
        return self.people[top[np.argsort(-keys[top], kind="stable")]]

    def _lookalike_people(self, drawn: np.ndarray) -> np.ndarray:
        """P people in look-alike groups: seeds in ``drawn`` order, each followed by up to ``group - 1`` of its
        neighbours (table order) that take part and are not chosen yet."""
        chosen: list[int] = []
        seen = np.zeros(len(self._takes_part), dtype=bool)
        for s in drawn:  # stops after about P / group seeds
            if len(chosen) >= self.p:
                break
            if seen[s]:
                continue
            chosen.append(int(s))
            seen[s] = True
            room = min(self.group - 1, self.p - len(chosen))
            for c in self.lookalikes[s]:
                if room == 0:
                    break
                if c >= 0 and self._takes_part[c] and not seen[c]:
                    chosen.append(int(c))
                    seen[c] = True
                    room -= 1
        return np.asarray(chosen, dtype=np.int64)

    def batch_indices(self, epoch: int, batch: int) -> list[int]:
        """The dataset indices of batch ``batch`` of ``epoch`` (P·K of them, K per person, person-major, then
        the ``extra`` negatives-only images)."""
        people = self.batch_people(epoch, batch)
        rng = np.random.default_rng([self.seed, epoch, batch])
        out: list[np.ndarray] = []
        for c in people:  # at most P people: a loop over people, not over images
            items = self.layout.items_of(int(c))
            if len(items) >= self.k:
                out.append(rng.choice(items, size=self.k, replace=False))
            else:
                extra = rng.choice(items, size=self.k - len(items), replace=True)
                out.append(np.concatenate([rng.permutation(items), extra]))
        if out and self.extra:  # drawn last, so the P·K part is the same with or without extras
            out.append(rng.choice(self.extra_pool, size=self.extra, replace=False))
        return np.concatenate(out).tolist() if out else []

    def __iter__(self) -> Iterator[list[int]]:
        epoch, n = self.epoch, len(self)
        while self.batch < n:
            b = self.batch
            self.batch += 1
            yield self.batch_indices(epoch, b)
        # the pass is complete: the next iteration is a fresh epoch
        self.epoch, self.batch = epoch + 1, 0

    def __repr__(self) -> str:
        return (f"PKBatchSampler(p={self.p}, k={self.k}, people={self.num_people}, batches={len(self)}, "
                f"people_weight={self.people_weight!r}, group={self.group}, seed={self.seed}, epoch={self.epoch})")
