"""Reading and writing torch files safely: :func:`safe_load` (the one ``torch.load`` of the library, with
``weights_only=True``) and one-file checkpoints (config, weights and metadata).

A checkpoint is a dict::

    {"format": "iznet-checkpoint-v1",
     "kind": "embedder" | "detector" | "pair-classifier" | ...,
     "model": registry name, "model_kwargs": {...},
     "state_dict": {...}, "meta": {... JSON-like: data, command, metrics ...},
     "train_state": optional (optimizer, rng, step) for exact resume}

Only plain containers, numbers, strings and tensors go in, so ``torch.load(weights_only=True)``
reads it and a file handed in by a user is never unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from iznet.errors import IznetError, ModelError
from iznet.utils.io import atomic_path

FORMAT = "iznet-checkpoint-v1"


def save_checkpoint(path: str | Path, *, kind: str, model: str, model_kwargs: dict[str, Any],
                    state_dict: dict[str, torch.Tensor], meta: dict[str, Any] | None = None,
                    train_state: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (temporary file, then rename)."""
    obj = {
        "format": FORMAT,
        "kind": kind,
        "model": model,
        "model_kwargs": dict(model_kwargs),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "meta": dict(meta or {}),
    }
    if train_state is not None:
        obj["train_state"] = train_state
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def safe_load(path: str | Path, what: str, error: type[IznetError] = ModelError, missing_hint: str = "") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU: plain containers, numbers, strings and tensors, never
    an arbitrary pickled object (a file handed in by a user is not trusted).

    Args:
        path: the file.
        what: what the file should be, for messages ("iznet checkpoint", "detection pack", ...).
        error: the error class raised.
        missing_hint: appended to the message of a missing file (how to make one).

    Raises:
        ``error``: the file is missing, or torch cannot read it (the first line of torch's reason is kept).
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist" + (f"; {missing_hint}" if missing_hint else ""))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file, some with pages of advice
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise error(f"{path} is not a readable {what} ({type(e).__name__}: {first}); it is damaged or not "
                    f"such a file") from None


def load_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Read a checkpoint without unpickling arbitrary objects.

    Raises:
        ModelError: missing file, not an iznet checkpoint, or of another kind than ``kind``.
    """
    path = Path(path)
    obj = safe_load(path, "iznet checkpoint")
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ModelError(f"{path} is not an iznet checkpoint (expected format {FORMAT})")
    if kind is not None and obj.get("kind") != kind:
        raise ModelError(f"{path} holds a {obj.get('kind')!r} checkpoint, expected {kind!r}")
    return obj
