"""Building blocks shared by the embedding networks: Maxout, L2 pooling, depthwise pooling, LRN, Conv-BN-ReLU."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Maxout(nn.Module):
    """A linear layer to ``out_features * pieces`` units, then the max over each group of ``pieces``.

    Goodfellow et al. 2013; FaceNet's NN1 uses ``pieces=2`` for fc1 and fc2. Output unit ``i`` is the max
    of linear units ``i*pieces ... i*pieces + pieces - 1`` (adjacent units form a group).

    Args:
        in_features: size of the input.
        out_features: number of output units (after the max).
        pieces: units per group (p in the paper).

    Shapes:
        input (B, in_features) -> output (B, out_features).
    """

    def __init__(self, in_features: int, out_features: int, pieces: int = 2):
        super().__init__()
        if pieces < 1:
            raise ValueError(f"Maxout pieces must be >= 1, got {pieces}")
        self.out_features = out_features
        self.pieces = pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        return y.view(*y.shape[:-1], self.out_features, self.pieces).amax(dim=-1)

    def extra_repr(self) -> str:
        return f"out_features={self.out_features}, pieces={self.pieces}"


class L2Pool2d(nn.Module):
    """L2 pooling: the square root of the sum of squares over each window.

    ``y = sqrt(sum_window x**2 + eps)``. Zero padding adds nothing to the sum. The ``eps`` keeps the
    gradient finite where a whole window is zero (d sqrt(s)/ds is infinite at s = 0; with eps the
    gradient there is 0 because d(x**2)/dx = 0).

    Args:
        kernel_size: window side.
        stride: step (defaults to 1, as in the Inception modules of FaceNet's NN2).
        padding: zero padding on each side.
        eps: added under the square root.

    Shapes:
        (B, C, H, W) -> (B, C, H', W') with the usual pooling arithmetic.
    """

    def __init__(self, kernel_size: int = 3, stride: int = 1, padding: int = 0, eps: float = 1e-6):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        # avg_pool with count_include_pad=True divides by k*k everywhere, so multiplying back gives the sum.
        mean_sq = F.avg_pool2d(x * x, k, self.stride, self.padding, count_include_pad=True)
        return torch.sqrt(mean_sq * (k * k) + self.eps)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, eps={self.eps}"


class DepthwisePool2d(nn.Module):
    """Global depthwise convolution (MobileFaceNet's "GDConv"): a learned weight per channel and position.

    ``y[b, c] = sum_ij w[c, i, j] * x[b, c, i, j]`` over a map of exactly ``side x side``. A global average
    pool weighs every position of a face the same; on aligned faces the eyes, nose and mouth sit at fixed
    places, and this layer can weigh them apart. It starts as the average pool (every weight
    ``1 / side**2``), so a network trained with the average pool keeps its function when its head is
    swapped for this one (``iznet train --head gdc --init``).

    Args:
        channels: channels of the feature map.
        side: the feature map's side (fixed: the layer is tied to the network's input size).

    Shapes:
        (B, channels, side, side) -> (B, channels, 1, 1).
    """

    def __init__(self, channels: int, side: int):
        super().__init__()
        if channels < 1 or side < 1:
            raise ValueError(f"DepthwisePool2d needs channels >= 1 and side >= 1, got {channels}, {side}")
        self.channels = channels
        self.side = side
        self.weight = nn.Parameter(torch.empty(channels, 1, side, side))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight ``1 / side**2``: the global average pool."""
        nn.init.constant_(self.weight, 1.0 / (self.side * self.side))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels or x.shape[2] != self.side or x.shape[3] != self.side:
            from iznet.errors import ModelError

            raise ModelError(f"the depthwise pooling head expects ({self.channels}, {self.side}, {self.side}) "
                             f"feature maps, got {tuple(x.shape[1:])}: the network takes only its own "
                             "input size (model.input_size)")
        return F.conv2d(x, self.weight.to(x.dtype), groups=self.channels)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, side={self.side}"


def local_response_norm(enabled: bool = True) -> nn.Module:
    """Cross-channel local response normalisation as in GoogLeNet / Caffe (size 5, alpha 1e-4, beta 0.75, k 1).

    PyTorch's ``LocalResponseNorm`` divides ``alpha`` by the window size, like Caffe. Returns
    ``nn.Identity()`` when ``enabled`` is False.
    """
    if not enabled:
        return nn.Identity()
    return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=1.0)


class ConvBNReLU(nn.Sequential):
    """Conv2d -> BatchNorm2d (optional) -> ReLU.

    With ``bn=True`` the convolution has no bias (the BN shift replaces it); with ``bn=False`` it has one,
    as in FaceNet's original networks.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel side.
        stride: convolution stride.
        padding: zero padding; ``None`` means ``kernel_size // 2`` ("same" at stride 1).
        bn: add batch norm after the convolution.

    Shapes:
        (B, in_channels, H, W) -> (B, out_channels, H', W').
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | None = None, bn: bool = True):
        if padding is None:
            padding = kernel_size // 2
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=not bn)
        self.bn = nn.BatchNorm2d(out_channels) if bn else nn.Identity()
        self.act = nn.ReLU(inplace=True)


def init_weights(module: nn.Module) -> None:
    """He-normal init for convolutions (ReLU nets), unit/zero for norms, small normal for linear layers."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, a=5 ** 0.5)  # PyTorch's default, kept explicit
            if m.bias is not None:
                nn.init.zeros_(m.bias)
