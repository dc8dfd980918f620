"""LFW (Labeled Faces in the Wild): the image tree, the pair files and identity-disjoint splits.

Layout expected under an LFW folder::

    images/<Name>/<Name>_<NNNN>.jpg     (deep-funneled, 250x250; NNNN counts from 0001)
    pairs.txt                           View 2: header "10 300", then per fold 300 same + 300 different
    pairsDevTrain.txt, pairsDevTest.txt View 1: header "1100" / "500", then that many same + different

A pair line is ``name idx1 idx2`` (same person) or ``name1 idx1 name2 idx2`` (different people).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from iznet.data.datasets import IdentityFolder
from iznet.data.paths import data_root
from iznet.errors import DataError

VIEW2_FOLDS = 10
VIEW2_PAIRS_PER_CLASS = 300


@dataclass(frozen=True)
class Pair:
    """One verification pair: image ``idx1`` of ``name1`` and image ``idx2`` of ``name2`` (1-based)."""

    name1: str
    idx1: int
    name2: str
    idx2: int
    same: bool


def read_pairs(path: str | Path) -> list[list[Pair]]:
    """Parse an LFW pair file.

    Two headers are understood: ``"F N"`` (F folds, each N same pairs then N different pairs, as in
    ``pairs.txt``) and ``"N"`` (one fold of N same then N different, as in the View 1 files).

    Returns:
        One list of 2N pairs per fold, in file order.

    Raises:
        DataError: missing file, bad header, a malformed line (with file and line number), a
            same/different line where the other kind is due, or a wrong number of lines.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"pair file {path} does not exist")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    # Line numbers are 1-based; trailing blank lines are allowed, blank lines inside are not.
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(f"{path}: empty pair file")
    head = lines[0].split()
    try:
        nums = [int(t) for t in head]
    except ValueError:
        nums = []
    if len(nums) == 2 and nums[0] > 0 and nums[1] > 0:
        folds, n = nums
    elif len(nums) == 1 and nums[0] > 0:
        folds, n = 1, nums[0]
    else:
        raise DataError(f"{path}:1: bad header {lines[0]!r}; expected 'FOLDS PAIRS_PER_CLASS' (e.g. '10 300') "
                        f"or 'PAIRS_PER_CLASS' (e.g. '500')")
    expected = folds * 2 * n
    body = lines[1:]
    if len(body) != expected:
        raise DataError(f"{path}: header {lines[0].strip()!r} announces {expected} pair lines, found {len(body)}")
    out: list[list[Pair]] = []
    for f in range(folds):
        fold: list[Pair] = []
        for j in range(2 * n):
            lineno = 2 + f * 2 * n + j
            want_same = j < n
            fold.append(_parse_pair(body[lineno - 2], path, lineno, want_same))
        out.append(fold)
    return out


def _parse_pair(line: str, path: Path, lineno: int, want_same: bool) -> Pair:
    t = line.split()
    kind = "same-person 'name idx1 idx2'" if want_same else "different-person 'name1 idx1 name2 idx2'"
    if len(t) not in (3, 4):
        raise DataError(f"{path}:{lineno}: malformed pair line {line!r}; expected a {kind} line")
    if (len(t) == 3) != want_same:
        raise DataError(f"{path}:{lineno}: found a {'same' if len(t) == 3 else 'different'}-person line "
                        f"where a {kind} line is due")
    try:
        if len(t) == 3:
            p = Pair(t[0], int(t[1]), t[0], int(t[2]), True)
        else:
            p = Pair(t[0], int(t[1]), t[2], int(t[3]), False)
    except ValueError:
        raise DataError(f"{path}:{lineno}: image numbers must be integers in {line!r}") from None
    if p.idx1 < 1 or p.idx2 < 1:
        raise DataError(f"{path}:{lineno}: image numbers start at 1 in {line!r}")
    if not p.same and p.name1 == p.name2:
        raise DataError(f"{path}:{lineno}: a different-person pair names the same person in {line!r}")
    return p


def find_lfw(data: str | Path | None = None) -> Path:
    """The LFW folder: ``data`` itself if it holds ``images/``, else ``data/lfw``.

    ``data`` defaults to the data root (``IZNET_DATA``, else ``../shared/data``).

    Raises:
        DataError: no LFW folder there.
    """
    base = Path(data) if data is not None else data_root()
    for cand in (base, base / "lfw"):
        if (cand / "images").is_dir():
            return cand
    raise DataError(f"no LFW folder at {base}: expected {base}/images/<Name>/ or {base}/lfw/images/<Name>/")


_NAME_RE = re.compile(r"^(?P<name>.+)_(?P<idx>\d{4})\.jpg$")


class LFW:
    """The LFW image tree under ``root/images/<Name>/<Name>_<NNNN>.jpg``.

    Attributes:
        root: the LFW folder.
        images_dir: ``root / "images"``.
        people: image count per person, ordered by name.

    Raises:
        DataError: ``root/images`` is missing or holds no people.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.images_dir = self.root / "images"
        if not self.images_dir.is_dir():
            raise DataError(f"{self.root} is not an LFW folder: {self.images_dir} does not exist")
        people: dict[str, int] = {}
        with os.scandir(self.images_dir) as it:
            dirs = sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))
        for name in dirs:
            with os.scandir(self.images_dir / name) as it:
                n = sum(1 for e in it if e.name.startswith(name + "_") and _NAME_RE.match(e.name))
            if n:
                people[name] = n
        if not people:
            raise DataError(f"{self.images_dir} holds no <Name>/<Name>_NNNN.jpg images")
        self.people = people

    def __repr__(self) -> str:
        return f"LFW({str(self.root)!r}: {len(self.people)} people, {self.num_images} images)"

    @property
    def num_images(self) -> int:
        return sum(self.people.values())

    def image_path(self, name: str, idx: int) -> Path:
        """Path of image ``idx`` (1-based) of ``name``.

        Raises:
            DataError: unknown person, or ``idx`` outside 1..(images of that person).
        """
        n = self.people.get(name)
        if n is None:
            raise DataError(f"{name!r} is not a person in {self.images_dir}")
        if not 1 <= idx <= n:
            raise DataError(f"{name} has images 1..{n} in {self.images_dir}, not {idx}")
        return self.images_dir / name / f"{name}_{idx:04d}.jpg"

    def relpath(self, name: str, idx: int) -> str:
        """``"Name/Name_NNNN.jpg"``: the key of an image in an LFW pack."""
        return f"{name}/{name}_{idx:04d}.jpg"

    def check_pairs(self, pairs: Iterable[Pair] | Iterable[Sequence[Pair]]) -> None:
        """Raise DataError if any pair names an image that this tree lacks."""
        for p in _flatten(pairs):
            self.image_path(p.name1, p.idx1)
            self.image_path(p.name2, p.idx2)

    def identity_folder(self, people: Iterable[str] | None = None, min_images: int = 1) -> IdentityFolder:
        """The images as an :class:`IdentityFolder` (labels index sorted names).

        Args:
            people: keep only these people (e.g. :func:`training_people`); None keeps all.
            min_images: keep only people with at least this many images.
        """
        keep = sorted(self.people if people is None else set(people))
        unknown = [p for p in keep if p not in self.people]
        if unknown:
            raise DataError(f"{len(unknown)} unknown LFW people, e.g. {unknown[0]!r}")
        keep = [p for p in keep if self.people[p] >= min_images]
        if not keep:
            raise DataError(f"no LFW person left with at least {min_images} images")
        paths, labels = [], []
        for label, name in enumerate(keep):
            for i in range(1, self.people[name] + 1):
                paths.append(self.images_dir / name / f"{name}_{i:04d}.jpg")
                labels.append(label)
        return IdentityFolder.from_parts(self.images_dir, paths, labels, keep)


def load_view2(root: str | Path) -> list[list[Pair]]:
    """View 2 of LFW (``root/pairs.txt``): 10 folds of 600 pairs, 300 same then 300 different.

    Raises:
        DataError: the file is missing, malformed, or not 10 x (300 + 300).
    """
    folds = read_pairs(Path(root) / "pairs.txt")
    if len(folds) != VIEW2_FOLDS or any(len(f) != 2 * VIEW2_PAIRS_PER_CLASS for f in folds):
        raise DataError(f"{Path(root) / 'pairs.txt'}: expected {VIEW2_FOLDS} folds of {2 * VIEW2_PAIRS_PER_CLASS} "
                        f"pairs, found {len(folds)} folds of {[len(f) for f in folds]}")
    return folds


def load_view1(root: str | Path) -> tuple[list[Pair], list[Pair]]:
    """View 1 of LFW: ``(pairsDevTrain, pairsDevTest)`` from ``root``; each a single fold."""
    out = []
    for name in ("pairsDevTrain.txt", "pairsDevTest.txt"):
        folds = read_pairs(Path(root) / name)
        if len(folds) != 1:
            raise DataError(f"{Path(root) / name}: expected one fold (header 'N'), found {len(folds)}")
        out.append(folds[0])
    return out[0], out[1]


def _flatten(pairs: Iterable[Pair] | Iterable[Sequence[Pair]]) -> Iterable[Pair]:
    for item in pairs:
        if isinstance(item, Pair):
            yield item
        else:
            yield from item


def people_in_pairs(pairs: Iterable[Pair] | Iterable[Sequence[Pair]]) -> set[str]:
    """Every person named in ``pairs`` (a list of pairs or a list of folds)."""
    names: set[str] = set()
    for p in _flatten(pairs):
        names.add(p.name1)
        names.add(p.name2)
    return names


def training_people(lfw: LFW, exclude_pairs: Iterable[Pair] | Iterable[Sequence[Pair]]) -> list[str]:
    """All LFW people who appear nowhere in ``exclude_pairs``, sorted: identity-disjoint training data."""
    excluded = people_in_pairs(exclude_pairs)
    return [name for name in lfw.people if name not in excluded]


def view2_train_people(lfw: LFW, folds: Sequence[Sequence[Pair]], k: int) -> list[str]:
    """Training people for View 2 fold ``k``: all LFW people not in fold ``k`` (unrestricted protocol)."""
    if not 0 <= k < len(folds):
        raise DataError(f"fold {k} does not exist; folds are 0..{len(folds) - 1}")
    return training_people(lfw, folds[k])


def view1_train_people(lfw: LFW, test_pairs: Sequence[Pair]) -> list[str]:
    """Training people for View 1: all LFW people not in ``pairsDevTest``."""
    return training_people(lfw, test_pairs)
