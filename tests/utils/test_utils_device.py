"""utils.device: the warning for --cpu-bf16 on a CPU that emulates bf16."""

from __future__ import annotations

import torch

from iznet.utils import device as device_mod


def test_cpu_bf16_warning_only_where_bf16_is_emulated(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(device_mod, "cpu_bf16_native", lambda: False)
    msg = device_mod.cpu_bf16_warning(cpu, True)
    assert msg is not None and "without native bf16" in msg and "drop --cpu-bf16" in msg
    assert torch.backends.cpu.get_cpu_capability() in msg
    assert device_mod.cpu_bf16_warning(cpu, False) is None      # not asked for
    assert device_mod.cpu_bf16_warning(cuda, True) is None      # bf16 on CUDA is the default, not this switch
    for native in (True, None):                                 # native, or torch cannot tell: no claim made
        monkeypatch.setattr(device_mod, "cpu_bf16_native", lambda native=native: native)
        assert device_mod.cpu_bf16_warning(cpu, True) is None


def test_cpu_bf16_native_answers_from_onednn():
    assert device_mod.cpu_bf16_native() in (True, False, None)
    if hasattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported"):
        assert device_mod.cpu_bf16_native() == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
