"""Device and mixed-precision choice in one place."""

from __future__ import annotations

import contextlib

import torch


def default_device(name: str | None = None) -> torch.device:
    """CUDA when present (or ``name`` when given), else CPU."""
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA, a no-op context elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
