"""Batch augmentation on whatever device the images live on (the GPU when training there).

Images are uint8 (B,3,H,W). One affine warp per image (random scale, shift, horizontal flip and a small
rotation) resamples straight to the network's input size, then a brightness/contrast jitter, greyscale,
and, when enabled, the marks of real photos: colour (saturation) changes, Gaussian blur and JPEG
re-compression; the result is normalised the way every iznet model expects ((x/255 - 0.5) / 0.5).
``AUGMENT_PRESETS["photo"]`` turns them on with a wider jitter of the face box (``iznet train --augment photo``).
The extra transforms draw their random numbers after the others, so the default transforms give the same
images as before they existed. All randomness comes from the
``torch.Generator`` passed in, so a run that derives the generator from (seed, step) is exactly
reproducible and resumable.
"""

from __future__ import annotations

import math
import torch
import torch.nn.functional as F

from iznet.engine.config import AugmentConfig


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image of float (B,C,H,W) with its own Gaussian ``sigma`` (B,) (separable, reflect padding)."""
    b, c, h, w = x.shape
    r = max(1, int(math.ceil(3 * float(sigma.max()))))
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t[None] / sigma.to(x.dtype)[:, None].clamp_min(1e-3)) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (B*C, 2r+1)
    y = x.reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), k[:, None, None, :], groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k[:, None, :, None], groups=b * c)
    return y.reshape(b, c, h, w)


def jpeg_roundtrip(x: torch.Tensor, quality: list[int]) -> torch.Tensor:
    """Encode each float image in [0, 1] (B,3,H,W) as JPEG at its quality and decode it (on the CPU)."""
    from torchvision.io import decode_jpeg, encode_jpeg

    u8 = (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    out = [decode_jpeg(encode_jpeg(img, quality=int(q))) for img, q in zip(u8, quality)]
    return torch.stack(out).to(x.device, x.dtype).div_(255.0)


def normalise(x_uint8: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (B,3,H,W) → float (B,3,size,size) in [-1, 1], resized with antialiasing when needed."""
    x = x_uint8.float().div_(255.0)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.sub_(0.5).div_(0.5)


def augment_batch(x_uint8: torch.Tensor, size: int, cfg: AugmentConfig,
                  generator: torch.Generator) -> torch.Tensor:
    """Randomly warp and jitter a batch, returning normalised float (B,3,size,size).

    Args:
        x_uint8: (B,3,H,W) uint8 images on any device.
        size: output side (the network's input size).
        cfg: transform ranges.
        generator: a CPU generator; random numbers are drawn on the CPU then moved, so results do not
            depend on the device.
    """
    b = x_uint8.shape[0]
    dev = x_uint8.device

    def rand(*shape):
        return torch.rand(*shape, generator=generator).to(dev)

    x = x_uint8.float().div_(255.0)
    # Source is at least as large as the output; downscale first so grid_sample does not alias.
    if x.shape[-1] > size * 1.2:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    s = cfg.scale[0] + (cfg.scale[1] - cfg.scale[0]) * rand(b)
    ang = (rand(b) * 2 - 1) * math.radians(cfg.rotate_deg)
    tx = (rand(b) * 2 - 1) * cfg.shift * 2  # grid coordinates span 2 units
    ty = (rand(b) * 2 - 1) * cfg.shift * 2
    flip = (rand(b) < 0.5) if cfg.flip else torch.zeros(b, dtype=torch.bool, device=dev)
    sx = torch.where(flip, -1.0, 1.0) / s
    cos, sin = torch.cos(ang), torch.sin(ang)
    theta = torch.stack([
        torch.stack([cos * sx, -sin / s, tx], dim=1),
        torch.stack([sin * sx, cos / s, ty], dim=1),
    ], dim=1)
    grid = F.affine_grid(theta, (b, 3, size, size), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if cfg.brightness > 0:
        x = x + ((rand(b) * 2 - 1) * cfg.brightness).view(b, 1, 1, 1)
    if cfg.contrast > 0:
        c = (1 + (rand(b) * 2 - 1) * cfg.contrast).view(b, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * c + mean
    if cfg.grayscale_p > 0:
        g = (rand(b) < cfg.grayscale_p).view(b, 1, 1, 1)
        gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).expand_as(x)
        x = torch.where(g, gray, x)
    if cfg.saturation > 0:
        f = (1 + (rand(b) * 2 - 1) * cfg.saturation).view(b, 1, 1, 1)
        grey = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
        x = grey + (x - grey) * f
    if cfg.blur_p > 0:
        pick = rand(b) < cfg.blur_p
        sig = cfg.blur_sigma[0] + (cfg.blur_sigma[1] - cfg.blur_sigma[0]) * rand(b)
        if bool(pick.any()):
            x = torch.where(pick.view(b, 1, 1, 1), gaussian_blur(x, sig), x)
    if cfg.jpeg_p > 0:
        pick = (rand(b) < cfg.jpeg_p).cpu()
        q = cfg.jpeg_quality[0] + ((cfg.jpeg_quality[1] - cfg.jpeg_quality[0] + 1) * rand(b)).floor().cpu()
        idx = torch.nonzero(pick).flatten()
        if len(idx):
            x = x.clamp(0, 1)
            x[idx.to(dev)] = jpeg_roundtrip(x[idx.to(dev)], q[idx].long().tolist())
    return x.clamp_(0, 1).sub_(0.5).div_(0.5)
