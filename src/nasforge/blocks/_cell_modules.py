"""Torch modules of the cell ops and cells. Each runs exactly the layers its spec's ``emit`` lists, in order."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nasforge.blocks._cell_ops import (
    BNReLU,
    CellPool,
    Conv7x1x7,
    DilConv,
    FactorizedReduce,
    ReLUConvBN,
    ResNetBasicBlock,
    SepConv,
    Zero,
)
from nasforge.blocks._cells import CellNetworkSpec, DartsCell, NasnetCell, NB201Cell, preprocess


class ReLUConvBNModule(nn.Sequential):
    def __init__(self, s: ReLUConvBN) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv = nn.Conv2d(s.c_in, s.c_out, s.kernel, s.stride, s.kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(s.c_out)


class BNReLUModule(nn.Sequential):
    def __init__(self, s: BNReLU) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(s.channels)
        self.relu = nn.ReLU(inplace=True)


class CellPoolModule(nn.Module):
    def __init__(self, s: CellPool) -> None:
        super().__init__()
        self.pre = ReLUConvBNModule(ReLUConvBN(s.c_in, s.c_out, 1)) if s.c_in != s.c_out else None
        self.pool: nn.Module
        if s.kind == "avg":
            self.pool = nn.AvgPool2d(s.kernel, s.stride, s.kernel // 2, count_include_pad=False)
        else:
            self.pool = nn.MaxPool2d(s.kernel, s.stride, s.kernel // 2)

    def forward(self, x: Tensor) -> Tensor:
        if self.pre is not None:
            x = self.pre(x)
        return self.pool(x)


class FactorizedReduceModule(nn.Module):
    def __init__(self, s: FactorizedReduce) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(s.c_in, s.c_out // 2, 1, 2, 0, bias=False)
        self.conv_2 = nn.Conv2d(s.c_in, s.c_out // 2, 1, 2, 0, bias=False)
        self.bn = nn.BatchNorm2d(s.c_out)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(x)
        a = self.conv_1(x)
        b = self.conv_2(x[:, :, 1:, 1:])
        return self.bn(torch.cat([a, b], dim=1))


class SepConvModule(nn.Sequential):
    def __init__(self, s: SepConv) -> None:
        super().__init__()
        k, c = s.kernel, s.c_in
        self.relu_1 = nn.ReLU(inplace=False)
        self.dw_1 = nn.Conv2d(c, c, k, s.stride, k // 2, groups=c, bias=False)
        self.pw_1 = nn.Conv2d(c, c, 1, bias=False)
        self.bn_1 = nn.BatchNorm2d(c)
        self.relu_2 = nn.ReLU(inplace=False)
        self.dw_2 = nn.Conv2d(c, c, k, 1, k // 2, groups=c, bias=False)
        self.pw_2 = nn.Conv2d(c, s.c_out, 1, bias=False)
        self.bn_2 = nn.BatchNorm2d(s.c_out)


class DilConvModule(nn.Sequential):
    def __init__(self, s: DilConv) -> None:
        super().__init__()
        pad = s.dilation * (s.kernel - 1) // 2
        self.relu = nn.ReLU(inplace=False)
        self.dw = nn.Conv2d(s.c_in, s.c_in, s.kernel, s.stride, pad, dilation=s.dilation, groups=s.c_in, bias=False)
        self.pw = nn.Conv2d(s.c_in, s.c_out, 1, bias=False)
        self.bn = nn.BatchNorm2d(s.c_out)


class Conv7x1x7Module(nn.Sequential):
    def __init__(self, s: Conv7x1x7) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1x7 = nn.Conv2d(s.c_in, s.c_in, (1, 7), (1, s.stride), (0, 3), bias=False)
        self.conv_7x1 = nn.Conv2d(s.c_in, s.c_out, (7, 1), (s.stride, 1), (3, 0), bias=False)
        self.bn = nn.BatchNorm2d(s.c_out)


class ZeroModule(nn.Module):
    """Zeros of the node's shape, made from the input only for its size (``new_zeros``)."""

    def __init__(self, s: Zero) -> None:
        super().__init__()
        self.c_out = s.c_out
        self.stride = s.stride

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        s = self.stride
        return x.new_zeros((n, self.c_out, (h - 1) // s + 1, (w - 1) // s + 1))


class ResNetBasicBlockModule(nn.Module):
    def __init__(self, s: ResNetBasicBlock) -> None:
        super().__init__()
        self.conv_a = ReLUConvBNModule(ReLUConvBN(s.c_in, s.c_out, 3, s.stride))
        self.conv_b = ReLUConvBNModule(ReLUConvBN(s.c_out, s.c_out, 3, 1))
        self.down: nn.Module | None
        if s.stride == 2:
            self.down = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(s.c_in, s.c_out, 1, bias=False))
        elif s.c_in != s.c_out:
            self.down = ReLUConvBNModule(ReLUConvBN(s.c_in, s.c_out, 1))
        else:
            self.down = None

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv_b(self.conv_a(x))
        r = self.down(x) if self.down is not None else x
        return r + y


class NB201CellModule(nn.Module):
    """An NB201 cell: node j sums its non-``none`` edges in string order; all-``none`` gives zeros."""

    def __init__(self, s: NB201Cell) -> None:
        super().__init__()
        self.edges = nn.ModuleList()
        self.plan: list[list[tuple[int, int]]] = []  # per node: (source, module index or -1 for skip)
        for node in s.plan():
            row = []
            for src, spec in node:
                if spec is None:
                    row.append((src, -1))
                else:
                    row.append((src, len(self.edges)))
                    self.edges.append(spec.build())
            self.plan.append(row)
        self.zero = ZeroModule(Zero(s.channels))

    def forward(self, x: Tensor) -> Tensor:
        nodes = [x]
        for row in self.plan:
            out: Tensor | None = None
            for src, k in row:
                y = nodes[src] if k < 0 else self.edges[k](nodes[src])
                out = y if out is None else out + y
            if out is None:
                out = self.zero(nodes[0])
            nodes.append(out)
        return nodes[-1]


class _Preprocess(nn.Module):
    """The two input maps of a two-input cell; an input the cell never reads gets none."""

    def __init__(self, s: DartsCell | NasnetCell) -> None:
        super().__init__()
        specs = preprocess(s.c_pp, s.c_p, s.c, s.reduction_prev)
        r0, r1 = s.reads()
        self.pre0 = specs[0].build() if r0 else None
        self.pre1 = specs[1].build() if r1 else None

    def states(self, s0: Tensor | None, s1: Tensor | None) -> list[Tensor | None]:
        a = self.pre0(s0) if self.pre0 is not None else None
        b = self.pre1(s1) if self.pre1 is not None else None
        return [a, b]


class DartsCellModule(_Preprocess):
    """A DARTS cell: preprocess the inputs, each node sums its non-``none`` edges, concat the nodes."""

    def __init__(self, s: DartsCell) -> None:
        super().__init__(s)
        self.edges = nn.ModuleList()
        self.plan: list[list[tuple[int, int]]] = []  # per node: (input index, edge module index)
        for row in s.edge_specs():
            self.plan.append([])
            for i, spec in row:
                self.plan[-1].append((i, len(self.edges)))
                self.edges.append(spec.build())
        self.zero = ZeroModule(Zero(s.c, 2 if s.reduction else 1))

    def forward(self, s0: Tensor | None, s1: Tensor | None) -> Tensor:
        states = self.states(s0, s1)
        for row in self.plan:
            out: Tensor | None = None
            for i, k in row:
                y = self.edges[k](states[i])
                out = y if out is None else out + y
            if out is None:
                assert s1 is not None
                out = self.zero(s1)
            states.append(out)
        outs = [t for t in states[2:] if t is not None]
        return torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]


class NasnetCellModule(_Preprocess):
    """A NASNet cell: blocks of two ops combined by add or concat; unused block outputs concatenated."""

    def __init__(self, s: NasnetCell) -> None:
        super().__init__(s)
        self.ops = nn.ModuleList()
        for a, b in s.op_specs():
            assert a is not None and b is not None
            self.ops.append(a.build())
            self.ops.append(b.build())
        self.blocks = [(b[0], b[1], b[4] == "concat") for b in s.blocks]
        self.unused = s.unused()

    def forward(self, s0: Tensor | None, s1: Tensor | None) -> Tensor:
        states = self.states(s0, s1)
        for k, (in1, in2, concat) in enumerate(self.blocks):
            y1 = self.ops[2 * k](states[in1])
            y2 = self.ops[2 * k + 1](states[in2])
            states.append(torch.cat([y1, y2], dim=1) if concat else y1 + y2)
        outs = [t for t in (states[i] for i in self.unused) if t is not None]
        return torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]


class CellNetworkModule(nn.Module):
    """Stem, two-input cells (each reads the two previous outputs), global pooling, linear.

    Cells whose output nothing reads (``CellNetworkSpec.live``) are not built and not run.
    """

    def __init__(self, s: CellNetworkSpec) -> None:
        super().__init__()
        self.stem = s.stem().build()
        self.live = s.live()
        self.cells = nn.ModuleList(c.build() for c, live in zip(s.cells, self.live, strict=True) if live)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(s.out_channels, s.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        s0: Tensor | None = self.stem(x)
        s1 = s0
        k = 0
        for live in self.live:
            if live:
                s0, s1 = s1, self.cells[k](s0, s1)
                k += 1
            else:
                s0, s1 = s1, None
        assert s1 is not None
        return self.classifier(torch.flatten(self.pool(s1), 1))
