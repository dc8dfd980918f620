"""InceptionV3 (torchvision's architecture) with a 128-d embedding head instead of the classifier.

The trunk is ``torchvision.models.inception_v3(weights=None, transform_input=False)`` up to ``Mixed_7c``
(B, 2048, 8, 8 at 299 px). The head is global average pooling, ``Linear(2048, 128, bias=False)``,
``BatchNorm1d(128)`` and L2 normalisation.

- The auxiliary classifier is off by default (``aux_logits=False``): it only helps training and costs
  parameters. With ``aux_logits=True`` its last layer becomes a 128-d embedding and
  :meth:`InceptionV3Embedder.forward_with_aux` returns it beside the main embedding in training mode.
- ``transform_input=False``: our inputs are already ``(x/255 - 0.5)/0.5``, the range torchvision's
  ImageNet weights (ported from TensorFlow) expect after their own input transform.
- Nothing is downloaded. ``weights_path`` loads a local torchvision-format state dict (e.g. the
  ``inception_v3_google-*.pth`` file a user already has) into the trunk, strictly.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from iznet.errors import ModelError
from iznet.models.base import EmbeddingNet
from iznet.models.registry import describe_key_problems, register_model

_logger = logging.getLogger(__name__)

# torchvision Inception3 trunk modules, in forward order (the auxiliary head branches off after Mixed_6e).
_TRUNK = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
          "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
          "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")
_AUX_AFTER = "Mixed_6e"


class InceptionV3Embedder(EmbeddingNet):
    """torchvision InceptionV3 trunk + 128-d embedding head.

    Args:
        input_size: square input side (native 299; at least 75 px, 299-ish when ``aux_logits``).
        aux_logits: build the auxiliary head (as a 128-d embedding); off by default.
        init_weights: torchvision's truncated-normal init (True) or PyTorch's default init (False).
        dropout: dropout before the embedding layer.
        embedding_dim: embedding size (128).

    Shapes:
        (B, 3, S, S) -> forward_features (B, 2048, h, w) (8x8 at 299) -> forward (B, 128), L2-normalised.
    """

    def __init__(self, input_size: int = 299, aux_logits: bool = False, init_weights: bool = True,
                 dropout: float = 0.0, embedding_dim: int = 128):
        super().__init__()
        from torchvision.models import inception_v3

        if input_size < 75:
            raise ModelError(f"inception_v3 needs an input of at least 75 px, got input_size={input_size}")
        self.input_size = input_size
        self.embedding_dim = embedding_dim
        self.num_features = 2048
        self.aux_logits = aux_logits
        backbone = inception_v3(weights=None, aux_logits=aux_logits, init_weights=init_weights,
                                transform_input=False)
        backbone.fc = nn.Identity()  # the classifier is replaced by self.head
        if aux_logits:
            backbone.AuxLogits.fc = nn.Linear(backbone.AuxLogits.fc.in_features, embedding_dim)
        self.backbone = backbone
        self.head = nn.Sequential()
        self.head.add_module("pool", nn.AdaptiveAvgPool2d(1))
        self.head.add_module("flatten", nn.Flatten(1))
        self.head.add_module("dropout", nn.Dropout(dropout))
        self.head.add_module("fc", nn.Linear(2048, embedding_dim, bias=False))
        self.head.add_module("bn", nn.BatchNorm1d(embedding_dim))

    def _trunk(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        aux = None
        for name in _TRUNK:
            x = getattr(self.backbone, name)(x)
            if with_aux and name == _AUX_AFTER:
                aux = self.backbone.AuxLogits(x)
        return x, aux

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._trunk(x, with_aux=False)[0]

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Main embedding and, in training mode with ``aux_logits=True``, the auxiliary one (else None).

        Returns:
            ((B, 128), (B, 128) or None), both L2-normalised.
        """
        self.check_input(x)
        feats, aux = self._trunk(x, with_aux=self.aux_logits and self.training)
        emb = self.forward_head(feats)
        if aux is not None:
            aux = nn.functional.normalize(aux, dim=1)
        return emb, aux


def load_torchvision_inception(model: InceptionV3Embedder, path: str | Path) -> dict[str, Any]:
    """Load a torchvision-format ``inception_v3`` state dict into the trunk of ``model``.

    Strict about the trunk: every trunk tensor must be in the file with the right shape, and the file may
    hold nothing else except the classifier (``fc.*``, replaced by our head) and the auxiliary head
    (``AuxLogits.*``; only its last layer is skipped when the model has one). BN ``num_batches_tracked``
    counters may be absent (old files).

    Returns:
        ``{"path", "loaded": int, "ignored": [keys]}``.

    Raises:
        ModelError: unreadable file, or missing / unexpected / mis-shaped keys (listed).
    """
    from iznet.utils.checkpoint import safe_load

    path = Path(path)
    obj = safe_load(path, "inception_v3 weights file", ModelError,
                    "pass the path of a local torchvision inception_v3 state dict (.pth)")
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path} holds no state dict (expected a dict of tensors in torchvision's format)")
    state = {k.removeprefix("module."): v for k, v in state.items()}

    def skipped(k: str) -> bool:
        if k.startswith("fc.") or k.startswith("AuxLogits.fc."):
            return True
        return k.startswith("AuxLogits.") and not model.aux_logits

    own = {k: v for k, v in model.backbone.state_dict().items() if not k.startswith("AuxLogits.fc.")}
    ignored = sorted(k for k in state if skipped(k))
    usable = {k: v for k, v in state.items() if not skipped(k)}
    missing = sorted(k for k in own if k not in usable and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in usable if k not in own)
    mismatched = sorted(f"{k} {tuple(usable[k].shape)} vs {tuple(own[k].shape)}"
                        for k in usable if k in own and usable[k].shape != own[k].shape)
    if missing or unexpected or mismatched:
        raise ModelError(f"{path} is not a torchvision inception_v3 state dict that fits this model: "
                         + describe_key_problems(missing, unexpected, mismatched))
    model.backbone.load_state_dict(usable, strict=False)
    _logger.info("inception_v3: loaded %d trunk tensors from %s; ignored %d (%s)", len(usable), path,
                 len(ignored), ", ".join(ignored[:4]) + (" ..." if len(ignored) > 4 else ""))
    return {"path": str(path), "loaded": len(usable), "ignored": ignored}


@register_model
def inception_v3(pretrained: bool = False, weights_path: str | Path | None = None, **kw) -> InceptionV3Embedder:
    """InceptionV3 (torchvision architecture) at 299x299 with a 128-d embedding head.

    ``pretrained=True`` needs ``weights_path``: iznet never downloads weights.
    """
    if pretrained and weights_path is None:
        raise ModelError("no weights can be downloaded for inception_v3: iznet never downloads anything. "
                         "Pass a local torchvision state dict: create_model('inception_v3', "
                         "weights_path='inception_v3_google-0cc3c7bd.pth')")
    if weights_path is not None:
        kw.setdefault("init_weights", False)  # the trunk is overwritten; skip the slow truncated-normal init
    model = InceptionV3Embedder(**kw)
    if weights_path is not None:
        model.load_report = load_torchvision_inception(model, weights_path)
    return model
