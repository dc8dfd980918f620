"""Training data for embedders: which images a run trains on, which pairs it is checked on.

A data spec names the source and the split:

* ``lfw:view1`` — LFW people not in ``pairsDevTest``; the test pairs are ``pairsDevTest``.
* ``lfw:fold=K`` — LFW people not in View 2 fold K (K = 0..9); the test pairs are fold K.
* ``lfw:all`` — every LFW person (for a model that will not be scored on LFW).
* ``lfw:all-except=A,B`` — every LFW person but the named ones (e.g. the people of a demo gallery).
* a folder (``root/<person>/<image>``) or a pack file (``.pt`` written by ``iznet pack``).

Every spec also holds out a development set that the run never trains on: for LFW a share of the
training-side *people* (so dev pairs are identity-disjoint from training and from the test fold);
for a collection pack (``iznet data build``) a share of its people likewise; for any other folder or pack
(a group of a few people) the last images of each person. Development pairs drive the
periodic accuracy check and, for LFW, the verification threshold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from iznet.errors import DataError

_logger = logging.getLogger(__name__)


@dataclass
class Split:
    """Images (indices into a :class:`TrainData`'s image tensor) and labels of one part of a split."""

    indices: np.ndarray  # int64 (N,)
    labels: np.ndarray  # int64 (N,), contiguous 0..C-1
    classes: list[str]


@dataclass
class PairSet:
    """Verification pairs over a :class:`TrainData`'s image tensor."""

    idx1: np.ndarray
    idx2: np.ndarray
    same: np.ndarray  # bool
    fold: np.ndarray | None = None  # fold id per pair, when the pairs come in folds


@dataclass
class TrainData:
    """Everything a training run reads: decoded images and the index sets into them."""

    images: torch.Tensor  # uint8 (N,3,S,S), on the training device
    train: Split
    dev_pairs: PairSet
    test_pairs: PairSet | None = None
    spec: str = ""
    info: dict = field(default_factory=dict)
    held_out: Split | None = None  # a group's held-out images of its training people (labels as in ``train``)
    paths: list[str] | None = None  # a pack's relative path of each image (``images`` order), when from a pack


def _relabel(names: list[str]) -> tuple[np.ndarray, list[str]]:
    classes = sorted(set(names))
    lut = {c: i for i, c in enumerate(classes)}
    return np.array([lut[n] for n in names], dtype=np.int64), classes


def sample_pairs(labels: np.ndarray, n_same: int, n_diff: int, rng: np.random.Generator) -> PairSet:
    """Uniformly random same/different pairs over a labelled index set (positions into ``labels``).

    Uses the exact uniform pair sampler, so every same pair and every different pair is equally likely.
    Raises a DataError (from the sampler) when there is no same or no different pair to draw.
    """
    from iznet.sampling.pairs import UniformPairSampler

    sampler = UniformPairSampler(np.asarray(labels), positive_fraction=0.5, seed=int(rng.integers(2**31)))
    pos, neg = sampler.sample_positive(n_same), sampler.sample_negative(n_diff)
    pairs = np.concatenate([pos, neg])
    same = np.concatenate([np.ones(len(pos), bool), np.zeros(len(neg), bool)])
    return PairSet(pairs[:, 0].copy(), pairs[:, 1].copy(), same)


def _pairs_to_index(pairs, index_of) -> PairSet:
    idx1 = np.array([index_of(f"{p.name1}/{p.name1}_{p.idx1:04d}.jpg") for p in pairs], dtype=np.int64)
    idx2 = np.array([index_of(f"{p.name2}/{p.name2}_{p.idx2:04d}.jpg") for p in pairs], dtype=np.int64)
    same = np.array([p.same for p in pairs], dtype=bool)
    return PairSet(idx1, idx2, same)


def read_people_list(path: str | Path) -> list[str]:
    """Names from a text file, one a line (blank lines and lines starting with ``#`` skipped)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read the list of people {path}: {e}") from None
    names = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    if not names:
        raise DataError(f"{path} names nobody: write one person a line")
    return names


def build_train_data(spec: str, *, pack: str | Path | None = None, data_root: str | Path | None = None,
                     device: torch.device | str = "cpu", dev_share: float = 0.05, dev_pairs: int = 1000,
                     seed: int = 0, size: int = 112, dev_people: Sequence[str] | None = None) -> TrainData:
    """Resolve a data spec into decoded images, a training split and dev/test pairs.

    Args:
        spec: ``lfw:view1``, ``lfw:fold=K``, ``lfw:all``, a folder or a pack file.
        pack: an LFW pack (``iznet pack lfw``); without it LFW is packed in memory (slower).
        data_root: the data folder holding ``lfw/`` (defaults to :func:`iznet.data.paths.data_root`).
        device: where the decoded images live (the GPU when training there).
        dev_share: share of training-side people (LFW) held out for development pairs.
        dev_pairs: number of same and of different development pairs.
        seed: seeds the dev split and the dev pairs.
        size: face size when packing on the fly.
        dev_people: for a collection pack, hold out exactly these people (those the pack has with 2+ images)
            instead of a random ``dev_share``: e.g. another run's development people, so that two models can be
            compared on people neither trained on.
    """
    rng = np.random.default_rng(seed)
    if spec.startswith("lfw:"):
        return _build_lfw(spec, pack, data_root, device, dev_share, dev_pairs, rng, size)
    path = Path(spec)
    if path.is_file():
        from iznet.data.pack import load_pack

        p = load_pack(path)
        names = [p.classes[int(l)] for l in p.labels]
        images = p.decode(device=device)
        if p.meta.get("dataset") == "iznet-collection-v1":
            data = _build_people(spec, images, names, dev_share, dev_pairs, rng, dev_people)
        elif dev_people is not None:
            raise DataError(f"{spec}: a list of development people applies to collection packs only")
        else:
            data = _build_group(spec, images, names, dev_pairs, rng)
        data.paths = list(p.paths)
        if p.meta.get("crop") in ("aligned", "box"):
            data.info["crop"] = p.meta["crop"]  # the face crop convention the model learns (see iznet.data.align)
        return data
    elif path.is_dir():
        images, names = _pack_folder_in_memory(path, size, device)
    else:
        raise DataError(f"training data {spec!r} is neither lfw:view1|lfw:fold=K|lfw:all, a folder nor a "
                        f"pack file")
    return _build_group(spec, images, names, dev_pairs, rng)


def _pack_folder_in_memory(root: Path, size: int, device) -> tuple[torch.Tensor, list[str]]:
    import tempfile

    from iznet.data.datasets import IdentityFolder
    from iznet.data.pack import load_pack, pack_identity_folder

    folder = IdentityFolder(root)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "folder.pt"
        pack_identity_folder(folder, out, size)
        p = load_pack(out)
        names = [p.classes[int(l)] for l in p.labels]
        return p.decode(device=device), names


GROUP_HELD_OUT_SHARE = 0.2


def group_split(names, held_out_share: float = GROUP_HELD_OUT_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """Per person: the first images (in the given order) for training, the last ``held_out_share`` held out.

    People with fewer than 3 images are kept whole for training; with 3, one is held out; with 4 or more, at
    least two (so that every person gives a same-person development pair: five photos a person, a common
    fine-tuning case, hold out two). ``iznet train`` on a folder or pack uses
    this split (held-out images give the development pairs) and ``iznet analyze --part held-out`` picks
    the same images, so a group's analysis can be run on images the model never trained on.

    Returns:
        (train indices, held-out indices), int64, each in input order within a person, people sorted.
    """
    names_arr = np.asarray(names)
    train_idx, held_idx = [], []
    for person in sorted(set(names_arr.tolist())):
        idx = np.flatnonzero(names_arr == person)
        n = len(idx)
        n_held = 0 if n < 3 else 1 if n == 3 else max(2, int(round(held_out_share * n)))
        train_idx.extend(idx[: len(idx) - n_held])
        held_idx.extend(idx[len(idx) - n_held:])
    return np.array(train_idx, dtype=np.int64), np.array(held_idx, dtype=np.int64)


def _build_group(spec: str, images: torch.Tensor, names: list[str], dev_pairs: int,
                 rng: np.random.Generator) -> TrainData:
    """A group of people: train on the first 80% of each person's images, dev on the rest."""
    names_arr = np.array(names)
    train_idx, dev_idx = group_split(names)
    labels, classes = _relabel(list(names_arr[train_idx]))
    if len(dev_idx) < 2:
        raise DataError(f"{spec}: too few images to hold out a development set (need 3+ per person)")
    dev_labels, _ = _relabel(list(names_arr[dev_idx]))
    if np.bincount(dev_labels).max() < 2 or dev_labels.max() < 1:
        raise DataError(f"{spec}: the development pairs need a person with 4+ images (who holds out two) and a "
                        f"second with 3+; give two or more people with 4+ images each")
    pairs = sample_pairs(dev_labels, dev_pairs, dev_pairs, rng)
    dev = PairSet(dev_idx[pairs.idx1], dev_idx[pairs.idx2], pairs.same)
    lut = {c: i for i, c in enumerate(classes)}
    held = Split(dev_idx, np.array([lut[n] for n in names_arr[dev_idx]], dtype=np.int64), classes)
    return TrainData(images, Split(train_idx, labels, classes), dev, None, spec,
                     {"train_images": len(train_idx), "train_people": len(classes),
                      "dev_images": len(dev_idx)}, held_out=held)


def _choose_dev_people(by_person: dict[str, list[int]], people: list[str], dev_share: float,
                       rng: np.random.Generator, chosen: Sequence[str] | None = None) -> set[str]:
    """A ``dev_share`` of the ``people`` with 2+ images, drawn with ``rng`` (or the ``chosen`` ones among them)."""
    multi = [q for q in people if len(by_person[q]) >= 2]
    if chosen is not None:
        picked = set(chosen) & set(multi)
        if len(picked) < 2:
            raise DataError(f"only {len(picked)} of the {len(set(chosen))} development people given are in the "
                            f"training data with 2+ images; the development pairs need at least 2")
        return picked
    n_dev = max(2, int(round(dev_share * len(multi))))
    return set(rng.choice(multi, size=min(n_dev, len(multi)), replace=False).tolist())


def development_people(pack: str | Path, seed: int = 0, dev_share: float = 0.05) -> list[str]:
    """The development people a run on the collection ``pack`` holds out with ``seed`` (as
    :func:`build_train_data` draws them), sorted; read from the labels alone, no image is decoded."""
    from iznet.data.pack import load_pack

    p = load_pack(pack)
    if p.meta.get("dataset") != "iznet-collection-v1":
        raise DataError(f"{pack}: not a collection pack (development people are drawn from collection packs)")
    by_person: dict[str, list[int]] = {}
    for i, lab in enumerate(p.labels):
        by_person.setdefault(p.classes[int(lab)], []).append(i)
    return sorted(_choose_dev_people(by_person, sorted(by_person), dev_share, np.random.default_rng(seed)))


def _hold_out_people(person_of: list[str], people: list[str], dev_share: float, dev_pairs: int,
                     rng: np.random.Generator, chosen: Sequence[str] | None = None) -> tuple[Split, PairSet, int]:
    """Train on ``people`` less a ``dev_share`` of those with 2+ images (or the ``chosen`` ones among them),
    whose pairs are the dev set."""
    by_person: dict[str, list[int]] = {}
    for i, name in enumerate(person_of):
        by_person.setdefault(name, []).append(i)
    people = [q for q in people if q in by_person]
    dev_people = _choose_dev_people(by_person, people, dev_share, rng, chosen)
    train_people = [q for q in people if q not in dev_people]
    train_idx = np.array([i for q in train_people for i in by_person[q]], dtype=np.int64)
    labels, classes = _relabel([person_of[i] for i in train_idx])
    dev_idx = np.array([i for q in sorted(dev_people) for i in by_person[q]], dtype=np.int64)
    dev_labels, _ = _relabel([person_of[i] for i in dev_idx])
    pairs = sample_pairs(dev_labels, dev_pairs, dev_pairs, rng)
    dev = PairSet(dev_idx[pairs.idx1], dev_idx[pairs.idx2], pairs.same)
    return Split(train_idx, labels, classes), dev, len(dev_people)


def _build_people(spec: str, images: torch.Tensor, names: list[str], dev_share: float, dev_pairs: int,
                  rng: np.random.Generator, dev_people: Sequence[str] | None = None) -> TrainData:
    """A collection pack (``iznet data build``): many people, so development people are held out whole."""
    train, dev, n_dev = _hold_out_people(names, sorted(set(names)), dev_share, dev_pairs, rng, dev_people)
    info = {"train_images": int(len(train.indices)), "train_people": len(train.classes), "dev_people": n_dev}
    if dev_people is not None:
        info["dev_people_given"] = len(set(dev_people))
    return TrainData(images, train, dev, None, spec, info)


def _build_lfw(spec, pack, data_root, device, dev_share, dev_pairs, rng, size) -> TrainData:
    from iznet.data import lfw as L
    from iznet.data.pack import load_pack, pack_lfw
    from iznet.data.paths import data_root as resolve_root

    root = resolve_root(data_root) / "lfw"
    if not (root / "pairs.txt").is_file():
        raise DataError(f"no LFW pair files in {root}; pass --data-root DIR holding lfw/pairs.txt")
    if pack is None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "lfw.pt"
            pack_lfw(root, out, size)
            p = load_pack(out)
            images = p.decode(device=device)
    else:
        p = load_pack(pack)
        images = p.decode(device=device)
    all_people = sorted({rp.split("/", 1)[0] for rp in p.paths})

    def outside(pairs) -> list[str]:
        excluded = {q.name1 for q in pairs} | {q.name2 for q in pairs}
        return [q for q in all_people if q not in excluded]

    what = spec.split(":", 1)[1]
    if what == "view1":
        _, test = L.load_view1(root)
        people, test_pairs = outside(test), test
    elif what.startswith("fold="):
        try:
            k = int(what.split("=", 1)[1])
        except ValueError:
            raise DataError(f"bad fold in {spec!r}: use lfw:fold=0 .. lfw:fold=9") from None
        folds = L.load_view2(root)
        if not 0 <= k < len(folds):
            raise DataError(f"bad fold in {spec!r}: use lfw:fold=0 .. lfw:fold={len(folds) - 1}")
        people, test_pairs = outside(folds[k]), folds[k]
    elif what == "all":
        people, test_pairs = all_people, None
    elif what.startswith("all-except="):
        excluded = {q.strip() for q in what.split("=", 1)[1].split(",") if q.strip()}
        unknown = excluded - set(all_people)
        if unknown:
            raise DataError(f"{spec!r}: not LFW people: {', '.join(sorted(unknown))}")
        people, test_pairs = [q for q in all_people if q not in excluded], None
    else:
        raise DataError(f"unknown LFW spec {spec!r}: use lfw:view1, lfw:fold=K, lfw:all or "
                        f"lfw:all-except=NAME,NAME")
    test_folds = None

    person_of = [rp.split("/", 1)[0] for rp in p.paths]
    train, dev, n_dev = _hold_out_people(person_of, people, dev_share, dev_pairs, rng)
    test = None
    if test_pairs is not None:
        test = _pairs_to_index(test_pairs, p.index_of)
        test.fold = test_folds
    info = {"train_images": int(len(train.indices)), "train_people": len(train.classes),
            "dev_people": n_dev, "test_pairs": 0 if test is None else int(len(test.same))}
    return TrainData(images, train, dev, test, spec, info)
