"""Parameter and multiply-add counts, the way the FaceNet paper counts FLOPS.

``count_flops`` runs one forward pass of a single image with forward hooks on every ``nn.Conv2d`` and
``nn.Linear`` and adds up their multiply-adds:

- Conv2d: ``H_out * W_out * C_out * (C_in / groups) * k_h * k_w``;
- Linear: ``out_features * in_features`` per input row.

Everything else is ignored, as in the paper's tables: bias additions, batch norm, ReLU, pooling (max, average
and L2), local response normalisation, concatenation and the final L2 normalisation. The pass can run on the
``meta`` device (a model built under ``with torch.device("meta")``), which costs no memory or time.
"""

from __future__ import annotations

import torch
from torch import nn

_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def count_params(model: nn.Module, exclude_norm: bool = False) -> int:
    """Number of parameters (trainable or not; buffers such as BN running statistics are not parameters).

    Args:
        model: any module.
        exclude_norm: leave out the affine parameters of normalisation layers (BatchNorm etc.), to compare
            with FaceNet's tables, whose networks had no batch norm.
    """
    if not exclude_norm:
        return sum(p.numel() for p in model.parameters())
    skip = {id(p) for m in model.modules() if isinstance(m, _NORM_TYPES) for p in m.parameters(recurse=False)}
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


def _conv_macs(m: nn.Conv2d, out: torch.Tensor) -> int:
    per_image = out[0].numel()  # C_out * H_out * W_out
    kh, kw = m.kernel_size
    return per_image * (m.in_channels // m.groups) * kh * kw


def _linear_macs(m: nn.Linear, out: torch.Tensor) -> int:
    return out[0].numel() * m.in_features


def flops_by_module(model: nn.Module, input_size: int | tuple[int, int]) -> dict[str, int]:
    """Multiply-adds per Conv2d/Linear module (qualified name -> MACs) for one image of ``input_size``.

    The model runs once in eval mode under ``no_grad`` on its own device and dtype; its mode is restored.

    Args:
        model: a module taking (1, 3, H, W).
        input_size: square side or (H, W).
    """
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    counts: dict[str, int] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            fn = _conv_macs
        elif isinstance(m, nn.Linear):
            fn = _linear_macs
        else:
            continue

        def hook(mod, _inp, out, _name=name, _fn=fn):
            counts[_name] = counts.get(_name, 0) + _fn(mod, out)

        handles.append(m.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, h, w, device=device, dtype=dtype))
    finally:
        for hd in handles:
            hd.remove()
        model.train(was_training)
    return counts


def count_flops(model: nn.Module, input_size: int | tuple[int, int]) -> int:
    """Total multiply-adds of convolutions and linear layers for one image (see the module docstring)."""
    return sum(flops_by_module(model, input_size).values())


def block_summary(model: nn.Module, input_size: int | tuple[int, int], depth: int = 2) -> list[dict]:
    """Parameters and multiply-adds per block, blocks being the modules ``depth`` names deep.

    For the NN2 family at ``depth=2`` the blocks are the rows of FaceNet's Table 2 (``features.conv1``,
    ``features.inception_3a``, ..., ``head.fc``).

    Returns:
        One dict per block that has parameters or multiply-adds, in module order:
        ``{"name", "params", "params_no_norm", "flops"}``.
    """
    flops = flops_by_module(model, input_size)
    rows: list[dict] = []
    for name, m in model.named_modules():
        level = len(name.split(".")) if name else 0
        is_leaf = next(m.children(), None) is None
        # a block is a module exactly `depth` deep, or a shallower leaf (e.g. a top-level Linear)
        if not (level == depth or (0 < level < depth and is_leaf)):
            continue
        f = sum(v for k, v in flops.items() if k == name or k.startswith(name + "."))
        p = count_params(m)
        if p or f:
            rows.append({"name": name, "params": p, "params_no_norm": count_params(m, exclude_norm=True), "flops": f})
    return rows
