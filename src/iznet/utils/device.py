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


def cpu_bf16_native() -> bool | None:
    """Whether oneDNN runs bf16 natively on this CPU (AVX512-BF16 or AMX); None where torch cannot tell."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return None


def cpu_bf16_warning(device: torch.device, cpu_bf16: bool) -> str | None:
    """A warning for ``cpu_bf16`` on a CPU that emulates bf16, where it is several times slower than fp32
    (a training step of NN4-small at 112 px: 8x slower on an AVX2-only CPU,
    benchmarks/results/bench_cpu_layout_train_nn4_small_112_avx2.json); None where it is fine."""
    if not cpu_bf16 or device.type != "cpu" or cpu_bf16_native() is not False:
        return None
    return (f"warning: --cpu-bf16 on a CPU without native bf16 (torch sees {torch.backends.cpu.get_cpu_capability()}, "
            "no AVX512-BF16 or AMX): bf16 is emulated here and training is several times slower than in fp32; "
            "drop --cpu-bf16")


def cpu_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels_last layout when it is on the CPU (oneDNN's convolutions are faster in it, same values
    up to rounding), unchanged elsewhere."""
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x
