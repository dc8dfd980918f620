"""Placing an image of any size in the square network input (keep the aspect ratio, pad the rest).

``input = original * scale + pad``: the image is scaled so its longer side fills the input, centred,
and the border is filled with grey (114). :class:`Letterbox` maps numpy arrays or torch tensors (it returns
the kind it is given); torch is imported only for tensors, so the torch-free label path uses it too.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import Any

import numpy as np

PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """How an original image was placed in the square network input: ``input = original * scale + pad``.

    Attributes:
        scale: input pixels per original pixel.
        pad_x, pad_y: offset of the image's top-left corner inside the input, in input pixels.
        width, height: size of the original image in pixels.
    """

    scale: float
    pad_x: float
    pad_y: float
    width: int
    height: int

    @classmethod
    def fit(cls, width: int, height: int, size: int) -> "Letterbox":
        """The placement of a ``width`` × ``height`` image in a ``size`` square (centred)."""
        scale = size / max(width, height)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        return cls(scale, (size - new_w) // 2, (size - new_h) // 2, int(width), int(height))

    def to_original(self, xyxy: Any) -> Any:
        """(K, 4) input-pixel boxes → original-image pixel boxes, clipped to the image (float32; numpy in,
        numpy out, else a tensor)."""
        if isinstance(xyxy, np.ndarray):
            out = xyxy.astype(np.float32).reshape(-1, 4).copy()
            out[:, 0::2] = np.clip((out[:, 0::2] - np.float32(self.pad_x)) / np.float32(self.scale), 0, self.width)
            out[:, 1::2] = np.clip((out[:, 1::2] - np.float32(self.pad_y)) / np.float32(self.scale), 0, self.height)
            return out
        import torch

        out = torch.as_tensor(xyxy, dtype=torch.float32).reshape(-1, 4).clone()
        out[:, 0::2] = ((out[:, 0::2] - self.pad_x) / self.scale).clamp(0, self.width)
        out[:, 1::2] = ((out[:, 1::2] - self.pad_y) / self.scale).clamp(0, self.height)
        return out

    def points_to_original(self, points: Any) -> Any:
        """Input-pixel points (..., 2) → original-image pixels (not clipped: a landmark may leave the image)."""
        if isinstance(points, np.ndarray):
            out = points.astype(np.float32).copy()
            out[..., 0] = (out[..., 0] - np.float32(self.pad_x)) / np.float32(self.scale)
            out[..., 1] = (out[..., 1] - np.float32(self.pad_y)) / np.float32(self.scale)
            return out
        import torch

        out = torch.as_tensor(points, dtype=torch.float32).clone()
        out[..., 0] = (out[..., 0] - self.pad_x) / self.scale
        out[..., 1] = (out[..., 1] - self.pad_y) / self.scale
        return out

    def to_input(self, xyxy: Any) -> Any:
        """(K, 4) original-image pixel boxes → input-pixel boxes (a tensor)."""
        import torch

        out = torch.as_tensor(xyxy, dtype=torch.float32).reshape(-1, 4).clone()
        out[:, 0::2] = out[:, 0::2] * self.scale + self.pad_x
        out[:, 1::2] = out[:, 1::2] * self.scale + self.pad_y
        return out


def letterbox(image: Any, size: int) -> tuple[Any, Letterbox]:
    """Scale and pad one image into a ``size`` square.

    Args:
        image: (3, H, W) uint8 tensor, or (H, W, 3) uint8 numpy array (RGB).
        size: side of the output.

    Returns:
        (3, size, size) uint8 tensor on the image's device, and the :class:`Letterbox` placement.
    """
    import torch
    import torch.nn.functional as F

    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
        if not image.flags.writeable:  # torch.from_numpy wants a writable array
            image = image.copy()
        image = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) image, got shape {tuple(image.shape)}")
    h, w = image.shape[1:]
    lb = Letterbox.fit(w, h, size)
    new_w, new_h = max(1, round(w * lb.scale)), max(1, round(h * lb.scale))
    resized = F.interpolate(image[None].float(), size=(new_h, new_w), mode="bilinear", antialias=True,
                            align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
    out = torch.full((3, size, size), PAD_VALUE, dtype=torch.uint8, device=image.device)
    out[:, int(lb.pad_y):int(lb.pad_y) + new_h, int(lb.pad_x):int(lb.pad_x) + new_w] = resized
    return out, lb


def _antialias_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights (out_size, K) of PyTorch's antialiased bilinear resize along one axis
    (``interpolate(mode="bilinear", antialias=True, align_corners=False)``): a triangle filter as wide as the
    scale when shrinking, plain bilinear when enlarging, weights normalised to sum 1."""
    scale = in_size / out_size
    support = scale if scale >= 1.0 else 1.0
    inv = 1.0 / scale if scale >= 1.0 else 1.0
    spans = []
    for i in range(out_size):
        centre = scale * (i + 0.5)
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), in_size)
        j = np.arange(lo, max(hi, lo + 1))
        w = np.clip(1.0 - np.abs((j - centre + 0.5) * inv), 0.0, None)
        spans.append((np.minimum(j, in_size - 1), w / w.sum() if w.sum() > 0 else w))
    k = max(len(j) for j, _ in spans)
    index = np.zeros((out_size, k), dtype=np.int64)
    weight = np.zeros((out_size, k), dtype=np.float32)
    for i, (j, w) in enumerate(spans):
        index[i, :len(j)], weight[i, :len(j)] = j, w
    return index, weight


#: Larger pictures are resized by Pillow (the same filter in fixed-point C: within a grey level, about ten
#: times faster on a 12-megapixel photo, where the numpy version takes most of a second per side).
EXACT_MAX_PIXELS = 2_500_000


def resize_antialias(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, C) uint8 -> (height, width, C) uint8 the way :func:`letterbox` resizes with PyTorch (antialiased
    bilinear in float, rounded), in numpy: width first, then height. Pictures over :data:`EXACT_MAX_PIXELS`
    go through Pillow's bilinear filter instead (the algorithm PyTorch's follows, in fixed point)."""
    if (width, height) == (image.shape[1], image.shape[0]):
        return image.copy()
    if image.shape[0] * image.shape[1] > EXACT_MAX_PIXELS and image.shape[2] == 3:
        from PIL import Image

        return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((width, height), Image.BILINEAR))
    x = image.astype(np.float32)
    index, weight = _antialias_taps(image.shape[1], width)
    out = np.zeros((x.shape[0], width, x.shape[2]), dtype=np.float32)
    for k in range(index.shape[1]):  # one tap at a time: memory stays at one resized copy
        out += x[:, index[:, k], :] * weight[None, :, k, None]
    index, weight = _antialias_taps(image.shape[0], height)
    x, out = out, np.zeros((height, width, x.shape[2]), dtype=np.float32)
    for k in range(index.shape[1]):
        out += x[index[:, k], :, :] * weight[:, k, None, None]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def letterbox_array(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """:func:`letterbox` without torch: (H, W, 3) uint8 RGB -> (size, size, 3) uint8 and the placement.

    The resize is PyTorch's antialiased bilinear filter written in numpy (:func:`resize_antialias`): the two
    agree to the grey level but for rare rounding ties, and within one grey level for pictures over
    :data:`EXACT_MAX_PIXELS` (``tests/detect/test_numpy_post.py``).
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {getattr(image, 'shape', None)}")
    h, w = image.shape[:2]
    lb = Letterbox.fit(w, h, size)
    new_w, new_h = max(1, round(w * lb.scale)), max(1, round(h * lb.scale))
    pixels = resize_antialias(np.ascontiguousarray(image, dtype=np.uint8), new_w, new_h)
    out = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    out[int(lb.pad_y):int(lb.pad_y) + new_h, int(lb.pad_x):int(lb.pad_x) + new_w] = pixels
    return out, lb
