"""Detection packs: the training data of the face detector in one file (JPEG bytes + boxes), < 30 MB.

A pack carries what a GPU machine needs to train without ../shared:

- ``photos``: real photos (faces-1750) re-encoded as JPEG, each with its split (train/dev/test), its tight
  face boxes for training (:func:`iznet.detect.boxes.reconcile_dataset`), the given boxes mapped to the
  tight convention (``given_tight``, teacher-independent, for evaluation) and ``avoid`` boxes (every region
  that may hold a face; backgrounds for composites are cut away from them).
- ``faces``: LFW deep-funneled face crops (square, 1.5 × the longer side of the tight box
  :data:`iznet.data.crops.LFW_FACE_BOX`, resized to ``face_size``), each with its tight box in the crop and
  its split (LFW people are split, so held-out composites show unseen people).

The file is a ``torch.save`` dict of tensors, numbers and strings (read with ``weights_only=True``)::

    {"format": "iznet-detpack-v1", "meta": {...},
     "photos": {"jpeg": uint8 (bytes,), "offsets": int64 (M+1,), "names": [...], "split": [...],
                "sizes": int32 (M, 2) (w, h), "boxes"/"given_tight"/"avoid": float32 (*, 4),
                "boxes_offsets"/"given_tight_offsets"/"avoid_offsets": int64 (M+1,)},
     "faces": {"jpeg", "offsets", "names", "split", "box": float32 (F, 4)}}
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from PIL import Image

from iznet.detect.boxes import ReconciledImage
from iznet.errors import DataError
from iznet.utils.io import atomic_path

_logger = logging.getLogger(__name__)

FORMAT = "iznet-detpack-v1"
SPLITS = ("train", "dev", "test")


@dataclass
class PackedPhoto:
    """A photo of a pack. Boxes are (K, 4) float32 ``x1, y1, x2, y2`` in the stored image's pixels."""

    name: str
    split: str
    jpeg: torch.Tensor
    size: tuple[int, int]
    boxes: np.ndarray
    given_tight: np.ndarray
    avoid: np.ndarray


@dataclass
class PackedFace:
    """A face crop of a pack with its tight face box (4,) in crop pixels."""

    name: str
    split: str
    jpeg: torch.Tensor
    box: np.ndarray


@dataclass
class DetectionPack:
    photos: list[PackedPhoto]
    faces: list[PackedFace]
    meta: dict

    def select_photos(self, split: str) -> list[PackedPhoto]:
        return [p for p in self.photos if p.split == split]

    def select_faces(self, split: str) -> list[PackedFace]:
        return [f for f in self.faces if f.split == split]

    def save(self, path: str | Path) -> Path:
        """Write this pack (e.g. a subset made in memory) in the pack format."""
        ps = self.photos
        jpeg, offsets = _bytes_tensor([bytes(p.jpeg.numpy()) for p in ps])
        photos = {"jpeg": jpeg, "offsets": offsets, "names": [p.name for p in ps], "split": [p.split for p in ps],
                  "sizes": torch.tensor([list(p.size) for p in ps], dtype=torch.int32).reshape(-1, 2)}
        for key in ("boxes", "given_tight", "avoid"):
            photos[key], photos[key + "_offsets"] = _ragged([getattr(p, key) for p in ps])
        fjpeg, foffsets = _bytes_tensor([bytes(f.jpeg.numpy()) for f in self.faces])
        faces = {"jpeg": fjpeg, "offsets": foffsets, "names": [f.name for f in self.faces],
                 "split": [f.split for f in self.faces],
                 "box": torch.from_numpy(np.stack([f.box for f in self.faces]).astype(np.float32)
                                         if self.faces else np.zeros((0, 4), np.float32))}
        return save_pack(path, photos, faces, self.meta)


def split_names(names: Sequence[str], seed: int = 0, dev: float = 0.1, test: float = 0.2) -> dict[str, str]:
    """Split items by name: a seeded permutation of the sorted names; the first ``test`` share is test,
    the next ``dev`` share dev, the rest train. Same names and seed → same split on any machine."""
    ordered = sorted(set(names))
    perm = torch.randperm(len(ordered), generator=torch.Generator().manual_seed(seed)).tolist()
    n_test, n_dev = round(test * len(ordered)), round(dev * len(ordered))
    out = {}
    for rank, i in enumerate(perm):
        out[ordered[i]] = "test" if rank < n_test else ("dev" if rank < n_test + n_dev else "train")
    return out


def encode_jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _ragged(arrays: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    offsets = np.zeros(len(arrays) + 1, np.int64)
    offsets[1:] = np.cumsum([len(a) for a in arrays])
    flat = np.concatenate([np.asarray(a, np.float32).reshape(-1, 4) for a in arrays]) if arrays else np.zeros((0, 4))
    return torch.from_numpy(flat.astype(np.float32)), torch.from_numpy(offsets)


def _bytes_tensor(chunks: Sequence[bytes]) -> tuple[torch.Tensor, torch.Tensor]:
    offsets = np.zeros(len(chunks) + 1, np.int64)
    offsets[1:] = np.cumsum([len(c) for c in chunks])
    flat = np.frombuffer(b"".join(chunks), dtype=np.uint8).copy()
    return torch.from_numpy(flat), torch.from_numpy(offsets)


def pack_photos(image_dir: str | Path, labels: Mapping[str, ReconciledImage], splits: Mapping[str, str],
                keep_splits: Sequence[str], quality: int = 60, max_side: int = 416,
                progress: Callable[[int], None] | None = None) -> dict:
    """Re-encode labelled photos for a pack (see module docstring); boxes follow any downscale."""
    from iznet.data.images import load_image

    image_dir = Path(image_dir)
    names = [n for n in labels if splits.get(n) in keep_splits]
    chunks, sizes, boxes, given, avoid, kept, split = [], [], [], [], [], [], []
    for name in names:
        arr = load_image(image_dir / name)
        img = Image.fromarray(arr)
        s = min(1.0, max_side / max(img.size))
        if s < 1.0:
            img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.BILINEAR)
        lab = labels[name]
        chunks.append(encode_jpeg(img, quality))
        sizes.append(img.size)
        boxes.append(lab.boxes * s)
        given.append(lab.given_tight * s)
        avoid.append(lab.avoid * s)
        kept.append(name)
        split.append(splits[name])
        if progress is not None:
            progress(1)
    jpeg, offsets = _bytes_tensor(chunks)
    out = {"jpeg": jpeg, "offsets": offsets, "names": kept, "split": split,
           "sizes": torch.tensor(sizes, dtype=torch.int32).reshape(-1, 2)}
    for key, arrays in (("boxes", boxes), ("given_tight", given), ("avoid", avoid)):
        out[key], out[key + "_offsets"] = _ragged(arrays)
    return out


def lfw_face_files(lfw_dir: str | Path, per_person: int = 1) -> list[tuple[str, Path]]:
    """``(person, file)`` for the first ``per_person`` images (sorted) of every LFW person."""
    root = Path(lfw_dir)
    root = root / "images" if (root / "images").is_dir() else root
    if not root.is_dir():
        raise DataError(f"LFW folder {root} does not exist; pass the folder holding lfw/images/<person>/")
    out = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(f for f in person.iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
        out.extend((person.name, f) for f in files[:per_person])
    if not out:
        raise DataError(f"no LFW images under {root}")
    return out


def face_crop_region(box: Sequence[float], context: float = 1.5) -> tuple[int, int, int, int]:
    """Square region centred on a tight face box, side ``context`` × its longer side."""
    x1, y1, x2, y2 = box
    side = context * max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    return left, top, left + round(side), top + round(side)


def pack_faces(files: Sequence[tuple[str, Path]], splits: Mapping[str, str], keep_splits: Sequence[str],
               max_per_split: Mapping[str, int], face_size: int = 112, quality: int = 80,
               progress: Callable[[int], None] | None = None) -> dict:
    """Cut LFW face crops around :data:`iznet.data.crops.LFW_FACE_BOX` for a pack."""
    from iznet.data.crops import lfw_face_box
    from iznet.data.images import load_image

    counts = {s: 0 for s in SPLITS}
    chunks, boxes, names, split = [], [], [], []
    for person, path in files:
        s = splits.get(person)
        if s not in keep_splits or counts[s] >= max_per_split.get(s, 0):
            continue
        arr = load_image(path)
        box = lfw_face_box(arr.shape[0], arr.shape[1])
        region = face_crop_region(box)
        img = Image.fromarray(arr).crop(region)  # PIL pads outside the image with black
        side = region[2] - region[0]
        scale = face_size / side
        img = img.resize((face_size, face_size), Image.BILINEAR)
        chunks.append(encode_jpeg(img, quality))
        boxes.append(np.array([(box[0] - region[0]) * scale, (box[1] - region[1]) * scale,
                               (box[2] - region[0]) * scale, (box[3] - region[1]) * scale], np.float32))
        names.append(f"{person}/{path.name}")
        split.append(s)
        counts[s] += 1
        if progress is not None:
            progress(1)
    jpeg, offsets = _bytes_tensor(chunks)
    return {"jpeg": jpeg, "offsets": offsets, "names": names, "split": split,
            "box": torch.from_numpy(np.stack(boxes) if boxes else np.zeros((0, 4), np.float32))}


def save_pack(path: str | Path, photos: dict, faces: dict, meta: dict) -> Path:
    """Write a pack atomically."""
    obj = {"format": FORMAT, "meta": meta, "photos": photos, "faces": faces}
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_pack(path: str | Path) -> DetectionPack:
    """Read a pack written by :func:`save_pack` (``weights_only=True``: nothing is unpickled).

    Raises:
        DataError: missing or malformed file.
    """
    from iznet.utils.checkpoint import safe_load

    path = Path(path)
    obj = safe_load(path, "detection pack", DataError, "build one with `iznet detector-pack`")
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise DataError(f"{path} is not a detection pack (expected format {FORMAT})")
    ph, fc = obj["photos"], obj["faces"]

    def rows(flat: torch.Tensor, offsets: torch.Tensor, i: int) -> np.ndarray:
        return flat[offsets[i]:offsets[i + 1]].numpy().reshape(-1, 4)

    photos = []
    for i, name in enumerate(ph["names"]):
        photos.append(PackedPhoto(
            name, ph["split"][i], ph["jpeg"][ph["offsets"][i]:ph["offsets"][i + 1]],
            (int(ph["sizes"][i, 0]), int(ph["sizes"][i, 1])),
            rows(ph["boxes"], ph["boxes_offsets"], i), rows(ph["given_tight"], ph["given_tight_offsets"], i),
            rows(ph["avoid"], ph["avoid_offsets"], i)))
    faces = [PackedFace(name, fc["split"][i], fc["jpeg"][fc["offsets"][i]:fc["offsets"][i + 1]], fc["box"][i].numpy())
             for i, name in enumerate(fc["names"])]
    return DetectionPack(photos, faces, dict(obj.get("meta") or {}))


def build_pack(out: str | Path, faces_dir: str | Path, teacher_csv: str | Path, lfw_dir: str | Path | None,
               keep_splits: Sequence[str] = ("train", "dev"), seed: int = 0, photo_quality: int = 60,
               face_quality: int = 80, face_size: int = 112,
               max_faces: Mapping[str, int] | None = None,
               progress: Callable[[int], None] | None = None) -> tuple[Path, dict]:
    """Build a detection pack from faces-1750 (+ teacher boxes) and LFW.

    Args:
        out: the pack file to write.
        faces_dir: faces-1750 folder (``images/`` and ``boxes.csv`` with loose head boxes).
        teacher_csv: teacher boxes of the same images (``iznet label-boxes --teacher yunet:PATH``).
        lfw_dir: LFW folder (``images/<person>/``), or None for a pack without faces (no composites).
        keep_splits: which splits go in (photos split by image: 70/10/20 train/dev/test with ``seed``;
            LFW people: 75/5/20).
        max_faces: at most this many LFW faces per split (one image per person).

    Returns:
        the path and the pack's ``meta`` (counts, reconciliation numbers, settings, size in bytes).
    """
    from iznet.detect.boxes import BoxLabels, read_boxes_csv, reconcile_dataset

    faces_dir = Path(faces_dir)
    given = read_boxes_csv(faces_dir / "boxes.csv")
    image_dir = faces_dir / "images"
    on_disk = {p.name for p in image_dir.iterdir()} if image_dir.is_dir() else set()
    missing = [n for n in given if n not in on_disk]
    if missing:
        raise DataError(f"{len(missing)} images of {faces_dir / 'boxes.csv'} are missing from {image_dir}, "
                        f"e.g. {missing[0]}")
    # images with no given box are still photos (every faces-1750 image has one; keep it general)
    for n in sorted(on_disk - set(given)):
        if n.lower().endswith((".jpg", ".jpeg", ".png")):
            given[n] = BoxLabels(np.zeros((0, 4), np.float32))
    teacher = read_boxes_csv(teacher_csv)
    splits = split_names(list(given), seed=seed, dev=0.1, test=0.2)
    labels, stats = reconcile_dataset(given, teacher, fit_on=[n for n, s in splits.items() if s == "train"])
    photos = pack_photos(image_dir, labels, splits, keep_splits, quality=photo_quality, progress=progress)
    max_faces = dict(max_faces or {"train": 1600, "dev": 150, "test": 400})
    if lfw_dir is not None:
        files = lfw_face_files(lfw_dir)
        people = sorted({p for p, _ in files})
        face_splits = split_names(people, seed=seed, dev=0.05, test=0.2)
        faces = pack_faces(files, face_splits, keep_splits, max_faces, face_size, face_quality, progress)
    else:
        faces = {"jpeg": torch.zeros(0, dtype=torch.uint8), "offsets": torch.zeros(1, dtype=torch.int64),
                 "names": [], "split": [], "box": torch.zeros(0, 4)}
    meta = {
        "source": {"faces": str(faces_dir), "teacher_csv": str(teacher_csv), "lfw": str(lfw_dir) if lfw_dir else None},
        "keep_splits": list(keep_splits), "seed": seed, "photo_quality": photo_quality,
        "face_quality": face_quality, "face_size": face_size,
        "split_rule": "photos: seeded permutation of sorted names, 20% test / 10% dev / 70% train; "
                      "LFW people: 20% test / 5% dev / 75% train",
        "reconcile": stats.to_dict(),
        "counts": {s: {"photos": photos["split"].count(s), "faces": faces["split"].count(s)} for s in SPLITS},
        "boxes": int(photos["boxes"].shape[0]),
    }
    path = save_pack(out, photos, faces, meta)
    meta["bytes"] = path.stat().st_size
    return path, meta
