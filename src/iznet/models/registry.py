"""Model registry and factory: ``@register_model`` builders, ``create_model``, ``list_models``, ``model_info``."""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import logging
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from torch import nn

from iznet.errors import ModelError

_logger = logging.getLogger(__name__)

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}

F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(fn: F) -> F:
    """Decorator: register a builder function under its own name.

    >>> @register_model
    ... def my_net(**kw): ...
    """
    name = fn.__name__
    old = _REGISTRY.get(name)
    # re-registering the same builder (a module reload) is fine; a different builder under one name is not
    if old is not None and (old.__module__, old.__qualname__) != (fn.__module__, fn.__qualname__):
        raise ModelError(f"model {name!r} is registered twice ({old.__module__} and {fn.__module__})")
    _REGISTRY[name] = fn
    return fn


def list_models(pattern: str | None = None) -> list[str]:
    """Registered names, sorted, optionally filtered by an fnmatch ``pattern`` (e.g. ``"nn4*"``)."""
    names = sorted(_REGISTRY)
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def _builder(name: str) -> Callable[..., nn.Module]:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ModelError(f"unknown model {name!r}.{hint} Known models: {known}") from None


def create_model(name: str, *, pretrained: bool = False, weights_path: str | Path | None = None,
                 **kw: Any) -> nn.Module:
    """Build a registered embedding network.

    Args:
        name: registered name (see :func:`list_models`).
        pretrained: ask for pretrained weights. Nothing is ever downloaded: the weights must come from
            ``weights_path``; without it this raises.
        weights_path: a local weights file. For ``inception_v3`` a torchvision-format state dict; for the
            other models a state dict of the same architecture or an iznet checkpoint holding one.
        **kw: passed to the builder (e.g. ``input_size=112``, ``bn=False``, ``width=0.5``).

    Returns:
        The model; it maps (B, 3, S, S) normalised images to (B, 128) unit vectors.

    Raises:
        ModelError: unknown name or keyword, no weights for ``pretrained=True``, bad weights file.

    >>> m = create_model("nn4_small")
    >>> m.input_size, m.embedding_dim
    (96, 128)
    """
    builder = _builder(name)
    params = inspect.signature(builder).parameters
    handles_weights = "weights_path" in params
    if handles_weights:
        kw.update(pretrained=pretrained, weights_path=weights_path)
    elif pretrained and weights_path is None:
        raise ModelError(f"no pretrained weights exist for {name!r} (FaceNet never released its weights and iznet "
                         "downloads nothing); train one with `iznet train`, then pass its checkpoint as weights_path")
    try:
        model = builder(**kw)
    except TypeError as e:
        if "unexpected keyword argument" in str(e):
            raise ModelError(f"model {name!r} does not take that option: {e}") from None
        raise
    if not handles_weights and weights_path is not None:
        load_weights(model, weights_path)
    return model


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a state dict (or an iznet checkpoint holding one) into ``model``, strictly.

    Raises:
        ModelError: missing or unreadable file, or keys/shapes that do not match (listed in the message).
    """
    from iznet.utils.checkpoint import safe_load

    path = Path(path)
    obj = safe_load(path, "weights file", ModelError)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path} holds no state dict (expected a dict of tensors or an iznet checkpoint)")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or mismatched:
        raise ModelError(f"{path} does not fit {type(model).__name__}: " + describe_key_problems(
            missing, unexpected, [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in mismatched]))
    model.load_state_dict(state, strict=True)
    _logger.info("loaded %d tensors from %s", len(state), path)


def describe_key_problems(missing: list[str], unexpected: list[str], mismatched: list[str], limit: int = 8) -> str:
    """A short human-readable summary of state-dict key problems."""
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
        if keys:
            more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
            parts.append(f"{len(keys)} {label}: {', '.join(keys[:limit])}{more}")
    return "; ".join(parts)


def model_info(name: str, **kw: Any) -> dict[str, Any]:
    """Name, native input size, parameter count and multiply-adds per image of a registered model.

    The model is built on the ``meta`` device (no memory, no weights), so this is fast even for NN1.

    Returns:
        ``{"name", "input_size", "params", "flops"}``; ``flops`` counts multiply-adds of convolutions and
        linear layers for one image at ``input_size`` (see :mod:`iznet.models.flops`).
    """
    from iznet.models.flops import count_flops, count_params

    with torch.device("meta"):
        model = create_model(name, **kw)
    size = int(model.input_size)
    return {"name": name, "input_size": size, "params": count_params(model), "flops": count_flops(model, size)}


def model_layers(name: str, depth: int = 2, **kw: Any) -> list[dict[str, Any]]:
    """Per-block parameters and multiply-adds of a registered model at its input size (built on ``meta``).

    For the NN2 family the blocks are the rows of FaceNet's Table 2; for NN1 those of Table 1.

    Returns:
        ``[{"name", "params", "params_no_norm", "flops"}, ...]`` (see :func:`iznet.models.flops.block_summary`).
    """
    from iznet.models.flops import block_summary

    with torch.device("meta"):
        model = create_model(name, **kw)
    return block_summary(model, int(model.input_size), depth=depth)
