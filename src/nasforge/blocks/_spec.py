"""Specs: frozen, hashable descriptions of layers and blocks with two views of the same computation.

``spec.emit(g, x)`` appends the block's layers to a ``GraphBuilder`` (the analytic cost, no torch) and
``spec.build()`` returns the ``nn.Module`` that runs them in the same order (so the traced cost of the
module equals the analytic cost). This module imports torch only inside ``build``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from nasforge.cost import Cost, GraphBuilder
from nasforge.cost._cost import Part, analyze, chain
from nasforge.cost._ir import Shape
from nasforge.errors import NasforgeError

if TYPE_CHECKING:
    from torch import nn

ACTS = ("relu", "relu6", "hswish", "silu", "sigmoid", "none")


@runtime_checkable
class Spec(Protocol):
    """Anything that can emit its layers into the IR and build its module."""

    def emit(self, g: GraphBuilder, x: int) -> int: ...

    def build(self) -> nn.Module: ...

    def __hash__(self) -> int: ...


def make_act(kind: str) -> nn.Module:
    """The module for an activation name (in place where PyTorch allows it)."""
    from torch import nn

    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "relu6":
        return nn.ReLU6(inplace=True)
    if kind == "hswish":
        return nn.Hardswish(inplace=True)
    if kind == "silu":
        return nn.SiLU(inplace=True)
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {kind!r}; allowed: {', '.join(ACTS)}")


def emit_act(g: GraphBuilder, x: int, kind: str, name: str = "act") -> int:
    return x if kind == "none" else g.act(x, kind, name=name)


@lru_cache(maxsize=65536)
def part_of(spec: Spec, in_shape: Shape) -> Part:
    """Totals of one spec on one input shape, cached: the fast analytic path of search spaces."""
    g = GraphBuilder(in_shape)
    spec.emit(g, 0)
    return Part.of(g.nodes)


def chain_cost(specs: Sequence[Spec], in_shape: Shape, precision: str = "fp32") -> Cost:
    """Cost of specs run in sequence, from cached per-spec parts (no per-layer rows)."""
    parts = []
    shape = in_shape
    for s in specs:
        p = part_of(s, shape)
        parts.append(p)
        shape = p.out_shape
    return chain(parts, precision)


# -- plain layers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conv:
    """A bare conv (with bias by default), e.g. AlexNet/VGG/SqueezeNet layers followed by ``Act``."""

    in_ch: int
    out_ch: int
    kernel: int
    stride: int = 1
    padding: int | None = None
    groups: int = 1
    bias: bool = True

    def emit(self, g: GraphBuilder, x: int) -> int:
        return g.conv2d(x, self.out_ch, self.kernel, self.stride, self.padding, self.groups, self.bias,
                        name="conv")

    def build(self) -> nn.Module:
        from torch import nn

        pad = (self.kernel - 1) // 2 if self.padding is None else self.padding
        return nn.Conv2d(self.in_ch, self.out_ch, self.kernel, self.stride, pad, groups=self.groups,
                         bias=self.bias)


@dataclass(frozen=True)
class Act:
    kind: str = "relu"

    def emit(self, g: GraphBuilder, x: int) -> int:
        return emit_act(g, x, self.kind)

    def build(self) -> nn.Module:
        return make_act(self.kind)


@dataclass(frozen=True)
class Pool:
    """Max or average pooling."""

    kind: str  # "max" | "avg"
    kernel: int
    stride: int | None = None
    padding: int = 0
    ceil_mode: bool = False

    def emit(self, g: GraphBuilder, x: int) -> int:
        op = "maxpool" if self.kind == "max" else "avgpool"
        return g.pool(x, op, self.kernel, self.stride, self.padding, self.ceil_mode, name="pool")

    def build(self) -> nn.Module:
        from torch import nn

        if self.kind == "max":
            return nn.MaxPool2d(self.kernel, self.stride, self.padding, ceil_mode=self.ceil_mode)
        return nn.AvgPool2d(self.kernel, self.stride, self.padding, ceil_mode=self.ceil_mode)


@dataclass(frozen=True)
class GlobalPool:
    """Adaptive average pooling to ``size`` x ``size``."""

    size: int = 1

    def emit(self, g: GraphBuilder, x: int) -> int:
        return g.global_avgpool(x, self.size, name="pool")

    def build(self) -> nn.Module:
        from torch import nn

        return nn.AdaptiveAvgPool2d(self.size)


@dataclass(frozen=True)
class Flatten:
    def emit(self, g: GraphBuilder, x: int) -> int:
        return g.flatten(x, name="flatten")

    def build(self) -> nn.Module:
        from torch import nn

        return nn.Flatten(1)


@dataclass(frozen=True)
class Dropout:
    p: float = 0.5

    def emit(self, g: GraphBuilder, x: int) -> int:
        return g.dropout(x, name="dropout")

    def build(self) -> nn.Module:
        from torch import nn

        return nn.Dropout(self.p)


@dataclass(frozen=True)
class Linear:
    in_features: int
    out_features: int
    bias: bool = True

    def emit(self, g: GraphBuilder, x: int) -> int:
        return g.linear(x, self.out_features, self.bias, name="fc")

    def build(self) -> nn.Module:
        from torch import nn

        return nn.Linear(self.in_features, self.out_features, self.bias)


# -- the basic block ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvBNAct:
    """Conv (no bias) + batch norm + activation: the unit most blocks are made of."""

    in_ch: int
    out_ch: int
    kernel: int = 3
    stride: int = 1
    groups: int = 1
    act: str = "relu"

    def emit(self, g: GraphBuilder, x: int) -> int:
        x = g.conv2d(x, self.out_ch, self.kernel, self.stride, None, self.groups, False, name="conv")
        x = g.batchnorm(x, name="bn")
        return emit_act(g, x, self.act)

    def build(self) -> nn.Module:
        from nasforge.blocks._modules import ConvBNActModule

        return ConvBNActModule(self)


# -- the network ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkSpec:
    """A network as stem + stages + head; downsampling happens in a stage's first block."""

    name: str
    input_shape: Shape
    stem: tuple[Spec, ...]
    stages: tuple[tuple[Spec, ...], ...]
    head: tuple[Spec, ...]

    def specs(self) -> tuple[Spec, ...]:
        return (*self.stem, *(b for st in self.stages for b in st), *self.head)

    def emit(self, g: GraphBuilder, x: int) -> int:
        for i, s in enumerate(self.stem):
            with g.scope(f"stem.{i}"):
                x = s.emit(g, x)
        for i, st in enumerate(self.stages):
            for j, b in enumerate(st):
                with g.scope(f"stages.{i}.{j}"):
                    x = b.emit(g, x)
        for i, s in enumerate(self.head):
            with g.scope(f"head.{i}"):
                x = s.emit(g, x)
        return x

    def cost(self, precision: str = "fp32", layers: bool = False) -> Cost:
        """Analytic cost; ``layers=True`` adds the per-layer rows (slower, for display)."""
        if layers:
            g = GraphBuilder(self.input_shape)
            self.emit(g, 0)
            return analyze(g.nodes, precision)
        return chain_cost(self.specs(), self.input_shape, precision)

    def build(self) -> nn.Module:
        from nasforge.blocks._modules import Network

        return Network(self)


# -- mobile blocks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvertedResidual:
    """MobileNetV2 block: 1x1 expand (skipped at ratio 1) -> kxk depthwise -> 1x1 project (linear),
    with a residual add when stride is 1 and channels match."""

    in_ch: int
    out_ch: int
    stride: int = 1
    expand: float = 6
    kernel: int = 3
    act: str = "relu6"

    @property
    def hidden(self) -> int:
        return round(self.in_ch * self.expand)

    @property
    def use_residual(self) -> bool:
        return self.stride == 1 and self.in_ch == self.out_ch

    def emit(self, g: GraphBuilder, x: int) -> int:
        inp = x
        h = self.hidden
        if self.expand != 1:
            with g.scope("expand"):
                x = ConvBNAct(self.in_ch, h, 1, 1, 1, self.act).emit(g, x)
        with g.scope("dw"):
            x = ConvBNAct(h, h, self.kernel, self.stride, h, self.act).emit(g, x)
        with g.scope("project"):
            x = ConvBNAct(h, self.out_ch, 1, 1, 1, "none").emit(g, x)
        if self.use_residual:
            x = g.add_(inp, x, name="add")
        return x

    def build(self) -> nn.Module:
        from nasforge.blocks._modules import InvertedResidualModule

        return InvertedResidualModule(self)


@dataclass(frozen=True)
class DepthwiseSeparable:
    """MobileNetV1 block: kxk depthwise conv + BN + act, then 1x1 pointwise conv + BN + act."""

    in_ch: int
    out_ch: int
    stride: int = 1
    kernel: int = 3
    act: str = "relu"

    def emit(self, g: GraphBuilder, x: int) -> int:
        with g.scope("dw"):
            x = ConvBNAct(self.in_ch, self.in_ch, self.kernel, self.stride, self.in_ch, self.act).emit(g, x)
        with g.scope("pw"):
            return ConvBNAct(self.in_ch, self.out_ch, 1, 1, 1, self.act).emit(g, x)

    def build(self) -> nn.Module:
        from nasforge.blocks._modules import DepthwiseSeparableModule

        return DepthwiseSeparableModule(self)


# -- classic blocks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fire:
    """SqueezeNet Fire module: 1x1 squeeze conv + ReLU, then 1x1 and 3x3 expand convs (+ ReLU) concatenated.

    Convs carry a bias and no batch norm, as in the paper and torchvision.
    """

    in_ch: int
    squeeze: int
    expand1x1: int
    expand3x3: int

    @property
    def out_ch(self) -> int:
        return self.expand1x1 + self.expand3x3

    def emit(self, g: GraphBuilder, x: int) -> int:
        s = g.conv2d(x, self.squeeze, 1, bias=True, name="squeeze")
        s = g.act(s, "relu", name="squeeze_act")
        a = g.conv2d(s, self.expand1x1, 1, bias=True, name="expand1x1")
        a = g.act(a, "relu", name="expand1x1_act")
        b = g.conv2d(s, self.expand3x3, 3, bias=True, name="expand3x3")
        b = g.act(b, "relu", name="expand3x3_act")
        return g.cat([a, b], name="cat")

    def build(self) -> nn.Module:
        from nasforge.blocks._modules import FireModule

        return FireModule(self)


@dataclass(frozen=True)
class BasicBlock:
    """ResNet basic block: 3x3 conv-BN-ReLU, 3x3 conv-BN, plus the shortcut, then ReLU.

    The shortcut is a 1x1 conv + BN projection when the stride or the channel count changes, else identity.
    """

    in_ch: int
    out_ch: int
    stride: int = 1

    @property
    def has_projection(self) -> bool:
        return self.stride != 1 or self.in_ch != self.out_ch

    def emit(self, g: GraphBuilder, x: int) -> int:
        inp = x
        with g.scope("conv1"):
            x = ConvBNAct(self.in_ch, self.out_ch, 3, self.stride).emit(g, x)
        with g.scope("conv2"):
            x = ConvBNAct(self.out_ch, self.out_ch, 3, 1, 1, "none").emit(g, x)
        return emit_residual_tail(g, x, inp, self.in_ch, self.out_ch, self.stride, self.has_projection)

    def build(self) -> nn.Module:
        from nasforge.blocks._modules import BasicBlockModule

        return BasicBlockModule(self)


def emit_residual_tail(g: GraphBuilder, x: int, inp: int, in_ch: int, out_ch: int, stride: int,
                       project: bool) -> int:
    """ResNet blocks' end: the shortcut (1x1 conv + BN projection when ``project``), the add, the ReLU."""
    if project:
        with g.scope("shortcut"):
            inp = ConvBNAct(in_ch, out_ch, 1, stride, 1, "none").emit(g, inp)
    x = g.add_(x, inp, name="add")
    return g.act(x, "relu", name="act")


@dataclass(frozen=True)
class Bottleneck:
    """ResNet bottleneck (v1.5: stride on the 3x3): 1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand, each
    conv-BN (ReLU except the last), plus the shortcut (1x1 conv + BN projection on stride/channel change), ReLU.

    ``width = (out_ch / expansion) * base_width / 64 * groups`` as in torchvision: ResNet-50 is
    ``groups=1, base_width=64``; ResNeXt-50 32x4d is ``groups=32, base_width=4``.
    """

    in_ch: int
    out_ch: int
    stride: int = 1
    groups: int = 1
    base_width: int = 64
    expansion: int = 4

    @property
    def width(self) -> int:
        return (self.out_ch // self.expansion) * self.base_width // 64 * self.groups

    @property
    def has_projection(self) -> bool:
        return self.stride != 1 or self.in_ch != self.out_ch

    def emit(self, g: GraphBuilder, x: int) -> int:
        inp = x
        w = self.width
        with g.scope("conv1"):
            x = ConvBNAct(self.in_ch, w, 1).emit(g, x)
        with g.scope("conv2"):
            x = ConvBNAct(w, w, 3, self.stride, self.groups).emit(g, x)
        with g.scope("conv3"):
            x = ConvBNAct(w, self.out_ch, 1, 1, 1, "none").emit(g, x)
        return emit_residual_tail(g, x, inp, self.in_ch, self.out_ch, self.stride, self.has_projection)

    def build(self) -> nn.Module:
        from nasforge.blocks._modules import BottleneckModule

        return BottleneckModule(self)


# -- shufflenet units -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShuffleV1Unit:
    """ShuffleNet v1 unit: 1x1 group conv-BN-ReLU, channel shuffle, 3x3 depthwise-BN (stride), 1x1 group conv-BN;
    stride 1 adds the input, stride 2 concatenates a 3x3/2 average-pooled input; then ReLU.

    The bottleneck has ``out_ch // 4`` channels; at stride 2 the branch makes ``out_ch - in_ch`` channels so the
    concat has ``out_ch``. ``first_grouped=False`` keeps the first 1x1 ungrouped (the first unit of the first
    stage in the paper, whose input has too few channels).
    """

    in_ch: int
    out_ch: int
    stride: int = 1
    groups: int = 3
    first_grouped: bool = True

    def __post_init__(self) -> None:
        if self.stride not in (1, 2):
            raise NasforgeError(f"ShuffleV1Unit stride {self.stride} is not allowed; allowed: 1, 2")
        if self.stride == 1 and self.in_ch != self.out_ch:
            raise NasforgeError(f"ShuffleV1Unit with stride 1 needs in_ch == out_ch, got {self.in_ch}, {self.out_ch}")
        if self.stride == 2 and self.out_ch <= self.in_ch:
            raise NasforgeError(f"ShuffleV1Unit with stride 2 needs out_ch > in_ch, got {self.in_ch}, {self.out_ch}")

    @property
    def mid(self) -> int:
        return self.out_ch // 4

    @property
    def branch_out(self) -> int:
        return self.out_ch - self.in_ch if self.stride == 2 else self.out_ch

    def emit(self, g: GraphBuilder, x: int) -> int:
        inp = x
        with g.scope("pw1"):
            x = ConvBNAct(self.in_ch, self.mid, 1, 1, self.groups if self.first_grouped else 1).emit(g, x)
        x = g.channel_shuffle(x, self.groups, name="channel_shuffle")
        with g.scope("dw"):
            x = ConvBNAct(self.mid, self.mid, 3, self.stride, self.mid, "none").emit(g, x)
        with g.scope("pw2"):
            x = ConvBNAct(self.mid, self.branch_out, 1, 1, self.groups, "none").emit(g, x)
        if self.stride == 1:
            x = g.add_(x, inp, name="add")
        else:
            s = g.avgpool(inp, 3, 2, 1, name="shortcut")
            x = g.cat([s, x], name="cat")
        return g.act(x, "relu", name="act")

    def build(self) -> nn.Module:
        from nasforge.blocks._modules import ShuffleV1UnitModule

        return ShuffleV1UnitModule(self)


@dataclass(frozen=True)
class ShuffleV2Unit:
    """ShuffleNet v2 unit. Stride 1: split the channels in half, run one half through 1x1-BN-ReLU,
    3x3 depthwise-BN, 1x1-BN-ReLU, concat with the other half. Stride 2: no split; a second branch
    (3x3/2 depthwise-BN, 1x1-BN-ReLU) replaces the identity half. Then a channel shuffle with 2 groups.
    """

    in_ch: int
    out_ch: int
    stride: int = 1

    def __post_init__(self) -> None:
        if self.stride not in (1, 2):
            raise NasforgeError(f"ShuffleV2Unit stride {self.stride} is not allowed; allowed: 1, 2")
        if self.out_ch % 2:
            raise NasforgeError(f"ShuffleV2Unit out_ch {self.out_ch} must be even")
        if self.stride == 1 and self.in_ch != self.out_ch:
            raise NasforgeError(f"ShuffleV2Unit with stride 1 needs in_ch == out_ch, got {self.in_ch}, {self.out_ch}")

    def branch1(self) -> tuple[ConvBNAct, ...]:
        """The stride-2 shortcut branch (empty at stride 1)."""
        if self.stride == 1:
            return ()
        c, half = self.in_ch, self.out_ch // 2
        return (ConvBNAct(c, c, 3, self.stride, c, "none"), ConvBNAct(c, half, 1))

    def branch2(self) -> tuple[ConvBNAct, ...]:
        half = self.out_ch // 2
        c = self.in_ch if self.stride == 2 else half
        return (ConvBNAct(c, half, 1), ConvBNAct(half, half, 3, self.stride, half, "none"), ConvBNAct(half, half, 1))

    def emit(self, g: GraphBuilder, x: int) -> int:
        if self.stride == 1:
            half = self.in_ch // 2
            a, x = g.split(x, [self.in_ch - half, half], name="slice")
        else:
            a = _emit_seq(g, x, self.branch1(), "branch1")
        b = _emit_seq(g, x, self.branch2(), "branch2")
        y = g.cat([a, b], name="cat")
        return g.channel_shuffle(y, 2, name="channel_shuffle")

    def build(self) -> nn.Module:
        from nasforge.blocks._modules import ShuffleV2UnitModule

        return ShuffleV2UnitModule(self)


def _emit_seq(g: GraphBuilder, x: int, specs: Sequence[Spec], name: str) -> int:
    """Emit specs in order under ``name.0``, ``name.1``, ... (the paths of an ``nn.Sequential``)."""
    with g.scope(name):
        for i, s in enumerate(specs):
            with g.scope(str(i)):
                x = s.emit(g, x)
    return x
