"""The NN2 family: FaceNet's Inception networks (Table 2 and section 4).

- ``nn2``: Table 2 at 224x224 (7.5M parameters, 1.6B multiply-adds in the paper).
- ``nn3``: identical to NN2, input 160x160.
- ``nn4``: input 96x96 and no 5x5 branch in modules 5a and 5b. The paper only says NN4 "does not use 5x5
  convolutions in the higher layers as the receptive field is already too small"; at 96 px the map entering
  5a/5b is 3x3, smaller than a 5x5 kernel, while 4e's stride-2 5x5 still sees a 6x6 map. OpenFace's nn4
  reads the paper the same way.
- ``nn4_small``: ours, not FaceNet's: NN4 with every width halved (``width=0.5``), about a quarter of the
  parameters, so shipped weights stay a few MB.

Ours, not the paper's: batch norm after every convolution (``bn=True``, the default). The two LRN
("norm") layers of the stem follow ``bn``: present without batch norm (the paper's network), left out with
it by default, where they are nearly the identity (BN keeps activations O(1), so the LRN divisor
``(1 + 2e-5 * sum of 5 squares) ** 0.75`` stays within about 1e-4 of 1) but cost time (15% of an NN2
training step on a CPU, docs/models.md). ``lrn=True`` puts them back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from iznet.errors import ModelError
from iznet.models.base import EmbeddingNet
from iznet.models.layers import ConvBNReLU, DepthwisePool2d, L2Pool2d, init_weights, local_response_norm
from iznet.models.registry import register_model


@dataclass(frozen=True)
class InceptionSpec:
    """One row of Table 2. Widths are channel counts; 0 means the branch is absent.

    ``pool`` is "max" or "l2"; ``proj`` the 1x1 projection after the pooling (0: pass the input channels
    through, as in the stride-2 modules 3c and 4e); ``stride`` 2 for 3c and 4e.
    """

    name: str
    n1x1: int
    n3red: int
    n3: int
    n5red: int
    n5: int
    pool: str
    proj: int
    stride: int = 1


# Table 2 of FaceNet, row by row.
NN2_MODULES: tuple[InceptionSpec, ...] = (
    InceptionSpec("3a", 64, 96, 128, 16, 32, "max", 32),
    InceptionSpec("3b", 64, 96, 128, 32, 64, "l2", 64),
    InceptionSpec("3c", 0, 128, 256, 32, 64, "max", 0, stride=2),
    InceptionSpec("4a", 256, 96, 192, 32, 64, "l2", 128),
    InceptionSpec("4b", 224, 112, 224, 32, 64, "l2", 128),
    InceptionSpec("4c", 192, 128, 256, 32, 64, "l2", 128),
    InceptionSpec("4d", 160, 144, 288, 32, 64, "l2", 128),
    InceptionSpec("4e", 0, 160, 256, 64, 128, "max", 0, stride=2),
    InceptionSpec("5a", 384, 192, 384, 48, 128, "l2", 128),
    InceptionSpec("5b", 384, 192, 384, 48, 128, "max", 128),
)

# Modules that lose their 5x5 branch in NN4 (see the module docstring).
NN4_NO_5X5 = ("5a", "5b")


def _scale(c: int, width: float) -> int:
    return 0 if c == 0 else max(1, int(round(c * width)))


class InceptionModule(nn.Module):
    """An Inception module of Table 2: 1x1, 1x1->3x3, 1x1->5x5 and pool(->1x1) branches, concatenated.

    Args:
        in_channels: input channels.
        spec: the row of the table (widths already scaled).
        bn: batch norm after each convolution.

    Shapes:
        (B, in_channels, H, W) -> (B, out_channels, H/stride, W/stride) (rounded up).
    """

    def __init__(self, in_channels: int, spec: InceptionSpec, bn: bool = True):
        super().__init__()
        s = spec.stride
        if spec.n3red == 0 or spec.n3 == 0:
            raise ModelError(f"inception {spec.name}: the 3x3 branch is required")
        out = 0
        if spec.n1x1:
            if s != 1:
                raise ModelError(f"inception {spec.name}: a stride-2 module has no 1x1 branch")
            self.branch1x1 = ConvBNReLU(in_channels, spec.n1x1, 1, bn=bn)
            out += spec.n1x1
        else:
            self.branch1x1 = None
        self.branch3x3 = nn.Sequential(ConvBNReLU(in_channels, spec.n3red, 1, bn=bn),
                                       ConvBNReLU(spec.n3red, spec.n3, 3, stride=s, bn=bn))
        out += spec.n3
        if spec.n5:
            self.branch5x5 = nn.Sequential(ConvBNReLU(in_channels, spec.n5red, 1, bn=bn),
                                           ConvBNReLU(spec.n5red, spec.n5, 5, stride=s, bn=bn))
            out += spec.n5
        else:
            self.branch5x5 = None
        if spec.pool == "max":
            pool: nn.Module = nn.MaxPool2d(3, stride=s, padding=1)
        elif spec.pool == "l2":
            pool = L2Pool2d(3, stride=s, padding=1)
        else:
            raise ModelError(f"inception {spec.name}: pool must be 'max' or 'l2', got {spec.pool!r}")
        if spec.proj:
            self.branch_pool = nn.Sequential(pool, ConvBNReLU(in_channels, spec.proj, 1, bn=bn))
            out += spec.proj
        else:
            self.branch_pool = nn.Sequential(pool)  # pass-through of the input channels
            out += in_channels
        self.out_channels = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        if self.branch1x1 is not None:
            outs.append(self.branch1x1(x))
        outs.append(self.branch3x3(x))
        if self.branch5x5 is not None:
            outs.append(self.branch5x5(x))
        outs.append(self.branch_pool(x))
        return torch.cat(outs, dim=1)


HEADS = ("avg", "gdc")
"""The embedding heads of the NN2 family (``NN2(head=...)``, ``iznet train --head``)."""


def feature_side(input_size: int) -> int:
    """Side of the trunk's output map for a square input: five stride-2 stages with "same" padding halve it,
    rounding up, five times (112 -> 4, 96 -> 3, 224 -> 7)."""
    side = input_size
    for _ in range(5):
        side = (side + 1) // 2
    return side


class NN2(EmbeddingNet):
    """FaceNet NN2 (Table 2) and its variants.

    Args:
        input_size: square input side (224 for NN2, 160 for NN3, 96 for NN4); any side >= 32 works
            with the average-pool head; the ``gdc`` head takes only this side.
        width: multiplier on every channel count (1.0 = the paper; ``nn4_small`` uses 0.5).
        no_5x5: names of modules whose 5x5 branch is removed (NN4: "5a", "5b").
        bn: batch norm after each convolution (ours; FaceNet used none).
        lrn: the two LRN "norm" layers of the stem; ``None`` (default) means ``not bn``.
        embedding_dim: embedding size (128).
        head: how the trunk's map becomes a vector: ``avg`` (global average pool, FaceNet's) or ``gdc``
            (a learned weight per channel and position, :class:`~iznet.models.layers.DepthwisePool2d`;
            it starts equal to ``avg``).

    Shapes:
        (B, 3, S, S) -> forward_features (B, C, ceil(S/32), ceil(S/32)) (C = 1024 for NN2, 896 for NN4)
        -> forward (B, 128), L2-normalised.
    """

    def __init__(self, input_size: int = 224, width: float = 1.0, no_5x5: tuple[str, ...] | list[str] = (),
                 bn: bool = True, lrn: bool | None = None, embedding_dim: int = 128, head: str = "avg"):
        super().__init__()
        lrn = (not bn) if lrn is None else lrn
        if not width > 0:
            raise ModelError(f"width must be > 0, got {width}")
        if input_size < 32:
            raise ModelError(f"input_size must be at least 32 px, got {input_size}")
        if head not in HEADS:
            raise ModelError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
        known = {m.name for m in NN2_MODULES}
        bad = set(no_5x5) - known
        if bad:
            raise ModelError(f"no_5x5 names unknown modules {sorted(bad)}; known: {sorted(known)}")
        self.input_size = input_size
        self.embedding_dim = embedding_dim
        self.width = width
        self.no_5x5 = tuple(no_5x5)
        self.lrn = lrn
        self.head_kind = head

        c1, c2red, c2 = _scale(64, width), _scale(64, width), _scale(192, width)
        self.features = nn.Sequential()
        f = self.features
        f.add_module("conv1", ConvBNReLU(3, c1, 7, stride=2, padding=3, bn=bn))
        f.add_module("pool1", nn.MaxPool2d(3, stride=2, padding=1))
        f.add_module("norm1", local_response_norm(lrn))
        f.add_module("inception_2", nn.Sequential(ConvBNReLU(c1, c2red, 1, bn=bn), ConvBNReLU(c2red, c2, 3, bn=bn)))
        f.add_module("norm2", local_response_norm(lrn))
        f.add_module("pool2", nn.MaxPool2d(3, stride=2, padding=1))
        ch = c2
        for row in NN2_MODULES:
            drop5 = row.name in self.no_5x5
            spec = InceptionSpec(row.name, _scale(row.n1x1, width), _scale(row.n3red, width), _scale(row.n3, width),
                                 0 if drop5 else _scale(row.n5red, width), 0 if drop5 else _scale(row.n5, width),
                                 row.pool, _scale(row.proj, width), row.stride)
            block = InceptionModule(ch, spec, bn=bn)
            f.add_module(f"inception_{row.name}", block)
            ch = block.out_channels
        self.num_features = ch

        self.head = nn.Sequential()
        side = feature_side(input_size)
        self.head.add_module("pool", nn.AdaptiveAvgPool2d(1) if head == "avg" else DepthwisePool2d(ch, side))
        self.head.add_module("flatten", nn.Flatten(1))
        self.head.add_module("fc", nn.Linear(ch, embedding_dim))
        if bn:
            # BN before the L2 norm keeps a fresh network's embeddings spread over the sphere; without it
            # they start nearly equal and batch-hard training collapsed (mean distance 0.93 -> 0.26 in 10
            # steps, docs/models.md).
            self.head.add_module("bn", nn.BatchNorm1d(embedding_dim))
        init_weights(self)
        if head == "gdc":
            self.head.pool.reset_parameters()  # the average pool to start with

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


@register_model
def nn2(**kw) -> NN2:
    """FaceNet NN2 (Table 2) at 224x224, batch norm added by default."""
    kw.setdefault("input_size", 224)
    return NN2(**kw)


@register_model
def nn3(**kw) -> NN2:
    """FaceNet NN3: NN2 at 160x160."""
    kw.setdefault("input_size", 160)
    return NN2(**kw)


@register_model
def nn4(**kw) -> NN2:
    """FaceNet NN4: NN2 at 96x96 without the 5x5 branches of modules 5a and 5b."""
    kw.setdefault("input_size", 96)
    kw.setdefault("no_5x5", NN4_NO_5X5)
    return NN2(**kw)


@register_model
def nn4_small(**kw) -> NN2:
    """Ours, not FaceNet's: NN4 with every width halved (``width=0.5``), for small shipped weights."""
    kw.setdefault("input_size", 96)
    kw.setdefault("no_5x5", NN4_NO_5X5)
    kw.setdefault("width", 0.5)
    return NN2(**kw)
