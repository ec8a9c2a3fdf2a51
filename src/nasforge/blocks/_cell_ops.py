"""Cell operations of the cell-level spaces (NB201, NASNet, DARTS) as specs.

Each op is a frozen dataclass with ``emit(g, x)`` (the analytic IR, no torch) and ``build()`` (the
``nn.Module`` from ``_cell_modules`` that runs the same layers in the same order). ``make_op`` maps an op
name of the NAS literature to its spec for given channels and stride. ReLUs inside cell ops are never in
place: a cell feeds one tensor to several edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nasforge.blocks._spec import Spec
from nasforge.cost._ir import GraphBuilder
from nasforge.errors import NasforgeError

if TYPE_CHECKING:
    from torch import nn

# Op name used in the IR for the strided view ``x[:, :, 1:, 1:]`` of FactorizedReduce.
SLICE_OP = "slice"

CELL_OPS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "nor_conv_5x5",
    "nor_conv_7x7",
    "avg_pool_3x3",
    "max_pool_3x3",
    "max_pool_5x5",
    "max_pool_7x7",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "conv_7x1_1x7",
)
"""Every op name ``make_op`` knows (``identity`` is accepted as an alias of ``skip_connect``)."""


@dataclass(frozen=True)
class ReLUConvBN:
    """ReLU -> conv (no bias) -> batch norm: NB201's ``nor_conv_kxk`` and the 1x1 preprocessing of cells."""

    c_in: int
    c_out: int
    kernel: int
    stride: int = 1

    def emit(self, g: GraphBuilder, x: int) -> int:
        x = g.act(x, "relu", name="relu")
        x = g.conv2d(x, self.c_out, self.kernel, self.stride, None, 1, False, name="conv")
        return g.batchnorm(x, name="bn")

    def build(self) -> nn.Module:
        from nasforge.blocks._cell_modules import ReLUConvBNModule

        return ReLUConvBNModule(self)


@dataclass(frozen=True)
class BNReLU:
    """Batch norm -> ReLU (NB201's ``lastact``)."""

    channels: int

    def emit(self, g: GraphBuilder, x: int) -> int:
        x = g.batchnorm(x, name="bn")
        return g.act(x, "relu", name="relu")

    def build(self) -> nn.Module:
        from nasforge.blocks._cell_modules import BNReLUModule

        return BNReLUModule(self)


@dataclass(frozen=True)
class CellPool:
    """3x3 (or kxk) pooling with padding k//2; a 1x1 ReLUConvBN first when channels change (as NB201)."""

    kind: str  # "avg" | "max"
    kernel: int
    c_in: int
    c_out: int
    stride: int = 1

    def emit(self, g: GraphBuilder, x: int) -> int:
        if self.c_in != self.c_out:
            with g.scope("pre"):
                x = ReLUConvBN(self.c_in, self.c_out, 1).emit(g, x)
        op = "avgpool" if self.kind == "avg" else "maxpool"
        return g.pool(x, op, self.kernel, self.stride, self.kernel // 2, name="pool")

    def build(self) -> nn.Module:
        from nasforge.blocks._cell_modules import CellPoolModule

        return CellPoolModule(self)


@dataclass(frozen=True)
class FactorizedReduce:
    """ReLU, two 1x1 stride-2 convs (the second on the input shifted by one pixel), concat, batch norm."""

    c_in: int
    c_out: int

    def __post_init__(self) -> None:
        if self.c_out % 2:
            raise NasforgeError(f"FactorizedReduce needs an even number of output channels, got {self.c_out}")

    def emit(self, g: GraphBuilder, x: int) -> int:
        x = g.act(x, "relu", name="relu")
        a = g.conv2d(x, self.c_out // 2, 1, 2, 0, name="conv_1")
        c, h, w = g.shape(x)
        if h < 2 or w < 2:
            raise NasforgeError(f"FactorizedReduce needs an input of at least 2x2, got {h}x{w}")
        shifted = g.add(SLICE_OP, [x], (c, h - 1, w - 1), name="shift")
        b = g.conv2d(shifted, self.c_out // 2, 1, 2, 0, name="conv_2")
        y = g.cat([a, b], name="cat")
        return g.batchnorm(y, name="bn")

    def build(self) -> nn.Module:
        from nasforge.blocks._cell_modules import FactorizedReduceModule

        return FactorizedReduceModule(self)


@dataclass(frozen=True)
class SepConv:
    """DARTS separable conv, applied twice: (ReLU, depthwise kxk, pointwise 1x1, BN) x 2."""

    c_in: int
    c_out: int
    kernel: int
    stride: int = 1

    def emit(self, g: GraphBuilder, x: int) -> int:
        k = self.kernel
        x = g.act(x, "relu", name="relu_1")
        x = g.conv2d(x, self.c_in, k, self.stride, k // 2, self.c_in, name="dw_1")
        x = g.conv2d(x, self.c_in, 1, name="pw_1")
        x = g.batchnorm(x, name="bn_1")
        x = g.act(x, "relu", name="relu_2")
        x = g.conv2d(x, self.c_in, k, 1, k // 2, self.c_in, name="dw_2")
        x = g.conv2d(x, self.c_out, 1, name="pw_2")
        return g.batchnorm(x, name="bn_2")

    def build(self) -> nn.Module:
        from nasforge.blocks._cell_modules import SepConvModule

        return SepConvModule(self)


@dataclass(frozen=True)
class DilConv:
    """DARTS dilated separable conv: ReLU, depthwise kxk with dilation 2, pointwise 1x1, BN."""

    c_in: int
    c_out: int
    kernel: int
    stride: int = 1
    dilation: int = 2

    def emit(self, g: GraphBuilder, x: int) -> int:
        pad = self.dilation * (self.kernel - 1) // 2
        x = g.act(x, "relu", name="relu")
        x = g.conv2d(x, self.c_in, self.kernel, self.stride, pad, self.c_in, dilation=self.dilation, name="dw")
        x = g.conv2d(x, self.c_out, 1, name="pw")
        return g.batchnorm(x, name="bn")

    def build(self) -> nn.Module:
        from nasforge.blocks._cell_modules import DilConvModule

        return DilConvModule(self)


@dataclass(frozen=True)
class Conv7x1x7:
    """DARTS/NASNet ``conv_7x1_1x7``: ReLU, 1x7 conv, 7x1 conv, BN (stride split over the two convs)."""

    c_in: int
    c_out: int
    stride: int = 1

    def emit(self, g: GraphBuilder, x: int) -> int:
        x = g.act(x, "relu", name="relu")
        x = g.conv2d(x, self.c_in, (1, 7), (1, self.stride), (0, 3), name="conv_1x7")
        x = g.conv2d(x, self.c_out, (7, 1), (self.stride, 1), (3, 0), name="conv_7x1")
        return g.batchnorm(x, name="bn")

    def build(self) -> nn.Module:
        from nasforge.blocks._cell_modules import Conv7x1x7Module

        return Conv7x1x7Module(self)


@dataclass(frozen=True)
class Zero:
    """The ``none`` op where a node has no other input: zeros of ``c_out`` channels at the input's size / stride.

    It reads its input only for the shape (``x.new_zeros``), which keeps that input alive until then.
    """

    c_out: int
    stride: int = 1

    def emit(self, g: GraphBuilder, x: int) -> int:
        return g.zero(x, self.stride, self.c_out, name="zero")

    def build(self) -> nn.Module:
        from nasforge.blocks._cell_modules import ZeroModule

        return ZeroModule(self)


@dataclass(frozen=True)
class Identity:
    """``skip_connect`` at stride 1 with equal channels: no layer at all (the input tensor itself)."""

    def emit(self, g: GraphBuilder, x: int) -> int:
        return x

    def build(self) -> nn.Module:
        from torch import nn

        return nn.Identity()


@dataclass(frozen=True)
class ResNetBasicBlock:
    """NB201's reduction block: ReLUConvBN 3x3/2 -> ReLUConvBN 3x3, plus avgpool 2x2 -> 1x1 conv shortcut."""

    c_in: int
    c_out: int
    stride: int = 2

    def emit(self, g: GraphBuilder, x: int) -> int:
        inp = x
        with g.scope("conv_a"):
            x = ReLUConvBN(self.c_in, self.c_out, 3, self.stride).emit(g, x)
        with g.scope("conv_b"):
            x = ReLUConvBN(self.c_out, self.c_out, 3, 1).emit(g, x)
        r = inp
        if self.stride == 2:
            r = g.avgpool(r, 2, 2, name="down_pool")
            r = g.conv2d(r, self.c_out, 1, name="down_conv")
        elif self.c_in != self.c_out:
            with g.scope("down"):
                r = ReLUConvBN(self.c_in, self.c_out, 1).emit(g, r)
        return g.add_(r, x, name="add")

    def build(self) -> nn.Module:
        from nasforge.blocks._cell_modules import ResNetBasicBlockModule

        return ResNetBasicBlockModule(self)


def _kernel_of(name: str) -> int:
    return int(name.rsplit("_", 1)[1].split("x")[0])


def make_op(name: str, c_in: int, c_out: int, stride: int = 1) -> Spec | None:
    """The spec of a named cell op; ``None`` for ``none`` (callers skip such edges)."""
    if name == "none":
        return None
    if name in ("skip_connect", "identity"):
        if stride == 1 and c_in == c_out:
            return Identity()
        if stride == 2:
            return FactorizedReduce(c_in, c_out)
        return ReLUConvBN(c_in, c_out, 1, stride)
    if name.startswith("nor_conv_"):
        return ReLUConvBN(c_in, c_out, _kernel_of(name), stride)
    if name.startswith(("avg_pool_", "max_pool_")):
        return CellPool(name[:3], _kernel_of(name), c_in, c_out, stride)
    if name.startswith("sep_conv_"):
        return SepConv(c_in, c_out, _kernel_of(name), stride)
    if name.startswith("dil_conv_"):
        return DilConv(c_in, c_out, _kernel_of(name), stride)
    if name == "conv_7x1_1x7":
        return Conv7x1x7(c_in, c_out, stride)
    raise NasforgeError(f"unknown cell op {name!r}; allowed: {', '.join(CELL_OPS)}")


def check_ops(ops: object, what: str, allow_none: bool = True) -> tuple[str, ...]:
    """Validate a user-given op list: non-empty, distinct, each a known op name."""
    if isinstance(ops, str) or not isinstance(ops, (list, tuple)) or not ops:
        raise NasforgeError(f"{what} must be a non-empty list of op names; allowed: {', '.join(CELL_OPS)}")
    out = tuple(str(o) for o in ops)
    allowed = [o for o in CELL_OPS if allow_none or o != "none"]
    for o in out:
        if o not in allowed and not (o == "identity"):
            raise NasforgeError(f"unknown op {o!r} in {what}; allowed: {', '.join(allowed)}")
    if len(set(out)) != len(out):
        raise NasforgeError(f"{what} has repeated ops: {', '.join(out)}")
    return out
