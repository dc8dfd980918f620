"""Device and mixed-precision choice in one place."""

from __future__ import annotations

import contextlib

import torch


def default_device(name: str | None = None) -> torch.device:
    """CUDA when present (or ``name`` when given), else CPU."""
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device, enabled: bool = True, cpu_bf16: bool = False):
    """bf16 autocast on CUDA when ``enabled``; on the CPU only when ``cpu_bf16`` asks for it (it pays only
    on CPUs with native bf16); a no-op context otherwise."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if cpu_bf16 and device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def cpu_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels_last layout when it is on the CPU (oneDNN's convolutions are faster in it, same values
    up to rounding), unchanged elsewhere."""
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x
