"""The contract every embedding network follows."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from iznet.errors import ModelError


class EmbeddingNet(nn.Module):
    """Base class: a trunk (``forward_features``) and an embedding head (``forward_head``).

    Subclasses set ``self.input_size`` and ``self.head`` (a module mapping the trunk's feature map to an
    unnormalised ``embedding_dim`` vector) and implement :meth:`forward_features`.

    Attributes:
        input_size: native square input side in pixels.
        embedding_dim: size of the embedding (128).
        num_features: channels of the trunk's output feature map.
    """

    input_size: int
    embedding_dim: int = 128
    num_features: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Trunk: (B, 3, S, S) normalised images -> (B, num_features, h, w) feature map."""
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Head: feature map -> (B, embedding_dim), L2-normalised unless ``normalize=False``."""
        e = self.head(features)
        return F.normalize(e, p=2.0, dim=1) if normalize else e

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float, normalised as ``(x_uint8 / 255 - 0.5) / 0.5`` -> (B, 128) unit vectors."""
        self.check_input(x)
        return self.forward_head(self.forward_features(x))

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ModelError for an input that is not a (B, 3, H, W) floating tensor."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ModelError(f"{type(self).__name__} expects a (B, 3, H, W) batch, got shape {tuple(x.shape)}; "
                             "use iznet.models.preprocess(images_uint8, size) to make one")
        if not x.is_floating_point():
            raise ModelError(f"{type(self).__name__} expects a float tensor, got {x.dtype}; "
                             "use iznet.models.preprocess(images_uint8, size) to convert uint8 images")
