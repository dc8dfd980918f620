"""Weight averaging of embedders trained from one starting point (a "model soup").

Networks fine-tuned from the same checkpoint stay in one basin of the loss, where the average of their
weights is usually at least as good as each of them, and the average of the start and a fine-tune often keeps
what the start knew better than the fine-tune alone (robust fine-tuning by interpolation). Nothing here
trains: :func:`average_state_dicts` mixes the weights, :func:`recompute_batchnorm` re-estimates the
batch-norm statistics of the mixed network on images of the training set (the average of two networks'
running statistics is not the statistics of the averaged network).

``scripts/soup.py`` writes such a mix as a run folder every stage of ``scripts/eval_candidate.sh`` can judge.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from iznet.errors import ModelError


def average_state_dicts(state_dicts: Sequence[dict[str, torch.Tensor]], weights: Sequence[float],
                        names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """The weighted average ``sum_i w_i * sd_i`` of state dicts with the same keys and shapes.

    Floating tensors are averaged in float64 and returned in float32; integer tensors (batch-norm's
    ``num_batches_tracked``) are taken from the first state dict.

    Args:
        state_dicts: two or more state dicts of one architecture.
        weights: one non-negative weight each, summing to 1 (within 1e-6).
        names: what to call each state dict in error messages (default "#0", "#1", ...).

    Raises:
        ModelError: fewer than two state dicts, bad weights, or keys, shapes or kinds that differ.
    """
    n = len(state_dicts)
    names = list(names) if names is not None else [f"#{i}" for i in range(n)]
    if n < 2:
        raise ModelError(f"averaging needs at least two checkpoints, got {n}")
    if len(weights) != n or len(names) != n:
        raise ModelError(f"averaging {n} checkpoints needs {n} weights and names, got {len(weights)} and "
                         f"{len(names)}")
    w = [float(x) for x in weights]
    if any(not x >= 0 for x in w) or abs(sum(w) - 1.0) > 1e-6:
        raise ModelError(f"averaging weights must be non-negative and sum to 1, got {w}")
    first = state_dicts[0]
    for name, sd in zip(names[1:], state_dicts[1:]):
        if set(sd) != set(first):
            extra, missing = sorted(set(sd) - set(first)), sorted(set(first) - set(sd))
            raise ModelError(f"checkpoint {name} has other weights than {names[0]} (extra {extra[:3]}, missing "
                             f"{missing[:3]}); only networks of one architecture can be averaged")
        for k, v in sd.items():
            if v.shape != first[k].shape or v.is_floating_point() != first[k].is_floating_point():
                raise ModelError(f"weight {k!r} of checkpoint {name} is {tuple(v.shape)} {v.dtype}, of "
                                 f"{names[0]} {tuple(first[k].shape)} {first[k].dtype}; only networks of one "
                                 "architecture can be averaged")
    out: dict[str, torch.Tensor] = {}
    for k, v0 in first.items():
        if not v0.is_floating_point():
            out[k] = v0.clone()
            continue
        acc = torch.zeros(v0.shape, dtype=torch.float64)
        for wi, sd in zip(w, state_dicts):
            acc += wi * sd[k].to(torch.float64)
        out[k] = acc.to(torch.float32)
    return out


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Replace every batch-norm layer's running mean and variance with their averages over ``batches``.

    Each layer's momentum is set to ``None`` (a cumulative average of the per-batch statistics, as
    ``torch.optim.swa_utils.update_bn`` does) for the pass and put back after; the model is left in eval mode.
    Batches are network inputs (already preprocessed).

    Returns:
        the number of images seen.

    Raises:
        ModelError: the model has no batch-norm layer, or no batch was given.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        raise ModelError("the network has no batch-norm layer; there are no statistics to recompute")
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    seen = 0
    try:
        for x in batches:
            model(x)
            seen += int(x.shape[0])
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        model.eval()
    if seen == 0:
        raise ModelError("no images were given to recompute the batch-norm statistics")
    return seen


_TRAINING_KEYS = ("source_run", "summary", "step")


def soup_meta(metas: Sequence[dict], weights: Sequence[float], names: Sequence[str]) -> dict:
    """The metadata of a weighted average: which checkpoints, in what proportion, and what trained it.

    The unknown-face rule (``calibration``) and the storage type are never kept: a mix is calibrated anew.
    When one ingredient has weight 1 the mix *is* that network, so its training record (``summary``: the
    training pack and people, ``source_run``, ``step``) is kept and a later check that needs the training
    people (for one, the overlap of the training people with LFW) still finds them; otherwise the record
    is dropped, since no single run trained the mix, and the first ingredient's other metadata (input size,
    crop, flip TTA) is used.
    """
    whole = [i for i, w in enumerate(weights) if float(w) == 1.0]
    base = metas[whole[0]] if whole else metas[0]
    drop = {"calibration", "weights_dtype"} | (set() if whole else set(_TRAINING_KEYS))
    meta = {k: v for k, v in base.items() if k not in drop}
    meta["soup"] = {"ingredients": [{"weight": float(w), "checkpoint": str(n)} for w, n in zip(weights, names)],
                    "batchnorm": "averaged"}
    return meta
