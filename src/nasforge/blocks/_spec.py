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

from nasforge.cost import Cost, GraphBuilder, Part, Shape, analyze, chain

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
