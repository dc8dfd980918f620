"""NN1: FaceNet's Zeiler&Fergus-style network with 1x1 "a" layers (FaceNet Table 1), input 220x220.

Layer by layer as in Table 1: conv1 7x7/2, max pool, LRN, conv2a 1x1, conv2 3x3, LRN, max pool, conv3a,
conv3, max pool, conv4a, conv4, conv5a, conv5, conv6a, conv6, max pool (220 -> 110 -> 55 -> 28 -> 14 -> 7),
then fc1 and fc2 as maxout with p=2 (12544 -> 2x4096 -> 4096, 4096 -> 2x4096 -> 4096), fc7128 and L2.
About 140M parameters (fc1 alone is 103M) and 1.6B multiply-adds per image.

Ours, not the paper's: batch norm after each convolution (``bn=True``, the default; FaceNet used none).
With batch norm the two LRN layers are left out by default (``lrn=None`` means ``not bn``): they are nearly
the identity on BN-scaled activations and slow; ``lrn=True`` keeps them (see :mod:`iznet.models.nn2`).
"""

from __future__ import annotations

import torch
from torch import nn

from iznet.errors import ModelError
from iznet.models.base import EmbeddingNet
from iznet.models.layers import ConvBNReLU, Maxout, init_weights, local_response_norm
from iznet.models.registry import register_model

_MIN_INPUT = 33  # smallest side that leaves a 2x2 map for fc1


def _nn1_map_size(size: int) -> int:
    """Side of the map entering fc1: conv1 (7x7/2, pad 3) and four 3x3/2 pools (pad 1) each give ceil(s/2)."""
    for _ in range(5):
        size = (size + 1) // 2
    return size


class NN1(EmbeddingNet):
    """FaceNet NN1 (Table 1).

    Args:
        input_size: square input side (native 220). fc1 is sized for the map this side gives: 7x7 for
            193..224 px as in Table 1; a smaller side (e.g. 96 px -> 3x3, for CPU experiments) gives a
            smaller fc1 and is no longer the paper's network.
        bn: batch norm after every convolution (ours; FaceNet used none).
        lrn: the two local response normalisation layers (rnorm1, rnorm2) of the table; ``None`` (default)
            means ``not bn``.
        embedding_dim: embedding size (128).

    Shapes:
        (B, 3, S, S) -> forward_features (B, 256, 7, 7) -> forward (B, 128), L2-normalised.
    """

    def __init__(self, input_size: int = 220, bn: bool = True, lrn: bool | None = None, embedding_dim: int = 128):
        super().__init__()
        lrn = (not bn) if lrn is None else lrn
        if input_size < _MIN_INPUT:
            raise ModelError(f"nn1 cannot take input_size={input_size}: it needs at least {_MIN_INPUT} px "
                             "(native 220) to leave a map for fc1")
        self.input_size = input_size
        self.map_size = _nn1_map_size(input_size)
        self.embedding_dim = embedding_dim
        self.num_features = 256
        self.lrn = lrn

        def pool() -> nn.MaxPool2d:
            return nn.MaxPool2d(3, stride=2, padding=1)

        self.features = nn.Sequential()
        f = self.features
        f.add_module("conv1", ConvBNReLU(3, 64, 7, stride=2, padding=3, bn=bn))
        f.add_module("pool1", pool())
        f.add_module("rnorm1", local_response_norm(lrn))
        f.add_module("conv2a", ConvBNReLU(64, 64, 1, bn=bn))
        f.add_module("conv2", ConvBNReLU(64, 192, 3, bn=bn))
        f.add_module("rnorm2", local_response_norm(lrn))
        f.add_module("pool2", pool())
        f.add_module("conv3a", ConvBNReLU(192, 192, 1, bn=bn))
        f.add_module("conv3", ConvBNReLU(192, 384, 3, bn=bn))
        f.add_module("pool3", pool())
        f.add_module("conv4a", ConvBNReLU(384, 384, 1, bn=bn))
        f.add_module("conv4", ConvBNReLU(384, 256, 3, bn=bn))
        f.add_module("conv5a", ConvBNReLU(256, 256, 1, bn=bn))
        f.add_module("conv5", ConvBNReLU(256, 256, 3, bn=bn))
        f.add_module("conv6a", ConvBNReLU(256, 256, 1, bn=bn))
        f.add_module("conv6", ConvBNReLU(256, 256, 3, bn=bn))
        f.add_module("pool4", pool())

        flat = 256 * self.map_size * self.map_size  # 12,544 at 193..224 px
        self.head = nn.Sequential()
        self.head.add_module("flatten", nn.Flatten(1))
        self.head.add_module("fc1", Maxout(flat, 4096, pieces=2))
        self.head.add_module("fc2", Maxout(4096, 4096, pieces=2))
        self.head.add_module("fc7128", nn.Linear(4096, embedding_dim))
        if bn:
            self.head.add_module("bn", nn.BatchNorm1d(embedding_dim))  # as in NN2: spread at the start
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def check_input(self, x: torch.Tensor) -> None:
        super().check_input(x)
        h, w = x.shape[-2:]
        if _nn1_map_size(h) != self.map_size or _nn1_map_size(w) != self.map_size:
            lo, hi = _side_range(self.map_size)
            raise ModelError(f"this nn1 was built for {self.input_size} px ({lo}..{hi} px fit its fc1), "
                             f"got {h}x{w}; resize with iznet.models.preprocess(images, {self.input_size})")


def _side_range(map_size: int) -> tuple[int, int]:
    """Input sides whose map entering fc1 is ``map_size`` x ``map_size``."""
    sides = [s for s in range(_MIN_INPUT, 32 * map_size + 1) if _nn1_map_size(s) == map_size]
    return min(sides), max(sides)


@register_model
def nn1(**kw) -> NN1:
    """FaceNet NN1 at 220x220 (Table 1), batch norm added by default."""
    return NN1(**kw)
