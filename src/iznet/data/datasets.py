"""Identity folders: ``root/<person>/<image>``, one sub-folder per person."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from iznet.data.images import list_images, load_image
from iznet.errors import DataError

_logger = logging.getLogger(__name__)


class IdentityFolder:
    """Images grouped by person: ``root/<person>/<image>`` (images directly inside each person folder).

    Persons are the sub-folders of ``root`` in sorted order (hidden ones ignored); label ``i`` is
    ``classes[i]``. Within a person, images are in sorted path order. Files in ``root`` itself are
    ignored (with a log warning). Unreadable image files are not detected here; they surface when
    an image is loaded (use :func:`iznet.data.images.load_images` to skip and report them in bulk).

    Args:
        root: the folder of person folders.
        min_images: keep only people with at least this many images (others are dropped, logged).

    Attributes:
        root: the folder.
        paths: image paths, grouped by person, (N,).
        labels: (N,) int64 class index of each image.
        classes: person names, sorted; ``classes[labels[i]]`` is the person of ``paths[i]``.

    Raises:
        DataError: ``root`` is missing or not a folder, holds no person folders, a person folder holds
            no images, or no person has ``min_images`` images.

    >>> ds = IdentityFolder("crops/")  # doctest: +SKIP
    >>> img, label = ds[0]; ds.classes[label]  # doctest: +SKIP
    """

    def __init__(self, root: str | Path, min_images: int = 1):
        root = Path(root)
        if not root.exists():
            raise DataError(f"identity folder {root} does not exist; expected root/<person>/<image>")
        if not root.is_dir():
            raise DataError(f"identity folder {root} is not a folder; expected root/<person>/<image>")
        if min_images < 1:
            raise DataError(f"min_images must be >= 1, got {min_images}")
        person_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        stray = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
        if stray:
            _logger.warning("%s: ignoring %d file(s) outside person folders (e.g. %s)", root, len(stray), stray[0].name)
        if not person_dirs:
            raise DataError(f"identity folder {root} has no person sub-folders; expected root/<person>/<image>")
        classes: list[str] = []
        paths: list[Path] = []
        labels: list[int] = []
        dropped = 0
        for d in person_dirs:
            imgs = list_images(d, recursive=False)
            if not imgs:
                raise DataError(f"person folder {d} holds no images; add images or remove the folder")
            if len(imgs) < min_images:
                dropped += 1
                continue
            label = len(classes)
            classes.append(d.name)
            paths.extend(imgs)
            labels.extend([label] * len(imgs))
        if dropped:
            _logger.info("%s: dropped %d people with fewer than %d images", root, dropped, min_images)
        if not classes:
            raise DataError(f"no person in {root} has at least {min_images} images")
        self._set(root, paths, np.asarray(labels, dtype=np.int64), classes)

    def _set(self, root: Path, paths: list[Path], labels: np.ndarray, classes: list[str]) -> None:
        self.root = root
        self.paths = paths
        self.labels = labels
        self.classes = classes

    @classmethod
    def from_parts(cls, root: str | Path, paths: Sequence[str | Path], labels: Iterable[int],
                   classes: Sequence[str]) -> "IdentityFolder":
        """Build one from explicit paths, labels and classes (no scanning)."""
        obj = cls.__new__(cls)
        lab = np.asarray(list(labels), dtype=np.int64)
        if len(lab) != len(paths):
            raise DataError(f"{len(paths)} paths but {len(lab)} labels")
        if len(lab) and (lab.min() < 0 or lab.max() >= len(classes)):
            raise DataError(f"labels must lie in 0..{len(classes) - 1}")
        obj._set(Path(root), [Path(p) for p in paths], lab, list(classes))
        return obj

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        """(image (H, W, 3) uint8 RGB, label). Raises ImageError for an unreadable file."""
        n = len(self.paths)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} images")
        return load_image(self.paths[i]), int(self.labels[i])

    def __repr__(self) -> str:
        return f"IdentityFolder({str(self.root)!r}: {len(self.paths)} images of {len(self.classes)} people)"

    def counts(self) -> np.ndarray:
        """(num_classes,) int64: images per person."""
        return np.bincount(self.labels, minlength=len(self.classes)).astype(np.int64)

    def relpaths(self) -> list[str]:
        """Paths relative to ``root`` with forward slashes (e.g. ``"Ann/Ann_0001.jpg"``)."""
        return [p.relative_to(self.root).as_posix() if p.is_relative_to(self.root) else p.as_posix()
                for p in self.paths]

    def subset(self, indices: Iterable[int] | np.ndarray) -> "IdentityFolder":
        """The images at ``indices`` (in that order), keeping the same ``classes`` and label numbers."""
        idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices, dtype=np.int64)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"subset indices out of range for {len(self)} images")
        return IdentityFolder.from_parts(self.root, [self.paths[i] for i in idx], self.labels[idx], self.classes)

    def first_k_split(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Enrolment / probe split: per person the first ``k`` images (sorted order) are enrolled.

        People with ``k`` or fewer images contribute only enrolment images.

        Returns:
            ``(enrol_indices, probe_indices)``: int64 index arrays into this folder, ascending.
        """
        if k < 1:
            raise DataError(f"k (images enrolled per person) must be >= 1, got {k}")
        enrol: list[int] = []
        probe: list[int] = []
        seen = np.zeros(len(self.classes), dtype=np.int64)
        # Visit each person's images in sorted path order, whatever order the folder holds them in.
        order = sorted(range(len(self.paths)), key=lambda i: (int(self.labels[i]), str(self.paths[i])))
        for i in order:
            lab = int(self.labels[i])
            (enrol if seen[lab] < k else probe).append(i)
            seen[lab] += 1
        return np.sort(np.asarray(enrol, dtype=np.int64)), np.sort(np.asarray(probe, dtype=np.int64))
