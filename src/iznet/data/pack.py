"""Packs: a whole face dataset as one file of JPEG bytes, for fast training and for carrying.

A pack is a dict saved with ``torch.save`` (readable with ``torch.load(weights_only=True)``)::

    {"format": "iznet-pack-v1",
     "size": S,                      # every image is S x S RGB
     "quality": Q,                   # JPEG quality used
     "data": uint8 (total_bytes,),   # the JPEG files, concatenated
     "offsets": int64 (N + 1,),      # image i is data[offsets[i]:offsets[i + 1]]
     "labels": int64 (N,),           # index into classes
     "classes": [str] (C,),          # person names
     "paths": [str] (N,),            # relative paths, e.g. "Name/Name_0001.jpg"; unique
     "meta": {str: JSON-like}}       # source, crop, skipped count, PSNR of the encoding, ...

Images are decoded in batches with ``torchvision.io.decode_jpeg`` on the CPU or, with
``device="cuda"``, on the GPU (nvJPEG).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, Union

import cv2
import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg

from iznet.data.crops import crop_face, haar_face_box, lfw_crop
from iznet.data.datasets import IdentityFolder
from iznet.data.images import SkipReport, load_image
from iznet.data.lfw import LFW
from iznet.errors import DataError, ImageError
from iznet.utils.io import atomic_path

_logger = logging.getLogger(__name__)

PACK_FORMAT = "iznet-pack-v1"

#: Default JPEG quality: the LFW pack at 112 px is 43.4 MB at q82, under the 45 MB it must fit (docs/data.md).
DEFAULT_QUALITY = 82

#: A crop function: (H, W, 3) uint8 RGB and the output side -> (size, size, 3) uint8, or None when
#: the image holds no usable face (the image is then skipped and reported).
CropFn = Callable[[np.ndarray, int], Union[np.ndarray, None]]

#: What :func:`pack_images` consumes: (relative path, label, image array or image file path).
PackItem = tuple[str, int, Union[np.ndarray, str, Path]]

CROP_CHOICES = ("none", "face", "lfw")


@dataclass
class PackStats:
    """What a packing run did.

    Attributes:
        path: the written pack.
        count: images packed.
        num_classes: classes in the pack (some may have no image if all theirs were skipped).
        size: image side in pixels.
        quality: JPEG quality.
        nbytes: size of the pack file in bytes.
        seconds: wall time of the run.
        psnr_db: mean PSNR (dB) of the JPEG encoding against the uncompressed crops, on a sample.
        psnr_samples: how many images that PSNR was measured on.
        skipped: unreadable images (and images with no face found), each with its reason.
    """

    path: Path
    count: int
    num_classes: int
    size: int
    quality: int
    nbytes: int
    seconds: float
    psnr_db: float
    psnr_samples: int
    skipped: SkipReport = field(default_factory=SkipReport)

    @property
    def megabytes(self) -> float:
        return self.nbytes / 1e6

    def summary(self) -> str:
        return (f"packed {self.count} images of {self.num_classes} classes at {self.size}x{self.size} "
                f"(JPEG q{self.quality}, PSNR {self.psnr_db:.1f} dB) into {self.path}: {self.megabytes:.1f} MB "
                f"in {self.seconds:.1f} s; {self.skipped.summary()}")


def crop_function(crop: str | CropFn | None) -> CropFn | None:
    """Resolve a crop choice: None or ``"none"`` (centre square, resized), ``"face"`` (largest face by
    OpenCV's Haar cascade, cropped with :func:`~iznet.data.crops.crop_face`; no face: skipped),
    ``"lfw"`` (:func:`~iznet.data.crops.lfw_crop`), or a callable returned as is."""
    if crop is None or crop == "none":
        return None
    if callable(crop):
        return crop
    if crop == "lfw":
        return lfw_crop
    if crop == "face":
        return _haar_crop
    raise DataError(f"unknown crop {crop!r}; choose one of {', '.join(CROP_CHOICES)}")


def _haar_crop(img: np.ndarray, size: int) -> np.ndarray | None:
    box = haar_face_box(img)
    return None if box is None else crop_face(img, box, size)


def fit_square(img: np.ndarray, size: int) -> np.ndarray:
    """The centre square of ``img`` resized to (size, size, 3) (identity if it already is)."""
    h, w = img.shape[:2]
    if h != w:
        s = min(h, w)
        y0, x0 = (h - s) // 2, (w - s) // 2
        img = img[y0:y0 + s, x0:x0 + s]
    if img.shape[0] == size:
        return np.ascontiguousarray(img)
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(img), (size, size), interpolation=interp)


def _prepare(item: PackItem, size: int, crop: CropFn | None) -> tuple[np.ndarray | None, str]:
    """(crop or None, reason when None) for one item; never raises for a bad image file."""
    rel, _, src = item
    if isinstance(src, np.ndarray):
        img = src
    else:
        try:
            img = load_image(src)
        except ImageError as e:
            return None, e.reason
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise DataError(f"{rel}: expected an (H, W, 3) uint8 image, got {img.dtype} {tuple(img.shape)}")
    out = fit_square(img, size) if crop is None else crop(img, size)
    if out is None:
        return None, "no face found"
    if out.shape != (size, size, 3) or out.dtype != np.uint8:
        raise DataError(f"{rel}: the crop function returned {out.dtype} {tuple(out.shape)}, "
                        f"expected uint8 ({size}, {size}, 3)")
    return out, ""


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _chunks(it: Iterable[PackItem], n: int) -> Iterator[list[PackItem]]:
    chunk: list[PackItem] = []
    for x in it:
        chunk.append(x)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def pack_images(items: Iterable[PackItem], out_path: str | Path, size: int, *, classes: Sequence[str],
                quality: int = DEFAULT_QUALITY, crop: str | CropFn | None = None, meta: dict | None = None,
                progress: Callable[[int], None] | None = None, workers: int | None = None,
                psnr_every: int = 10, chunk_size: int = 256) -> PackStats:
    """Crop, JPEG-encode and write images into one pack file (atomically).

    Args:
        items: (relative path, label, image) triples; the image is an (H, W, 3) uint8 RGB array or
            the path of a file to load (unreadable files are skipped and reported).
        out_path: the pack file to write.
        size: side of the stored square images.
        classes: class names; labels index into them.
        quality: JPEG quality 1..100.
        crop: how to make the ``size x size`` image (see :func:`crop_function`); None takes the centre
            square (no-op for images that already are ``size x size``).
        meta: extra JSON-like metadata to store.
        progress: called with the number of items done after each chunk (e.g. ``tqdm.update``).
        workers: threads for loading and cropping (default: up to 8, one per CPU).
        psnr_every: measure the encoding PSNR on every n-th packed image.
        chunk_size: items loaded and encoded together.

    Returns:
        :class:`PackStats` (count, file size, PSNR, skipped files).

    Raises:
        DataError: bad size/quality, a label outside ``classes``, a repeated relative path, or
            nothing left to pack.
    """
    t0 = time.perf_counter()
    out_path = Path(out_path)
    if size < 8:
        raise DataError(f"pack image size must be >= 8 pixels, got {size}")
    if not 1 <= quality <= 100:
        raise DataError(f"JPEG quality must be in 1..100, got {quality}")
    crop_fn = crop_function(crop)
    classes = [str(c) for c in classes]
    workers = workers or min(8, os.cpu_count() or 1)
    skipped = SkipReport()
    encoded: list[torch.Tensor] = []
    labels: list[int] = []
    paths: list[str] = []
    seen: set[str] = set()
    psnrs: list[float] = []
    prepare = functools.partial(_prepare, size=size, crop=crop_fn)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for chunk in _chunks(items, chunk_size):
            for rel, label, _ in chunk:
                if not 0 <= int(label) < len(classes):
                    raise DataError(f"{rel}: label {label} is outside 0..{len(classes) - 1}")
                if rel in seen:
                    raise DataError(f"relative path {rel!r} appears twice; pack paths must be unique")
                seen.add(rel)
            results = list(pool.map(prepare, chunk))
            ok = [(item, img) for item, (img, _) in zip(chunk, results) if img is not None]
            for item, (img, reason) in zip(chunk, results):
                if img is None:
                    src = item[2]
                    skipped.add(src if isinstance(src, (str, Path)) else item[0], reason)
            if ok:
                # numpy does the HWC -> CHW copies: torch's OpenMP copies crawl on a busy CPU.
                chw = [np.ascontiguousarray(img.transpose(2, 0, 1)) for _, img in ok]
                tensors = [torch.from_numpy(a) for a in chw]
                jpegs = encode_jpeg(tensors, quality=quality)
                for j, jpg in enumerate(jpegs):
                    if (len(paths) + j) % psnr_every == 0:
                        psnrs.append(_psnr(decode_jpeg(jpg, mode=ImageReadMode.RGB).numpy(), chw[j]))
                encoded.extend(jpegs)
                labels.extend(int(item[1]) for item, _ in ok)
                paths.extend(item[0] for item, _ in ok)
            if progress is not None:
                progress(len(chunk))
    if not paths:
        raise DataError(f"nothing to pack: all {skipped.count} images were skipped ({skipped.summary()})")
    lengths = torch.tensor([len(e) for e in encoded], dtype=torch.int64)
    offsets = torch.zeros(len(encoded) + 1, dtype=torch.int64)
    torch.cumsum(lengths, 0, out=offsets[1:])
    psnr = float(np.mean(psnrs)) if psnrs else float("nan")
    obj = {
        "format": PACK_FORMAT,
        "size": int(size),
        "quality": int(quality),
        "data": torch.cat(encoded),
        "offsets": offsets,
        "labels": torch.tensor(labels, dtype=torch.int64),
        "classes": classes,
        "paths": paths,
        # the caller's meta wins: a pack of crops made beforehand (crop=None) names their convention there
        "meta": {"crop": crop if isinstance(crop, str) or crop is None else getattr(crop, "__name__", "custom"),
                 **(meta or {}), "skipped": skipped.count, "psnr_db": psnr},
    }
    with atomic_path(out_path) as tmp:
        torch.save(obj, tmp)
    stats = PackStats(out_path, len(paths), len(classes), size, quality, out_path.stat().st_size,
                      time.perf_counter() - t0, psnr, len(psnrs), skipped)
    _logger.debug("%s", stats.summary())
    return stats


def pack_identity_folder(folder: IdentityFolder | str | Path, out: str | Path, size: int,
                         crop: str | CropFn | None = None, **kwargs) -> PackStats:
    """Pack an identity folder (``root/<person>/<image>``); paths are stored relative to its root.

    Args:
        folder: an :class:`IdentityFolder` or its root.
        out: the pack file.
        size: side of the stored images.
        crop: None/"none", "face", "lfw" or a crop function (see :func:`crop_function`).
        **kwargs: passed to :func:`pack_images` (quality, progress, meta, workers).
    """
    if not isinstance(folder, IdentityFolder):
        folder = IdentityFolder(folder)
    items = zip(folder.relpaths(), folder.labels.tolist(), folder.paths)
    meta = {"source": str(folder.root), **kwargs.pop("meta", {})}
    return pack_images(items, out, size, classes=folder.classes, crop=crop, meta=meta, **kwargs)


def pack_lfw(root: str | Path, out: str | Path, size: int, **kwargs) -> PackStats:
    """Pack every LFW image (paths like ``"Name/Name_0001.jpg"``), cropped with :func:`lfw_crop`.

    Args:
        root: the LFW folder (holding ``images/``).
        out: the pack file.
        size: side of the stored images (e.g. 112).
        **kwargs: passed to :func:`pack_images` (quality, progress, workers).
    """
    folder = LFW(root).identity_folder()
    return pack_identity_folder(folder, out, size, crop="lfw", meta={"dataset": "lfw"}, **kwargs)


class Pack:
    """A loaded pack (see the module docstring for the format).

    Attributes:
        path: the file.
        size: image side S.
        quality: JPEG quality used.
        labels: (N,) int64.
        classes: class names.
        paths: (N,) relative paths.
        meta: metadata dict.
        data: (total_bytes,) uint8, the concatenated JPEG files.
        offsets: (N + 1,) int64.
    """

    def __init__(self, obj: dict, path: Path):
        self.path = path
        self.size = int(obj["size"])
        self.quality = int(obj.get("quality", 0))
        self.data: torch.Tensor = obj["data"]
        self.offsets: torch.Tensor = obj["offsets"]
        self.labels: torch.Tensor = obj["labels"]
        self.classes: list[str] = list(obj["classes"])
        self.paths: list[str] = list(obj["paths"])
        self.meta: dict = dict(obj.get("meta", {}))
        self._starts = self.offsets.tolist()

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"Pack({str(self.path)!r}: {len(self)} images of {len(self.classes)} classes, {self.size}px)"

    @functools.cached_property
    def index(self) -> dict[str, int]:
        """Relative path -> position."""
        return {p: i for i, p in enumerate(self.paths)}

    def index_of(self, relpath: str) -> int:
        """Position of ``relpath`` (e.g. ``"Name/Name_0001.jpg"``). Raises DataError when absent."""
        try:
            return self.index[relpath]
        except KeyError:
            raise DataError(f"{relpath!r} is not in pack {self.path}") from None

    def indices_for_classes(self, names: Iterable[str]) -> torch.Tensor:
        """(M,) int64 positions of all images whose class is in ``names`` (e.g. training people)."""
        wanted = set(names)
        keep = torch.tensor([c in wanted for c in self.classes], dtype=torch.bool)
        if keep.numel() == 0:
            return torch.zeros(0, dtype=torch.int64)
        return torch.nonzero(keep[self.labels], as_tuple=False).flatten()

    def image_bytes(self, i: int) -> torch.Tensor:
        """The JPEG file of image ``i`` as a (bytes,) uint8 tensor (a view into :attr:`data`)."""
        return self.data[self._starts[i]:self._starts[i + 1]]

    def decode(self, indices: Sequence[int] | torch.Tensor | np.ndarray | None = None,
               device: str | torch.device = "cpu", batch_size: int = 4096) -> torch.Tensor:
        """Decode images into one tensor.

        Args:
            indices: positions to decode (default: all, in order).
            device: where to decode and put the result; "cuda" decodes on the GPU.
            batch_size: images handed to ``decode_jpeg`` at once.

        Returns:
            (N, 3, S, S) uint8 RGB on ``device``.
        """
        if indices is None:
            idx = list(range(len(self)))
        else:
            idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64).flatten().tolist()
        n = len(self)
        for i in idx:
            if not -n <= i < n:
                raise IndexError(f"pack index {i} out of range for {n} images")
        device = torch.device(device)
        out = torch.empty((len(idx), 3, self.size, self.size), dtype=torch.uint8, device=device)
        host = out.numpy() if device.type == "cpu" else None
        for s in range(0, len(idx), batch_size):
            chunk = [self.image_bytes(i % n) for i in idx[s:s + batch_size]]
            imgs = decode_jpeg(chunk, mode=ImageReadMode.RGB, device=device)
            if device.type == "cpu":
                # Copy through numpy (single-threaded): torch's OpenMP copies crawl on a busy CPU.
                for j, im in enumerate(imgs):
                    host[s + j] = im.numpy()
            else:
                torch.stack(imgs, out=out[s:s + len(chunk)])
        return out


def load_pack(path: str | Path) -> Pack:
    """Open a pack written by :func:`pack_images` (safe: ``weights_only=True``).

    Raises:
        DataError: missing, unreadable, not a pack, or inconsistent.
    """
    from iznet.utils.checkpoint import safe_load

    path = Path(path)
    obj = safe_load(path, "pack", DataError, "build it with `iznet pack ...`")
    if not isinstance(obj, dict) or obj.get("format") != PACK_FORMAT:
        raise DataError(f"{path} is not an iznet pack (expected format {PACK_FORMAT!r})")
    try:
        data, offsets, labels = obj["data"], obj["offsets"], obj["labels"]
        n = len(obj["paths"])
        ok = (data.dtype == torch.uint8 and data.dim() == 1 and offsets.dtype == torch.int64
              and offsets.shape == (n + 1,) and labels.dtype == torch.int64 and labels.shape == (n,)
              and (n == 0 or (int(offsets[0]) == 0 and int(offsets[-1]) == data.numel()
                              and bool((offsets[1:] >= offsets[:-1]).all())
                              and int(labels.min()) >= 0 and int(labels.max()) < len(obj["classes"]))))
    except (KeyError, AttributeError, TypeError) as e:
        raise DataError(f"{path} is a damaged pack (missing or bad field: {e})") from None
    if not ok:
        raise DataError(f"{path} is a damaged pack (offsets, labels or data do not agree)")
    return Pack(obj, path)
