"""A second landmark stage: a small network that refines the detector's five points on an aligned face crop.

The detector's landmark branch (:mod:`iznet.detect.landmarks`) reads stride-32 features, so its points are
coarse (worse on small faces). The refiner works like the last stage of a cascade (MTCNN's O-Net):

1. the coarse points define a similarity transform onto a canonical template inside a
   :data:`REFINE_SIZE`-pixel crop with a wide margin (:func:`crop_transform`), so the refiner sees an upright,
   roughly centred face at a fixed scale whatever its size in the photo;
2. the network regresses the five points in that crop (fractions of its side);
3. the points are mapped back through the inverse transform.

It is trained on teacher points (:class:`iznet.detect.landmark_train.LandmarkLabels`), with the coarse points
simulated by perturbing the truth (rotation, scale, shift, per-point noise) by more than the branch errs, and
with mirrored crops. ``iters`` repeats steps 1–3 from the refined points.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from iznet.data.align import TEMPLATE_112, similarity_transform
from iznet.detect.landmarks import FLIP_ORDER

REFINE_SIZE = 64
#: Template points inside the refiner's crop: the 112-pixel template shrunk to 60% around the crop centre,
#: leaving a margin that holds points the coarse stage put up to a fifth of the face off.
REFINE_TEMPLATE = (TEMPLATE_112 - 56.0) * 0.6 * (REFINE_SIZE / 112.0) + REFINE_SIZE / 2.0


def crop_transform(points: np.ndarray, size: int = REFINE_SIZE) -> np.ndarray:
    """The 2×3 similarity mapping image pixels into the refiner's crop, from (5, 2) coarse points."""
    return similarity_transform(points, REFINE_TEMPLATE * (size / REFINE_SIZE))


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def _invert(m: np.ndarray) -> np.ndarray:
    a = np.linalg.inv(m[:, :2])
    return np.concatenate([a, -(a @ m[:, 2])[:, None]], 1)


def warp_crop(image: np.ndarray, m: np.ndarray, size: int = REFINE_SIZE) -> np.ndarray:
    """``image`` warped by ``m`` into a (size, size, 3) uint8 crop (black outside; area-averaged when the
    face is shrunk a lot, so small crops do not alias)."""
    import cv2

    # only the part of the image that lands in the crop (plus a margin) is resized and warped
    inv = _invert(m)
    corners = _apply(inv, np.array([[0.0, 0], [size, 0], [0, size], [size, size]]))
    pad = 2.0 / max(float(np.hypot(m[0, 0], m[1, 0])), 1e-6)
    x0, y0 = np.floor(corners.min(0) - pad).astype(int)
    x1, y1 = np.ceil(corners.max(0) + pad).astype(int)
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((size, size, 3), np.uint8)
    image = image[y0:y1, x0:x1]
    m = m.copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], dtype=np.float64)
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    if scale < 0.5:
        f = 1.0 / scale / 1.5
        image = cv2.resize(image, (max(1, round(image.shape[1] / f)), max(1, round(image.shape[0] / f))),
                           interpolation=cv2.INTER_AREA)
        m = m.copy()
        m[:, :2] *= f
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(0, 0, 0))


class LandmarkRefiner(nn.Module):
    """(N, 3, 64, 64) uint8-range floats in [0, 1] → (N, 10) points as fractions of the crop side.

    Four stride-2 3×3 convolutions (16-32-64-128 channels, batch norm, ReLU), a 3×3 convolution at 4×4, and
    two fully connected layers; about 0.4M parameters.
    """

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        layers: list[nn.Module] = []
        c = 3
        for c_out in (w, 2 * w, 4 * w, 8 * w):
            layers += [nn.Conv2d(c, c_out, 3, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                       nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * (REFINE_SIZE // 16) ** 2, 128), nn.ReLU(inplace=True),
                                  nn.Linear(128, 10))
        with torch.no_grad():  # start at the template: a refiner that has learned nothing returns its input
            self.head[-1].weight.mul_(0.01)
            self.head[-1].bias.copy_(torch.from_numpy(REFINE_TEMPLATE.reshape(-1) / REFINE_SIZE).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features((x - 0.5) / 0.25))


@torch.no_grad()
def refine_points(refiner: Callable[[torch.Tensor], torch.Tensor], image: np.ndarray, points: np.ndarray,
                  iters: int = 2) -> np.ndarray:
    """Refined (K, 5, 2) points of the faces whose coarse points are ``points`` (K, 5, 2), in ``image`` pixels.

    ``refiner``: a :class:`LandmarkRefiner` in eval mode, or any callable with its contract (float (N, 3, 64,
    64) in [0, 1] → (N, 10) fractions of the crop side)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2)
    if len(pts) == 0:
        return pts
    ok = np.isfinite(pts).all((1, 2)) & (np.linalg.norm(pts[:, 0] - pts[:, 1], axis=-1) > 1e-3)
    for _ in range(max(1, iters)):
        mats = [crop_transform(p) if k else None for p, k in zip(pts, ok)]
        crops = [warp_crop(image, m) for m in mats if m is not None]
        if not crops:
            return pts
        x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
        out = torch.as_tensor(refiner(x)).double().numpy().reshape(-1, 5, 2) * REFINE_SIZE
        new = pts.copy()
        j = 0
        for i, m in enumerate(mats):
            if m is not None:
                new[i] = _apply(_invert(m), out[j])
                j += 1
        pts = new
    return pts


# --------------------------------------------------------------------------- training


@dataclass
class RefinerTrainConfig:
    steps: int = 3000
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    beta: float = 0.01
    rot_deg: float = 15.0
    scale: float = 0.15
    shift: float = 0.12
    point_noise: float = 0.06
    seed: int = 0
    checkpoint_every: int = 250


def perturb(points: np.ndarray, rng: np.random.Generator, cfg: RefinerTrainConfig) -> np.ndarray:
    """Coarse points simulated from true (5, 2) points: a random similarity about their centre (rotation,
    scale, shift in units of the inter-ocular distance) plus independent noise on each point."""
    iod = max(float(np.linalg.norm(points[0] - points[1])), 1.0)
    c = points.mean(0)
    a = math.radians(rng.uniform(-cfg.rot_deg, cfg.rot_deg))
    s = 1.0 + rng.uniform(-cfg.scale, cfg.scale)
    r = s * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    out = (points - c) @ r.T + c + rng.uniform(-cfg.shift, cfg.shift, 2) * iod
    return out + rng.normal(0, cfg.point_noise, (5, 2)) * iod


def training_sample(image: np.ndarray, truth: np.ndarray, rng: np.random.Generator, cfg: RefinerTrainConfig
                    ) -> tuple[np.ndarray, np.ndarray]:
    """One (64, 64, 3) crop from perturbed points and its target (10,) in fractions of the crop (mirrored
    half the time, left and right swapped)."""
    m = crop_transform(perturb(truth, rng, cfg))
    crop = warp_crop(image, m)
    target = _apply(m, truth) / REFINE_SIZE
    if rng.random() < 0.5:  # pixel centres sit at integer coordinates (OpenCV's warp): column x goes to W - 1 - x
        crop = crop[:, ::-1].copy()
        target = target[list(FLIP_ORDER)]
        target[:, 0] = (REFINE_SIZE - 1) / REFINE_SIZE - target[:, 0]
    return crop, target.reshape(-1).astype(np.float32)


PATCH_IOD = 20.0  # inter-ocular distance (pixels) the training faces are stored at, at most


def face_patch(image: np.ndarray, points: np.ndarray, reach: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """The region of ``image`` around a face (``reach`` × its inter-ocular distance on each side of the points'
    centre), shrunk so the eyes are at most :data:`PATCH_IOD` pixels apart, and the points in its pixels.
    Training samples are warped from these small patches instead of the whole photo (same crops, far less work)."""
    import cv2

    iod = max(float(np.linalg.norm(points[0] - points[1])), 2.0)
    c = points.mean(0)
    half = reach * iod
    x0, y0 = int(np.floor(c[0] - half)), int(np.floor(c[1] - half))
    x1, y1 = int(np.ceil(c[0] + half)), int(np.ceil(c[1] + half))
    h, w = image.shape[:2]
    canvas = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)  # black outside the photo, as warp_crop fills it
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    pts = points - np.array([x0, y0], dtype=np.float64)
    f = min(1.0, PATCH_IOD / iod)
    if f < 1.0:
        size = (max(1, round(canvas.shape[1] * f)), max(1, round(canvas.shape[0] * f)))
        fx, fy = size[0] / canvas.shape[1], size[1] / canvas.shape[0]
        canvas = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA)
        # pixel centres at integers: x -> (x + 0.5) * f - 0.5
        pts = (pts + 0.5) * np.array([fx, fy]) - 0.5
    return canvas, pts


def train_refiner(labels, out: str | Path, config: RefinerTrainConfig = RefinerTrainConfig(),
                  progress: Callable[[int, float], None] | None = None) -> LandmarkRefiner:
    """Train a :class:`LandmarkRefiner` on the ``train`` faces of ``labels``; resumes from ``out/refiner_last.pt``.

    Returns the trained network (also saved as ``out/refiner.pt``: ``{"state_dict", "config"}``)."""
    from iznet.data.images import load_image
    from iznet.detect.landmark_train import cosine_lr, load_run_state, save_run_state
    from iznet.errors import DataError

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train = labels.select("train")
    patches = []
    for path, pts in zip(train.paths, train.points):
        if len(pts):
            img = load_image(path)
            patches += [face_patch(img, p.astype(np.float64)) for p in pts]
    if not patches:
        raise DataError("the landmark labels hold no 'train' faces")
    torch.manual_seed(config.seed)
    net = LandmarkRefiner()
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(config.seed)
    last = out / "refiner_last.pt"
    step = load_run_state(last, net, opt, rng)
    net.train()
    while step < config.steps:
        cosine_lr(opt, config.lr, step, config.steps)
        xs, ys = [], []
        for _ in range(config.batch):
            patch, pts = patches[int(rng.integers(len(patches)))]
            crop, y = training_sample(patch, pts, rng, config)
            xs.append(torch.from_numpy(crop).permute(2, 0, 1))
            ys.append(torch.from_numpy(y))
        x = torch.stack(xs).float() / 255.0
        loss = nn.functional.smooth_l1_loss(net(x), torch.stack(ys), beta=config.beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if progress:
            progress(step, float(loss.detach()))
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_run_state(last, net, opt, step, rng)
    net.eval()
    torch.save({"state_dict": net.state_dict(), "config": asdict(config)}, out / "refiner.pt")
    return net


__all__ = ["REFINE_SIZE", "REFINE_TEMPLATE", "LandmarkRefiner", "RefinerTrainConfig", "crop_transform", "face_patch",
           "perturb", "refine_points", "train_refiner", "training_sample", "warp_crop"]
