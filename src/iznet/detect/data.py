"""Training and evaluation samples for the face detector: photos, composites, augmentation, batches.

- Photos (a pack's faces-1750 images) are letterboxed into the square input with their tight boxes.
- Composites: LFW face crops pasted onto face-free backgrounds at many scales and positions (1–8 faces,
  face width log-uniform from 12 px to half the input), each blended through a feathered ellipse, with its
  own brightness/contrast and a random flip; the boxes are exact (the crop's tight box, scaled and moved).
  Backgrounds are regions of the pack's photos away from every ``avoid`` box (any labelled or
  teacher-detected face, grown by 20%), else a procedural texture.
- Hard negatives (optional): a crop of a training photo around a box the detector once took for a face where
  no face is (mined by ``scripts/mine_hard_negatives.py``), zoomed so the false face has a face's size; the
  photo's faces that fall in the crop keep their boxes.
- Augmentation (training only) with ``torchvision.transforms.v2`` on ``tv_tensors``: random affine
  (scale 0.5–1.3, translation ±20%, grey fill), horizontal flip, colour jitter and grey scale, the boxes
  following; then boxes are clipped to the image and dropped when less than 40% of them stays visible.

Every random choice draws from the ``torch.Generator`` passed in (or torch's global RNG in loader
workers, which the DataLoader seeds per worker and epoch), so fixed-seed sets such as the held-out
composites are the same on every machine.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision import tv_tensors
from torchvision.transforms import v2

from iznet.detect.letterbox import PAD_VALUE, letterbox
from iznet.detect.pack import DetectionPack, PackedFace, PackedPhoto
from iznet.detect.targets import DEFAULT_ANCHORS, encode_targets


def _rand(g: torch.Generator | None, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * float(torch.rand(1, generator=g))


def _randint(g: torch.Generator | None, lo: int, hi: int) -> int:
    """Uniform integer in [lo, hi] (inclusive)."""
    return int(torch.randint(lo, hi + 1, (1,), generator=g))


def decode_image(jpeg: torch.Tensor) -> torch.Tensor:
    """JPEG bytes (uint8 1-D tensor) → (3, H, W) uint8 RGB."""
    return decode_jpeg(jpeg, mode=ImageReadMode.RGB)


def resize_uint8(img: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(3, H, W) uint8 → (3, h, w) uint8, antialiased bilinear."""
    out = F.interpolate(img[None].float(), size=(h, w), mode="bilinear", antialias=True, align_corners=False)[0]
    return out.round().clamp(0, 255).to(torch.uint8)


# --------------------------------------------------------------------------- backgrounds


def procedural_background(size: int, g: torch.Generator | None = None) -> torch.Tensor:
    """A face-free texture: smooth random colours, a few flat shapes and noise; (3, size, size) uint8."""
    k = _randint(g, 2, 8)
    base = torch.rand(1, 3, k, k, generator=g) * 255
    img = F.interpolate(base, size=(size, size), mode="bicubic", align_corners=False)[0]
    for _ in range(_randint(g, 0, 6)):
        x1, y1 = _randint(g, 0, size - 8), _randint(g, 0, size - 8)
        x2, y2 = _randint(g, x1 + 4, size), _randint(g, y1 + 4, size)
        img[:, y1:y2, x1:x2] = torch.rand(3, 1, 1, generator=g) * 255
    img = img + torch.randn(img.shape, generator=g) * _rand(g, 0, 12)
    return img.clamp(0, 255).to(torch.uint8)


def background_region(width: int, height: int, avoid: np.ndarray, g: torch.Generator | None = None,
                      tries: int = 30, grow: float = 0.2, min_frac: float = 0.3) -> tuple[int, int, int, int] | None:
    """A roughly square region of a ``width`` × ``height`` photo that touches no ``avoid`` box (grown by
    ``grow`` of its size on each side), or None after ``tries`` attempts."""
    avoid = np.asarray(avoid, np.float64).reshape(-1, 4)
    if len(avoid):
        w, h = avoid[:, 2] - avoid[:, 0], avoid[:, 3] - avoid[:, 1]
        avoid = avoid + np.stack([-grow * w, -grow * h, grow * w, grow * h], 1)
    short = min(width, height)
    for _ in range(tries):
        side = _rand(g, min_frac, 1.0) * short
        rw = min(width, side * _rand(g, 0.8, 1.25))
        rh = min(height, side)
        x1, y1 = _rand(g, 0, width - rw), _rand(g, 0, height - rh)
        x2, y2 = x1 + rw, y1 + rh
        if rw < 16 or rh < 16:
            continue
        if len(avoid) == 0 or not np.any((avoid[:, 0] < x2) & (avoid[:, 2] > x1) & (avoid[:, 1] < y2) & (avoid[:, 3] > y1)):
            return int(x1), int(y1), int(math.ceil(x2)), int(math.ceil(y2))
    return None


def sample_background(photos: Sequence[PackedPhoto], size: int, g: torch.Generator | None = None,
                      attempts: int = 4, p_procedural: float = 0.15) -> torch.Tensor:
    """A (3, size, size) uint8 face-free background: a region of a random photo, else procedural."""
    if photos and _rand(g) >= p_procedural:
        for _ in range(attempts):
            ph = photos[_randint(g, 0, len(photos) - 1)]
            region = background_region(ph.size[0], ph.size[1], ph.avoid, g)
            if region is not None:
                x1, y1, x2, y2 = region
                return resize_uint8(decode_image(ph.jpeg)[:, y1:y2, x1:x2], size, size)
    return procedural_background(size, g)


# --------------------------------------------------------------------------- composites


def _ellipse_alpha(h: int, w: int, solid: float = 0.7) -> torch.Tensor:
    """(1, h, w) opacity: 1 inside radius ``solid`` of the inscribed ellipse, fading to 0 at its edge."""
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w * 2 - 1
    r = torch.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    return ((1 - r) / (1 - solid)).clamp(0, 1)[None]


def _jitter_face(img: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    f = img.float()
    mean = f.mean()
    f = (f - mean) * _rand(g, 0.7, 1.3) + mean * _rand(g, 0.6, 1.4)
    if _rand(g) < 0.1:
        f = f.mean(0, keepdim=True).expand(3, -1, -1)
    return f.clamp(0, 255)


def compose(background: torch.Tensor, faces: Sequence[tuple[torch.Tensor, np.ndarray]], g: torch.Generator | None = None,
            min_face: float = 12.0, max_face_frac: float = 0.5, gap: float = 0.15) -> tuple[torch.Tensor, np.ndarray]:
    """Paste face crops onto a background.

    Args:
        background: (3, S, S) uint8.
        faces: candidate ``(crop (3, h, w) uint8, tight box (4,) in crop pixels)``, pasted in order; a face
            that finds no free place (boxes kept ``gap`` of their size apart) after 10 tries is skipped.
        g: RNG.
        min_face, max_face_frac: face box width is log-uniform in [min_face, max_face_frac · S].

    Returns:
        (3, S, S) uint8 image and (K, 4) float32 exact tight boxes of the pasted faces.
    """
    canvas = background.float().clone()
    size_h, size_w = canvas.shape[1:]
    placed: list[list[float]] = []
    hi = max(min_face + 1, max_face_frac * min(size_h, size_w))
    for crop, box in faces:
        box = np.asarray(box, np.float64)
        bw, bh = box[2] - box[0], box[3] - box[1]
        for _ in range(10):
            fw = math.exp(_rand(g, math.log(min_face), math.log(hi)))
            s = fw / bw
            fh = bh * s
            if fh >= size_h or fw >= size_w:
                continue
            fx, fy = _rand(g, 0, size_w - fw), _rand(g, 0, size_h - fh)
            new = [fx, fy, fx + fw, fy + fh]
            if all(new[0] > o[2] + gap * (o[2] - o[0]) or new[2] < o[0] - gap * (o[2] - o[0]) or
                   new[1] > o[3] + gap * (o[3] - o[1]) or new[3] < o[1] - gap * (o[3] - o[1]) for o in placed):
                break
        else:
            continue
        ch, cw = crop.shape[1:]
        th, tw = max(2, round(ch * s)), max(2, round(cw * s))
        piece = _jitter_face(resize_uint8(crop, th, tw), g)
        alpha = _ellipse_alpha(th, tw)
        flip = _rand(g) < 0.5
        if flip:
            piece = piece.flip(-1)
            box_x1 = cw - box[2]
        else:
            box_x1 = box[0]
        # crop origin on the canvas, so that the (possibly flipped) face box lands at (fx, fy)
        ox, oy = round(fx - box_x1 * s), round(fy - box[1] * s)
        x1, y1, x2, y2 = max(ox, 0), max(oy, 0), min(ox + tw, size_w), min(oy + th, size_h)
        if x2 <= x1 or y2 <= y1:
            continue
        a = alpha[:, y1 - oy:y2 - oy, x1 - ox:x2 - ox]
        canvas[:, y1:y2, x1:x2] = a * piece[:, y1 - oy:y2 - oy, x1 - ox:x2 - ox] + (1 - a) * canvas[:, y1:y2, x1:x2]
        placed.append(new)
    boxes = np.asarray(placed, np.float32).reshape(-1, 4)
    return canvas.round().clamp(0, 255).to(torch.uint8), boxes


def random_face_count(g: torch.Generator | None, max_faces: int = 8, p_empty: float = 0.05) -> int:
    """0 with probability ``p_empty``, else uniform in 1..max_faces."""
    return 0 if _rand(g) < p_empty else _randint(g, 1, max_faces)


def make_composite(photos: Sequence[PackedPhoto], faces: Sequence[PackedFace], size: int,
                   g: torch.Generator | None = None, max_faces: int = 8) -> tuple[torch.Tensor, np.ndarray]:
    """One composite image: background from ``photos`` and up to ``max_faces`` random ``faces``."""
    bg = sample_background(photos, size, g)
    k = random_face_count(g, max_faces) if faces else 0
    chosen = [faces[_randint(g, 0, len(faces) - 1)] for _ in range(k)]
    return compose(bg, [(decode_image(f.jpeg), f.box) for f in chosen], g)


# --------------------------------------------------------------------------- augmentation


def train_transforms(p_affine: float = 0.7) -> v2.Transform:
    """The training augmentation (torchvision.transforms.v2; the boxes follow)."""
    return v2.Compose([
        v2.RandomApply([v2.RandomAffine(degrees=0.0, translate=(0.2, 0.2), scale=(0.5, 1.3), fill=PAD_VALUE)],
                       p=p_affine),
        v2.RandomHorizontalFlip(0.5),
        # brightness, contrast, saturation; no hue (its RGB-HSV round trip costs 3x the rest together)
        v2.RandomApply([v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3)], p=0.6),
        v2.RandomGrayscale(0.05),
    ])


def clip_boxes(boxes: torch.Tensor, width: int, height: int, min_visible: float = 0.4,
               min_size: float = 4.0) -> torch.Tensor:
    """Clip (K, 4) boxes to the image; drop those with less than ``min_visible`` of their area left or a
    side under ``min_size`` pixels."""
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    c = boxes.clone()
    c[:, 0::2] = c[:, 0::2].clamp(0, width)
    c[:, 1::2] = c[:, 1::2].clamp(0, height)
    cw, ch = c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]
    keep = (cw >= min_size) & (ch >= min_size) & (cw * ch >= min_visible * area.clamp(min=1e-9))
    return c[keep]


def augment(image: torch.Tensor, boxes: np.ndarray | torch.Tensor, transform: v2.Transform) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply a v2 transform to (3, H, W) uint8 and (K, 4) xyxy boxes; clip and filter the boxes."""
    h, w = image.shape[1:]
    img = tv_tensors.Image(image)
    bb = tv_tensors.BoundingBoxes(torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4), format="XYXY",
                                  canvas_size=(h, w))
    img, bb = transform(img, bb)
    return img.as_subclass(torch.Tensor), clip_boxes(bb.as_subclass(torch.Tensor), w, h)


# --------------------------------------------------------------------------- datasets


def hard_negative_crop(photo: PackedPhoto, box: Sequence[float], size: int, g: torch.Generator | None = None,
                       zoom: tuple[float, float] = (2.5, 8.0)) -> tuple[torch.Tensor, np.ndarray]:
    """A square crop of ``photo`` around ``box`` (a false face), letterboxed into ``size``.

    The crop's side is the box's longer side times a log-uniform factor in ``zoom`` (so the false face takes
    the place of a face of ordinary size), its centre the box's, moved by up to half the box side, then shifted
    to lie inside the photo (a crop larger than the photo is the whole photo). Returns ``(image (3, size,
    size) uint8, the photo's boxes in input pixels)``; boxes mostly outside the crop are for the caller's
    clipping (``clip_boxes``) to drop.
    """
    img = decode_image(photo.jpeg)
    h, w = img.shape[1:]
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1, 1.0) * math.exp(_rand(g, math.log(zoom[0]), math.log(zoom[1])))
    cx = (x1 + x2) / 2 + (_rand(g) - 0.5) * (x2 - x1)
    cy = (y1 + y2) / 2 + (_rand(g) - 0.5) * (y2 - y1)
    cw, ch = min(side, w), min(side, h)
    left = int(round(min(max(cx - cw / 2, 0.0), w - cw)))
    top = int(round(min(max(cy - ch / 2, 0.0), h - ch)))
    right, bottom = min(w, left + max(1, int(round(cw)))), min(h, top + max(1, int(round(ch))))
    out, lb = letterbox(img[:, top:bottom, left:right], size)
    boxes = np.asarray(photo.boxes, np.float32).reshape(-1, 4) - np.array([left, top, left, top], np.float32)
    return out, lb.to_input(boxes)


class DetectionTrainSet(Dataset):
    """Training samples: every photo of ``split`` once per epoch, plus ``composite_ratio`` × as many composites
    and, with ``hard_negatives`` (photo name → false-face boxes), ``hard_ratio`` × as many hard-negative crops.

    Items are ``(image (3, S, S) uint8, boxes (K, 4) float32)`` in input pixels.
    """

    def __init__(self, pack: DetectionPack, image_size: int, split: str = "train", composite_ratio: float = 1.0,
                 augment_photos: bool = True, max_faces: int = 8,
                 hard_negatives: dict[str, Sequence[Sequence[float]]] | None = None, hard_ratio: float = 0.0):
        self.photos = pack.select_photos(split)
        self.faces = pack.select_faces(split)
        self.size = image_size
        self.n_composites = round(composite_ratio * len(self.photos)) if self.faces else 0
        index = {p.name: i for i, p in enumerate(self.photos)}
        hard_negatives = hard_negatives or {}
        unknown = sorted(set(hard_negatives) - set(index))
        if unknown:
            from iznet.errors import DataError

            raise DataError(f"{len(unknown)} hard-negative photo(s) are not {split!r} photos of the pack "
                            f"(first: {unknown[0]!r}); mine them from the same pack and split")
        self.hard = [(index[name], np.asarray(b, np.float32)) for name in sorted(hard_negatives)
                     for b in hard_negatives[name]]
        self.n_hard = round(hard_ratio * len(self.photos)) if self.hard else 0
        self.transform = train_transforms() if augment_photos else None
        self.composite_transform = train_transforms(p_affine=0.2) if augment_photos else None
        self.max_faces = max_faces
        if len(self) == 0:
            from iznet.errors import DataError

            raise DataError(f"the pack holds no {split!r} photos or faces to train on")

    def __len__(self) -> int:
        return len(self.photos) + self.n_composites + self.n_hard

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i < len(self.photos):
            ph = self.photos[i]
            img, lb = letterbox(decode_image(ph.jpeg), self.size)
            boxes = lb.to_input(ph.boxes)
            transform = self.transform
        elif i >= len(self.photos) + self.n_composites:
            j, box = self.hard[_randint(None, 0, len(self.hard) - 1)]
            img, boxes = hard_negative_crop(self.photos[j], box, self.size)
            transform = self.transform
        else:
            img, boxes = make_composite(self.photos, self.faces, self.size, None, self.max_faces)
            transform = self.composite_transform
        if transform is None:
            return img, clip_boxes(boxes, self.size, self.size)
        return augment(img, boxes, transform)


class DetectionCollate:
    """Batch items: ``(images (N, 3, S, S) uint8, targets (N, S', S', B, 5), boxes list)`` with S' = S / 32."""

    def __init__(self, image_size: int, grid: int, anchors: Sequence[tuple[float, float]] = DEFAULT_ANCHORS):
        self.image_size, self.grid, self.anchors = image_size, grid, tuple(anchors)

    def __call__(self, batch):
        images = torch.stack([b[0] for b in batch])
        boxes = [b[1] for b in batch]
        return images, encode_targets(boxes, self.grid, self.anchors, self.image_size), boxes


def photo_eval_set(pack: DetectionPack, split: str, truth: str = "given_tight") -> list[tuple[np.ndarray, np.ndarray]]:
    """``(image (H, W, 3) uint8, true boxes (K, 4))`` for the pack's photos of ``split``.

    Args:
        truth: ``"given_tight"`` (the given boxes mapped to the tight convention: teacher-independent) or
            ``"boxes"`` (the reconciled training labels, partly the teacher's).
    """
    if truth not in ("given_tight", "boxes"):
        raise ValueError(f"truth must be 'given_tight' or 'boxes', got {truth!r}")
    return [(decode_image(p.jpeg).permute(1, 2, 0).numpy(), getattr(p, truth)) for p in pack.select_photos(split)]


def composite_eval_set(pack: DetectionPack, split: str, n: int, size: int = 416, seed: int = 1234,
                       max_faces: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` fixed composites (seeded) from the ``split`` photos' backgrounds and ``split`` faces."""
    g = torch.Generator().manual_seed(seed)
    photos, faces = pack.select_photos(split), pack.select_faces(split)
    out = []
    for _ in range(n):
        img, boxes = make_composite(photos, faces, size, g, max_faces)
        out.append((img.permute(1, 2, 0).numpy(), boxes))
    return out
