"""YOLO-style face detector: a stride-32 backbone, a convolutional head, an S×S×B×5 output.

The grid follows the input: S = image_size / 32 (416 → 13, the write-up's; 128 → 4). The head ends in a
1×1 convolution with B × 5 channels per cell (``conf, x, y, w, h`` raw; see :mod:`iznet.detect.loss`).

With ``landmarks=True`` a landmark branch (a 5×5 depthwise and a 1×1 convolution without batch norm on the
head's features, then a 1×1 convolution with B × 10 channels) adds five points per predictor, and the output is S×S×B×15: the five box
channels first, then ``u1, v1, …, u5, v5`` (eyes, nose tip, mouth corners; see
:mod:`iznet.detect.landmarks` for the encoding). Every box consumer reads the first five channels only.

Backbones (registry, :func:`create_detector`):

- ``darknet53``: YOLOv3's Darknet-53 (Redmon & Farhadi 2018, Table 1), the write-up's choice: 52
  convolutions with BN and LeakyReLU 0.1, residual blocks ×1, 2, 8, 8, 4; 40.6M parameters in the trunk, 51M with the head.
- ``light``: our CPU model, a MobileNet-like stack of depthwise-separable blocks (3×3 or 5×5 depthwise,
  1×1 pointwise, BN, ReLU6) at widths 16-32-64-128-256; about 0.39M parameters, 1.6 MB in float32.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from iznet.detect.settings import STRIDE
from iznet.detect.targets import DEFAULT_ANCHORS
from iznet.errors import ModelError


_REGISTRY: dict[str, Callable[..., "YoloDetector"]] = {}


def register_detector(fn: Callable[..., "YoloDetector"]) -> Callable[..., "YoloDetector"]:
    """Decorator: register a builder ``fn(**kwargs) -> YoloDetector`` under its function name."""
    _REGISTRY[fn.__name__] = fn
    return fn


def list_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`, sorted."""
    return sorted(_REGISTRY)


def create_detector(name: str, **kwargs) -> "YoloDetector":
    """Build a detector by registry name.

    Args:
        name: ``"light"`` or ``"darknet53"`` (see :func:`list_detectors`).
        **kwargs: ``image_size`` (multiple of 32, default 416), ``anchors`` (default 1:1 and 1:1.15), and
            backbone options (``width`` for ``light``).

    Raises:
        ModelError: unknown name or bad options.

    Example:
        >>> m = create_detector("light", image_size=128)
        >>> m(torch.zeros(1, 3, 128, 128)).shape
        torch.Size([1, 4, 4, 2, 5])
    """
    if name not in _REGISTRY:
        raise ModelError(f"unknown detector {name!r}; choose one of {', '.join(list_detectors())}")
    try:
        return _REGISTRY[name](**kwargs)
    except TypeError as e:
        raise ModelError(f"bad options for detector {name!r}: {e}") from None


def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, act: str = "leaky") -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out)]
    if act == "leaky":
        layers.append(nn.LeakyReLU(0.1, inplace=True))
    elif act == "relu6":
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class DarkResidual(nn.Module):
    """Darknet-53 residual block: 1×1 to half the channels, 3×3 back, plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(channels, channels // 2, 1), _conv_bn(channels // 2, channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Darknet53(nn.Module):
    """Darknet-53 without its classifier: (N, 3, H, W) → (N, 1024, H/32, W/32)."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = [_conv_bn(3, 32, 3)]
        c = 32
        for blocks in (1, 2, 8, 8, 4):
            layers.append(_conv_bn(c, c * 2, 3, stride=2))
            c *= 2
            layers += [DarkResidual(c) for _ in range(blocks)]
        self.layers = nn.Sequential(*layers)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SeparableBlock(nn.Module):
    """Depthwise k×k (stride s) + pointwise 1×1, each with BN and ReLU6; residual when shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, k: int = 3):
        super().__init__()
        self.dw = _conv_bn(c_in, c_in, k, stride, groups=c_in, act="relu6")
        self.pw = _conv_bn(c_in, c_out, 1, act="relu6")
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        return x + y if self.residual else y


class LightBackbone(nn.Module):
    """Depthwise-separable stack, stride 32: (N, 3, H, W) → (N, 8·width, H/32, W/32).

    Args:
        width: channels after the stem (16 gives 16-32-64-128-256).
    """

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        # (out channels, stride, depthwise kernel)
        plan = [(2 * w, 2, 3), (2 * w, 1, 3),
                (4 * w, 2, 3), (4 * w, 1, 3),
                (8 * w, 2, 5), (8 * w, 1, 5), (8 * w, 1, 5),
                (16 * w, 2, 5), (16 * w, 1, 5), (16 * w, 1, 5)]
        layers: list[nn.Module] = [_conv_bn(3, w, 3, stride=2, act="relu6")]
        c = w
        for c_out, s, k in plan:
            layers.append(SeparableBlock(c, c_out, s, k))
            c = c_out
        self.layers = nn.Sequential(*layers)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class YoloDetector(nn.Module):
    """Backbone + head → raw (N, S, S, B, 5).

    Args:
        backbone: module mapping (N, 3, H, W) to (N, C, H/32, W/32), with ``out_channels`` = C.
        head: module mapping (N, C, S, S) to (N, C', S, S), with ``out_channels`` = C'.
        image_size: side of the square input (multiple of 32).
        anchors: B aspect ratios ``(w, h)``.
        landmarks: add the landmark branch (output S×S×B×15 instead of S×S×B×5).
        refiner: also hold a second landmark stage (:class:`iznet.detect.refine.LandmarkRefiner`, run by
            :class:`iznet.detect.detector.YoloFaceDetector` on each face after detection; needs ``landmarks``).

    Inputs are RGB floats in [0, 1], shape (N, 3, image_size, image_size); the model normalises them.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, image_size: int = 416,
                 anchors: Sequence[tuple[float, float]] = DEFAULT_ANCHORS, landmarks: bool = False,
                 refiner: bool = False):
        super().__init__()
        if refiner and not landmarks:
            raise ModelError("a landmark refiner needs the landmark branch (landmarks=True)")
        if image_size % STRIDE or image_size < STRIDE:
            raise ModelError(f"image_size must be a positive multiple of {STRIDE}, got {image_size}")
        self.image_size = int(image_size)
        self.grid = image_size // STRIDE
        self.anchors = tuple((float(a), float(b)) for a, b in anchors)
        self.backbone = backbone
        self.head = head
        self.pred = nn.Conv2d(head.out_channels, len(self.anchors) * 5, 1)
        with torch.no_grad():  # start with confidences near 0.02: most cells hold no face
            bias = self.pred.bias.view(len(self.anchors), 5)
            bias.zero_()
            bias[:, 0] = -4.0
            bias[:, 3:] = 0.25  # √w = 0.25: a face a sixteenth of the image wide
        self.landmarks = bool(landmarks)
        self.landmark_branch: nn.Module | None = None
        if self.landmarks:
            c = head.out_channels
            # no batch norm: the branch is trained on a frozen detector with small batches, and must behave
            # the same in training and inference
            self.landmark_branch = nn.Sequential(nn.Conv2d(c, c, 5, padding=2, groups=c), nn.ReLU6(),
                                                 nn.Conv2d(c, c, 1), nn.ReLU6(),
                                                 nn.Conv2d(c, len(self.anchors) * 10, 1))
        self.landmark_refiner: nn.Module | None = None
        if refiner:
            from iznet.detect.refine import LandmarkRefiner

            self.landmark_refiner = LandmarkRefiner()

    @property
    def channels(self) -> int:
        """Channels per predictor of the output: 5, or 15 with landmarks."""
        return 15 if self.landmarks else 5

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] → the head's features (N, C, H/32, W/32)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) images, got {tuple(x.shape)}")
        return self.head(self.backbone((x - 0.45) / 0.25))

    def outputs(self, features: torch.Tensor, box_only: bool = False) -> torch.Tensor:
        """Head features → raw (N, S, S, B, 5) boxes, or (N, S, S, B, 15) with landmarks."""
        y = self.pred(features)
        if self.landmark_branch is not None and not box_only:
            y = torch.cat([y.view(y.shape[0], len(self.anchors), 5, *y.shape[2:]),
                           self.landmark_branch(features).view(y.shape[0], len(self.anchors), 10, *y.shape[2:])],
                          dim=2)
        n, s_h, s_w = y.shape[0], y.shape[-2], y.shape[-1]
        return y.view(n, len(self.anchors), -1, s_h, s_w).permute(0, 3, 4, 1, 2).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] → raw (N, H/32, W/32, B, 5), or (…, 15) with landmarks."""
        return self.outputs(self.features(x))


class _Head(nn.Sequential):
    def __init__(self, *layers: nn.Module, out_channels: int):
        super().__init__(*layers)
        self.out_channels = out_channels


@register_detector
def darknet53(image_size: int = 416, anchors: Sequence[tuple[float, float]] = DEFAULT_ANCHORS,
              landmarks: bool = False, refiner: bool = False) -> YoloDetector:
    """Darknet-53 backbone and a YOLOv3-style head (1×1 512, 3×3 1024, 1×1 512, 3×3 1024)."""
    bb = Darknet53()
    head = _Head(_conv_bn(bb.out_channels, 512, 1), _conv_bn(512, 1024, 3),
                 _conv_bn(1024, 512, 1), _conv_bn(512, 1024, 3), out_channels=1024)
    return YoloDetector(bb, head, image_size, anchors, landmarks, refiner)


@register_detector
def light(image_size: int = 416, anchors: Sequence[tuple[float, float]] = DEFAULT_ANCHORS,
          width: int = 16, landmarks: bool = False, refiner: bool = False) -> YoloDetector:
    """:class:`LightBackbone` and two more 5×5 separable blocks as the head."""
    bb = LightBackbone(width)
    c = bb.out_channels
    head = _Head(SeparableBlock(c, c, 1, 5), SeparableBlock(c, c, 1, 5), out_channels=c)
    return YoloDetector(bb, head, image_size, anchors, landmarks, refiner)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
