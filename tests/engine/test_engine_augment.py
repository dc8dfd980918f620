"""Photo-like augmentations: blur against a direct convolution, JPEG re-compression, presets, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iznet.engine.augment import augment_batch, gaussian_blur, jpeg_roundtrip
from iznet.engine.config import AUGMENT_PRESETS, AugmentConfig, augment_preset


def test_gaussian_blur_matches_an_explicit_loop():
    torch.manual_seed(0)
    x = torch.rand(3, 2, 9, 11, dtype=torch.float64)
    sig = torch.tensor([0.5, 1.0, 1.7], dtype=torch.float64)
    got = gaussian_blur(x, sig)
    r = int(np.ceil(3 * 1.7))
    for b in range(3):
        t = np.arange(-r, r + 1)
        k = np.exp(-0.5 * (t / sig[b].item()) ** 2)
        k /= k.sum()
        img = x[b].numpy()
        pad = np.pad(img, ((0, 0), (r, r), (r, r)), mode="reflect")
        want = np.zeros_like(img)
        for c in range(2):
            for i in range(9):
                for j in range(11):
                    want[c, i, j] = (k[:, None] * k[None, :] * pad[c, i:i + 2 * r + 1, j:j + 2 * r + 1]).sum()
        np.testing.assert_allclose(got[b].numpy(), want, atol=1e-12)


def test_jpeg_roundtrip_is_close_and_lossy():
    torch.manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(2, 3, 8, 8), size=64, mode="bilinear")
    out = jpeg_roundtrip(smooth, [90, 20])
    assert out.shape == smooth.shape
    err = (out - smooth).abs().mean(dim=(1, 2, 3))
    assert err[0] < 0.02 and err[1] > err[0]


def test_presets_and_determinism():
    assert augment_preset("default") == AugmentConfig()
    with pytest.raises(ValueError, match="photo"):
        augment_preset("strong")
    x = torch.randint(0, 255, (6, 3, 40, 40), dtype=torch.uint8)
    cfg = augment_preset("photo")
    a = augment_batch(x, 32, cfg, torch.Generator().manual_seed(3))
    b = augment_batch(x, 32, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (6, 3, 32, 32) and a.min() >= -1 and a.max() <= 1
    # the photo transforms draw after the default ones: with them all switched off, the images are the default's
    off = AugmentConfig(**{**AUGMENT_PRESETS["photo"], "saturation": 0.0, "blur_p": 0.0, "jpeg_p": 0.0})
    c = augment_batch(x, 32, off, torch.Generator().manual_seed(3))
    d = augment_batch(x, 32, AugmentConfig(**{k: v for k, v in AUGMENT_PRESETS["photo"].items()
                                              if k in ("scale", "shift", "rotate_deg", "grayscale_p")}),
                      torch.Generator().manual_seed(3))
    assert torch.equal(c, d)
