"""Two-input cells (NASNet, DARTS) and the small CIFAR-style network they stack into.

A cell reads the outputs of the two previous cells (``s0`` two back, ``s1`` the previous one), maps both
to C channels (a 1x1 ReLUConvBN, or FactorizedReduce for ``s0`` when the previous cell halved the
resolution), runs its blocks/nodes, and concatenates the outputs nobody inside the cell read. The network
is DARTS' ``NetworkCIFAR`` without the auxiliary head: stem 3x3 conv + BN, ``layers`` cells with reduction
cells (stride 2, channels doubled) at 1/3 and 2/3 of the depth, global pooling, linear.

Also the NB201 cell (one input, six edges). Specs here only describe and emit; ``_cell_modules`` holds the
modules that run the same layers in order. The spaces (``spaces/nb201.py``, ``nasnet.py``, ``darts.py``) and the
supernets (``oneshot/``) build on these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from nasforge.blocks._cell_ops import FactorizedReduce, Identity, ReLUConvBN, Zero, make_op
from nasforge.blocks._spec import ConvBNAct, Flatten, GlobalPool, Linear, Spec, part_of
from nasforge.cost._cost import Cost, Part, analyze, chain
from nasforge.cost._ir import GraphBuilder, Shape
from nasforge.cost._macro import MacroBuilder
from nasforge.errors import NasforgeError

if TYPE_CHECKING:
    from torch import nn

# A DARTS node: two (op name, input index) edges; inputs 0, 1 are the cell inputs, 2.. earlier nodes.
DartsNode = tuple[tuple[str, int], tuple[str, int]]
# A NASNet block: (input 1, input 2, op 1, op 2, combine) with the same input numbering.
NasnetBlock = tuple[int, int, str, str, str]
# Cells emit into either builder: every layer (GraphBuilder) or one step per op (MacroBuilder).
Builder = GraphBuilder | MacroBuilder
# (target node, source node) of the 6 edges of an NB201 cell, in string order.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


@lru_cache(maxsize=65536)
def op_summary(spec: Spec, shape: Shape) -> tuple[Part, int]:
    """(the op's part, its peak when its input stays alive to the end)."""
    free = part_of(spec, shape)
    g = GraphBuilder(shape)
    out = spec.emit(g, 0)
    g.add("identity", [0, out], shape, name="keep")
    kept = Part.of(g.nodes)
    return free, kept.peak


def apply(g: Builder, spec: Spec, x: int) -> int:
    """Emit ``spec`` on ``x``: its layers into a ``GraphBuilder``, one op step into a ``MacroBuilder``."""
    if isinstance(g, MacroBuilder):
        if isinstance(spec, Identity):  # the value itself
            return x
        part, kept = op_summary(spec, g.shape(x))
        return g.op(part, kept, x)
    return spec.emit(g, x)


def preprocess(c_pp: int, c_p: int, c: int, reduction_prev: bool) -> tuple[Spec, Spec]:
    """The specs mapping the two cell inputs to C channels at the same resolution."""
    pre0: Spec = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1)
    return pre0, ReLUConvBN(c_p, c, 1)


def emit_preprocess(g: Builder, cell: Cell, s0: int | None, s1: int | None) -> list[int | None]:
    """The preprocessed cell inputs; an input no op of the cell reads is not preprocessed (``None``)."""
    specs = preprocess(cell.c_pp, cell.c_p, cell.c, cell.reduction_prev)
    states: list[int | None] = []
    for k, (spec, x) in enumerate(zip(specs, (s0, s1), strict=True)):
        if cell.reads()[k]:
            assert x is not None
            with g.scope(f"pre{k}"):
                states.append(apply(g, spec, x))
        else:
            states.append(None)
    return states


def _get(states: list[int | None], i: int) -> int:
    x = states[i]
    assert x is not None, "a cell op reads an input marked unread"
    return x


@dataclass(frozen=True)
class DartsCell:
    """A DARTS cell: each node sums its two edges (``none`` edges skipped; zeros if both are ``none``)."""

    c_pp: int
    c_p: int
    c: int
    reduction: bool
    reduction_prev: bool
    nodes: tuple[DartsNode, ...]

    @property
    def out_channels(self) -> int:
        return self.c * len(self.nodes)

    def edge_specs(self) -> list[list[tuple[int, Spec]]]:
        """Per node: (input index, op spec) of its non-``none`` edges, in order."""
        out = []
        for node in self.nodes:
            row = []
            for op, i in node:
                stride = 2 if self.reduction and i < 2 else 1
                spec = make_op(op, self.c, self.c, stride)
                if spec is not None:
                    row.append((i, spec))
            out.append(row)
        return out

    def has_zero_node(self) -> bool:
        return any(all(op == "none" for op, _ in node) for node in self.nodes)

    def reads(self) -> tuple[bool, bool]:
        """Whether the cell reads input 0 / input 1 (through a non-``none`` edge, or a zero node's shape)."""
        used = {i for node in self.nodes for op, i in node if op != "none"}
        return 0 in used, 1 in used

    def emit2(self, g: Builder, s0: int | None, s1: int | None) -> int:
        states = emit_preprocess(g, self, s0, s1)
        for j, row in enumerate(self.edge_specs()):
            out: int | None = None
            for k, (i, spec) in enumerate(row):
                with g.scope(f"node{j}.edge{k}"):
                    y = apply(g, spec, _get(states, i))
                out = y if out is None else g.add_(out, y, name=f"node{j}.add")
            if out is None:  # zeros shaped like the node, made from the raw previous-cell output
                assert s1 is not None
                with g.scope(f"node{j}"):  # as Zero(c, stride).emit, which the module runs
                    out = g.zero(s1, 2 if self.reduction else 1, self.c, name="zero")
            states.append(out)
        outs = [_get(states, i) for i in range(2, len(states))]
        return g.cat(outs, name="cat") if len(outs) > 1 else outs[0]

    def build(self) -> nn.Module:
        from nasforge.blocks._cell_modules import DartsCellModule

        return DartsCellModule(self)


@dataclass(frozen=True)
class NasnetCell:
    """A NASNet cell: each block applies two ops to two states and adds or concatenates the results."""

    c_pp: int
    c_p: int
    c: int
    reduction: bool
    reduction_prev: bool
    blocks: tuple[NasnetBlock, ...]

    def channels(self) -> list[int]:
        """Channels of every state: the two inputs, then each block's output."""
        ch = [self.c, self.c]
        for b in self.blocks:
            ch.append(2 * self.c if b[4] == "concat" else self.c)
        return ch

    def unused(self) -> list[int]:
        """States (block outputs) no block reads: concatenated as the cell output."""
        read = {i for b in self.blocks for i in b[:2]}
        return [2 + k for k in range(len(self.blocks)) if 2 + k not in read]

    @property
    def out_channels(self) -> int:
        ch = self.channels()
        return sum(ch[i] for i in self.unused())

    def op_specs(self) -> list[tuple[Spec | None, Spec | None]]:
        ch = self.channels()
        out = []
        for in1, in2, op1, op2, _ in self.blocks:
            pair = []
            for i, op in ((in1, op1), (in2, op2)):
                stride = 2 if self.reduction and i < 2 else 1
                pair.append(make_op(op, ch[i], self.c, stride))
            out.append((pair[0], pair[1]))
        return out

    def reads(self) -> tuple[bool, bool]:
        """Whether any block reads input 0 / input 1 (an unread input is not even preprocessed)."""
        used = {i for b in self.blocks for i in b[:2]}
        return 0 in used, 1 in used

    def emit2(self, g: Builder, s0: int | None, s1: int | None) -> int:
        states = emit_preprocess(g, self, s0, s1)
        for k, ((in1, in2, _, _, comb), specs) in enumerate(zip(self.blocks, self.op_specs(), strict=True)):
            ys = []
            for e, (i, spec) in enumerate(zip((in1, in2), specs, strict=True)):
                if spec is None:
                    raise NasforgeError("nasnet blocks cannot use the 'none' op")
                with g.scope(f"block{k}.op{e + 1}"):
                    ys.append(apply(g, spec, _get(states, i)))
            if comb == "add":
                states.append(g.add_(ys[0], ys[1], name=f"block{k}.add"))
            else:
                states.append(g.cat(ys, name=f"block{k}.cat"))
        outs = [_get(states, i) for i in self.unused()]
        return g.cat(outs, name="cat") if len(outs) > 1 else outs[0]

    def build(self) -> nn.Module:
        from nasforge.blocks._cell_modules import NasnetCellModule

        return NasnetCellModule(self)


@dataclass(frozen=True)
class NB201Cell:
    """One NB201 cell on C channels (stride 1): ``ops`` names the 6 edges in string order."""

    channels: int
    ops: tuple[str, ...]

    def plan(self) -> list[list[tuple[int, Spec | None]]]:
        """Per node 1..3: (source node, op spec or None for skip) of its non-``none`` edges."""
        nodes: list[list[tuple[int, Spec | None]]] = [[], [], []]
        for (dst, src), op in zip(EDGES, self.ops, strict=True):
            if op == "none":
                continue
            spec = None if op == "skip_connect" else make_op(op, self.channels, self.channels, 1)
            nodes[dst - 1].append((src, spec))
        return nodes

    def emit(self, g: GraphBuilder, x: int) -> int:
        nodes = [x]
        for j, edges in enumerate(self.plan(), start=1):
            out: int | None = None
            for src, spec in edges:
                if spec is None:
                    y = nodes[src]
                else:
                    with g.scope(f"edge{j}{src}"):
                        y = spec.emit(g, nodes[src])
                out = y if out is None else g.add_(out, y, name=f"add{j}")
            if out is None:
                out = Zero(self.channels).emit(g, nodes[0])
            nodes.append(out)
        return nodes[-1]

    def build(self) -> nn.Module:
        from nasforge.blocks._cell_modules import NB201CellModule

        return NB201CellModule(self)



Cell = DartsCell | NasnetCell


@dataclass(frozen=True)
class CellNetworkSpec:
    """Stem, a stack of two-input cells, global pooling and a linear classifier."""

    name: str
    input_shape: Shape
    stem_channels: int
    cells: tuple[Cell, ...]
    num_classes: int

    @property
    def out_channels(self) -> int:
        return self.cells[-1].out_channels if self.cells else self.stem_channels

    def stem(self) -> ConvBNAct:
        return ConvBNAct(self.input_shape[0], self.stem_channels, 3, 1, act="none")

    def live(self) -> tuple[bool, ...]:
        """Which cells feed the output: a cell whose output no later cell reads is not run at all."""
        live = [False] * len(self.cells)
        if live:
            live[-1] = True
        for i in range(len(self.cells) - 1, -1, -1):
            cell = self.cells[i]
            if live[i]:
                r0, r1 = cell.reads()
                r1 = r1 or (isinstance(cell, DartsCell) and cell.has_zero_node())
                if r1 and i >= 1:
                    live[i - 1] = True
                if r0 and i >= 2:
                    live[i - 2] = True
        return tuple(live)

    def emit(self, g: GraphBuilder, x: int) -> int:
        with g.scope("stem"):
            x = self.stem().emit(g, x)
        s0: int | None = x
        s1: int | None = x
        for i, (cell, live) in enumerate(zip(self.cells, self.live(), strict=True)):
            if live:
                with g.scope(f"cells.{i}"):
                    s0, s1 = s1, cell.emit2(g, s0, s1)
            else:
                s0, s1 = s1, None
        assert s1 is not None
        x = g.global_avgpool(s1, name="pool")
        x = g.flatten(x, name="flatten")
        return g.linear(x, self.num_classes, name="classifier")

    def cost(self, precision: str = "fp32", layers: bool = False) -> Cost:
        """Analytic cost; ``layers=True`` emits the whole network for per-layer rows (slower)."""
        if layers:
            g = GraphBuilder(self.input_shape)
            self.emit(g, 0)
            return analyze(g.nodes, precision)
        stem = part_of(self.stem(), self.input_shape)
        parts = [stem]
        live = self.live()
        shapes: list[Shape | None] = [stem.out_shape, stem.out_shape]  # outputs of the cells two back, one back
        for i, cell in enumerate(self.cells):
            if not live[i]:
                shapes.append(None)
                continue
            nxt = self.cells[i + 1] if i + 1 < len(self.cells) else None
            keep = nxt is not None and live[i + 1] and nxt.reads()[0]
            p = _cell_part(cell, shapes[-2], shapes[-1], i == 0, keep)
            parts.append(p)
            shapes.append(p.out_shape)
        shape = parts[-1].out_shape
        for spec in (GlobalPool(), Flatten(), Linear(self.out_channels, self.num_classes)):
            p = part_of(spec, shape)
            parts.append(p)
            shape = p.out_shape
        return chain(parts, precision)

    def build(self) -> nn.Module:
        from nasforge.blocks._cell_modules import CellNetworkModule

        return CellNetworkModule(self)


@lru_cache(maxsize=16384)
def _cell_part(cell: Cell, s0: Shape | None, s1: Shape | None, shared: bool, keep: bool) -> Part:
    """Totals of one cell run between its neighbours, for the chained (fast) network cost.

    The cell is emitted on its own with the previous outputs it reads as inputs (one input when both
    are the stem output); ``keep`` holds the previous cell's output alive to the end, because the next
    cell reads it too. ``activations`` exclude the inputs (they belong to earlier parts); ``peak``
    includes them. Chaining these parts gives exactly the totals of emitting the whole network.
    """
    r0, r1 = cell.reads()
    r1 = r1 or (isinstance(cell, DartsCell) and cell.has_zero_node())
    if shared:
        assert s1 is not None
        g = MacroBuilder(s1)
        x0: int | None = 0
        x1: int | None = 0
    else:
        use0, use1 = r0, r1 or keep
        first = s0 if use0 else s1
        assert first is not None
        g = MacroBuilder(first)
        x0 = 0 if use0 else None
        x1 = None
        if use1:
            assert s1 is not None
            x1 = g.add("input", [], s1, name="input1") if use0 else 0
    out = cell.emit2(g, x0, x1)
    if keep:
        assert x1 is not None
        g.add("identity", [x1, out], g.shape(x1), name="keep")  # an alias: no buffer, holds s1 alive
    return g.finish(out)


def reduction_layers(layers: int) -> set[int]:
    """The cell indices that reduce: 1/3 and 2/3 of the depth (as DARTS)."""
    return {layers // 3, 2 * layers // 3}


CellFactory = Callable[[int, int, int, bool, bool], Cell]
"""(c_pp, c_p, c, reduction, reduction_prev) -> the cell spec."""


def stack_cells(make_cell: CellFactory, C: int, layers: int, stem_multiplier: int) -> tuple[int, tuple[Cell, ...]]:
    """(stem channels, cells) of the DARTS macro network: channels double at each reduction cell."""
    stem = stem_multiplier * C
    c_pp, c_p, c = stem, stem, C
    red = reduction_layers(layers)
    out: list[Cell] = []
    reduction_prev = False
    for i in range(layers):
        reduction = i in red
        if reduction:
            c *= 2
        cell = make_cell(c_pp, c_p, c, reduction, reduction_prev)
        out.append(cell)
        c_pp, c_p = c_p, cell.out_channels
        reduction_prev = reduction
    return stem, tuple(out)

