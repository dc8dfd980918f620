"""The name under which a gallery stores an embedder's vectors (:func:`embedder_tag`)."""

from __future__ import annotations

import hashlib
import json

from typing import TYPE_CHECKING, Any

import numpy as np

from iznet.errors import ModelError

if TYPE_CHECKING:
    import torch

    from iznet.recognize.embedder import Embedder


# ---------------------------------------------------------------------------------------------- embedder tag
def _hash_state_dict(h: "hashlib._Hash", state: "dict[str, torch.Tensor]") -> None:
    import torch

    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())


def embedder_tag(embedder: "Embedder | Any") -> str:
    """The name under which a gallery stores this embedder's vectors.

    The rule, the one place it is defined:

    * an embedder with a non-empty string attribute ``tag`` gives it;
    * :class:`RawPixelEmbedder`: its ``name``, which fixes it (e.g. ``raw(size=32;gray=True;crop=1)``);
    * a network: ``<model>@<h>`` where ``<h>`` is the first 12 hex digits of a SHA-256 over the model class,
      the input size, the flip-TTA flag, the test-time zoom views (when there are any) and every weight
      tensor (name, dtype, shape, bytes). The checkpoint's file name and other metadata do not count: the same weights give the same tag wherever the file lies, and
      any change of weights gives a new tag;
    * a fitted :class:`PCAEmbedder`: ``pca@<h>`` over its settings and fitted mean and components;
    * an :class:`EnsembleEmbedder`: ``ensemble@<h>`` over its members' tags in order;
    * anything else: ``<name>@<h>`` over its :meth:`~Embedder.describe` output.

    Commas become semicolons: the gallery lists a picture's tags comma-separated.

    >>> from iznet.recognize.embedder import RawPixelEmbedder
    >>> embedder_tag(RawPixelEmbedder(size=16))
    'raw(size=16;gray=True;crop=1)'
    """
    tag = getattr(embedder, "tag", None)
    if isinstance(tag, str) and tag.strip():
        return tag.replace(",", ";")
    # imported here: an embedder that names its tag (an exported one) needs no torch
    from iznet.recognize.embedder import EnsembleEmbedder, NetworkEmbedder, PCAEmbedder, RawPixelEmbedder

    if isinstance(embedder, RawPixelEmbedder):
        return embedder.name.replace(",", ";")
    h = hashlib.sha256()
    head = str(getattr(embedder, "name", type(embedder).__name__)).split("@")[0].split("(")[0] or "embedder"
    if isinstance(embedder, NetworkEmbedder):
        h.update(f"{type(embedder.model).__name__}|{embedder.input_size}|tta={embedder.tta}".encode())
        if embedder.zooms:  # only when there are any: the tags of embedders without them stay as they were
            h.update(f"|zooms={','.join(repr(float(z)) for z in embedder.zooms)}".encode())
        _hash_state_dict(h, embedder.model.state_dict())
    elif isinstance(embedder, EnsembleEmbedder):
        h.update("|".join(embedder_tag(m) for m in embedder.members).encode())
        head = "ensemble"
    elif isinstance(embedder, PCAEmbedder):
        if embedder.pca is None:
            raise ModelError(f"{embedder.name} is not fitted; a gallery needs a fitted embedder")
        h.update(f"{embedder.size}|{embedder.gray}|{embedder.crop}|{embedder.whiten}".encode())
        for a in (embedder.pca.mean_, embedder.pca.components_, embedder.pca.explained_variance_):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        head = "pca"
    else:
        desc = {k: v for k, v in embedder.describe().items() if k not in ("device", "name")}
        h.update(json.dumps(desc, sort_keys=True, default=str).encode())
    return f"{head.replace(',', ';')}@{h.hexdigest()[:12]}"
