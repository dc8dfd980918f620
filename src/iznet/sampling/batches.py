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

__all__ = ["PKBatchSampler", "PEOPLE_WEIGHTS"]

PEOPLE_WEIGHTS = ("uniform", "images", "sqrt")


def _positive_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise SamplingError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


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

    The epoch advances by itself at the end of a full pass; :meth:`set_epoch` sets it explicitly.
    :meth:`state_dict` is ``{"seed", "epoch", "batch"}`` (batch = index of the next batch to yield).
    A DataLoader fetches batches ahead of the training loop, so for an exact resume save the number
    of batches the loop has *consumed* as ``batch``, not the sampler's own counter.

    >>> s = PKBatchSampler([0, 0, 1, 1, 2, 2, 3, 3], p=2, k=2, seed=0)
    >>> len(s), [len(b) for b in s]
    (2, [4, 4])
    """

    def __init__(self, labels, p: int, k: int, seed: int = 0, drop_last: bool = True, min_images: int = 2,
                 extra: int = 0, people_weight: str = "uniform"):
        self.p = _positive_int("p", p)
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
        if self.people_weight == "uniform":
            return self._people_order(epoch)[batch * self.p : (batch + 1) * self.p]
        u = np.random.default_rng([self.seed, epoch, batch, 1]).random(len(self.people))
        keys = np.log(u) / self.weights  # log(u^(1/w)): the P largest are a successive sample ∝ w
        top = np.argpartition(-keys, self.p - 1)[: self.p] if self.p < len(keys) else np.arange(len(keys))
        return self.people[top[np.argsort(-keys[top], kind="stable")]]

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
                f"people_weight={self.people_weight!r}, seed={self.seed}, epoch={self.epoch})")
