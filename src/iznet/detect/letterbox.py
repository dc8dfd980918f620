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


def letterbox_array(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """:func:`letterbox` without torch: (H, W, 3) uint8 RGB -> (size, size, 3) uint8 and the placement.

    Resizing is Pillow's bilinear filter, which widens its support when shrinking (antialiasing) as
    ``torch.nn.functional.interpolate(..., antialias=True)`` does; the two agree within a grey level or so
    (``tests/detect/test_numpy_post.py``).
    """
    from PIL import Image

    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {getattr(image, 'shape', None)}")
    h, w = image.shape[:2]
    lb = Letterbox.fit(w, h, size)
    new_w, new_h = max(1, round(w * lb.scale)), max(1, round(h * lb.scale))
    pixels = np.ascontiguousarray(image, dtype=np.uint8)
    if (new_w, new_h) != (w, h):
        pixels = np.asarray(Image.fromarray(pixels).resize((new_w, new_h), Image.BILINEAR))
    out = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    out[int(lb.pad_y):int(lb.pad_y) + new_h, int(lb.pad_x):int(lb.pad_x) + new_w] = pixels
    return out, lb
