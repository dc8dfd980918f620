"""The labelled set that ``iznet analyze`` embeds: an identity folder or a pack, read into memory.

:func:`load_labelled_set` reads a folder (``ROOT/<person>/<image>``, or ``ROOT/images/<person>/<image>``)
or a pack file written by ``iznet pack`` into one uint8 image batch with a label per image, optionally
keeping the first images of each person and one part (training or held-out) of the split ``iznet train``
makes of a group. :func:`resolve_target` turns a run folder into the path of its embedder checkpoint.

numpy and torch are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Optional

from iznet.errors import DataError, ModelError

_logger = logging.getLogger(__name__)

PARTS = ("all", "train", "held-out")
"""The parts of a labelled set :func:`load_labelled_set` can keep."""

GroupSplit = Callable[[Any], tuple[Any, Any]]
"""A split of a group, labels (N,) -> (train indices, held-out indices), e.g. ``iznet train``'s."""


def resolve_folder(root: Path) -> Path:
    """``root``, or ``root/images`` when ``root`` only wraps the person folders (e.g. ``glint24/``)."""
    subdirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(subdirs) == 1 and subdirs[0].name == "images" and any(p.is_dir() for p in subdirs[0].iterdir()):
        return subdirs[0]
    return root


def first_per_person(labels, limit: Optional[int]):
    """Indices of the first ``limit`` items of each label, in input order (all when limit is None).

    Args:
        labels: (N,) integer labels.
        limit: items kept per label, or None for all.

    Returns:
        int64 indices into ``labels``, ascending.
    """
    import numpy as np

    labels = np.asarray(labels)
    if limit is None:
        return np.arange(labels.size)
    seen: dict[int, int] = {}
    keep = []
    for i, y in enumerate(labels.tolist()):
        if seen.get(y, 0) < limit:
            keep.append(i)
        seen[y] = seen.get(y, 0) + 1
    return np.asarray(keep, dtype=np.int64)


def part_indices(labels, part: str, split: Optional[GroupSplit] = None):
    """Indices of ``part`` of a labelled set under the split ``split`` makes of a group.

    Args:
        labels: (N,) integer labels, in the set's order.
        part: one of :data:`PARTS`.
        split: the group split (``iznet train`` uses :func:`iznet.engine.data.group_split`); needed unless
            ``part`` is ``"all"``.

    Returns:
        int64 indices into ``labels``.
    """
    import numpy as np

    if part == "all":
        return np.arange(len(labels))
    if split is None:
        raise ValueError(f"part {part!r} needs the split of the group")
    train_idx, held_idx = split(np.asarray(labels))
    return train_idx if part == "train" else held_idx


def part_note(part: str) -> str:
    """What a source description adds for ``part`` (nothing for ``"all"``)."""
    return "" if part == "all" else f" ({part} part: the last 20% of each person's images are held out)"


def load_labelled_set(data: Path, max_per_person: Optional[int], part: str = "all",
                      split: Optional[GroupSplit] = None) -> dict[str, Any]:
    """Images (N, 3, S, S) uint8, labels (N,), classes and paths of a folder or a pack.

    A folder's images are read in sorted order; unreadable files are skipped and reported. Images of
    different sizes are brought to the most common side with a centre square crop and a resize.
    ``part`` keeps the training or the held-out images of the split ``iznet train`` makes of a group
    (decided on the set's order, before unreadable files are dropped, as training does).

    Args:
        data: an identity folder or a pack file.
        max_per_person: keep the first M images of each person (of the part), or None for all.
        part: one of :data:`PARTS`.
        split: the group split that ``part`` refers to (see :func:`part_indices`).

    Returns:
        dict with ``images`` (uint8 tensor), ``labels`` (int64 array, 0..P-1), ``classes`` (P names),
        ``paths`` (one per image), ``source`` (a description) and ``skipped`` (a summary of unreadable
        files, empty when none).

    Raises:
        DataError: a bad part or per-person limit, a missing source, or no readable image.
    """
    import numpy as np
    import torch

    if part not in PARTS:
        raise DataError(f"--part {part!r}: choose one of {', '.join(PARTS)}")
    if max_per_person is not None and max_per_person < 2:
        raise DataError(f"--max-per-person {max_per_person}: keep at least 2 images per person")
    if not data.exists():
        raise DataError(f"--data {data} does not exist; give an identity folder (ROOT/<person>/<image>) "
                        "or a pack file from `iznet pack`")
    if data.is_file():
        from iznet.data.pack import load_pack

        pack = load_pack(data)
        labels = pack.labels.numpy()
        part_idx = part_indices(labels, part, split)
        idx = part_idx[first_per_person(labels[part_idx], max_per_person)]
        if idx.size == 0:
            raise DataError(f"pack {data} holds no images")
        images = pack.decode(idx)
        return {"images": images, "labels": labels[idx], "classes": list(pack.classes),
                "paths": [pack.paths[i] for i in idx], "source": f"pack {data}" + part_note(part), "skipped": ""}

    from iznet.data.datasets import IdentityFolder
    from iznet.data.images import load_images
    from iznet.data.pack import fit_square

    root = resolve_folder(data)
    folder = IdentityFolder(root)
    part_idx = part_indices(folder.labels, part, split)
    idx = part_idx[first_per_person(folder.labels[part_idx], max_per_person)]
    loaded, report = load_images([folder.paths[i] for i in idx])
    if not loaded:
        raise DataError(f"no readable image in {root}: {report.summary()}")
    ok = {str(p) for p, _ in loaded}
    idx = np.asarray([i for i in idx if str(folder.paths[i]) in ok], dtype=np.int64)
    arrays = [a for _, a in loaded]
    sides = [min(a.shape[:2]) for a in arrays]
    side = max(set(sides), key=sides.count)
    if any(a.shape[0] != side or a.shape[1] != side for a in arrays):
        _logger.info("bringing %d images to %dx%d (centre square, resize)", len(arrays), side, side)
        arrays = [fit_square(a, side) for a in arrays]
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    labels = folder.labels[idx]
    present = sorted(set(labels.tolist()))
    classes = [folder.classes[i] for i in present]  # a person whose images were all unreadable is dropped
    remap = {old: new for new, old in enumerate(present)}
    labels = np.asarray([remap[y] for y in labels.tolist()], dtype=np.int64)
    return {"images": images, "labels": labels, "classes": classes,
            "paths": [folder.relpaths()[i] for i in idx], "source": f"folder {root}" + part_note(part),
            "skipped": report.summary() if report.count else ""}


def resolve_target(target: str) -> str:
    """The embedder spec to load: a run folder stands for its ``model.pt``, anything else is kept.

    Raises:
        ModelError: ``target`` is a folder without ``model.pt``.
    """
    p = Path(target)
    if p.is_dir():
        ck = p / "model.pt"
        if not ck.is_file():
            raise ModelError(f"{p} is a folder without model.pt; give an embedder checkpoint, a run folder of "
                             "a finished `iznet train`, 'raw' or 'pca'")
        return str(ck)
    return target
