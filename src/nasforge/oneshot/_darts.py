"""The DARTS cell supernet: every edge i -> j of the cell is a mixed op over the space's ops.

Units (rows of ``alpha``) are the edges of the normal and of the reduction cell (14 each for 4 nodes),
shared by every cell of that type. ``derive`` keeps, for each node, the two incoming edges with the
largest non-``none`` weight and their best non-``none`` op (DARTS' rule), mapped onto the space's
``inputs``/``op1``/``op2`` decisions. ``fix(arch)`` runs those two edges per node with the chosen ops
and turns every other edge off (``none``), which is exactly ``space.build(arch)`` (``to_standalone``).
The stem, preprocessing and classifier are built from the same specs as the space's network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from nasforge.blocks import ConvBNAct
from nasforge.blocks._cell_ops import make_op
from nasforge.blocks._cells import DartsCell, preprocess, stack_cells
from nasforge.errors import NasforgeError
from nasforge.oneshot._registry import register_supernet
from nasforge.oneshot._supernet import ChoiceBlock, Supernet
from nasforge.spaces import Architecture, get_space
from nasforge.spaces.darts import CELLS, DartsSpace


class SuperDartsCell(nn.Module):
    """A DARTS cell whose every (node, input) edge is a choice block; nodes sum their non-zero edges."""

    def __init__(self, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool, nodes: int,
                 ops: tuple[str, ...]) -> None:
        super().__init__()
        pre0, pre1 = preprocess(c_pp, c_p, c, reduction_prev)
        self.pre0, self.pre1 = pre0.build(), pre1.build()
        self.c, self.reduction = c, reduction
        self.inputs: list[tuple[int, int]] = []  # per edge: (node, input)
        blocks = []
        for j in range(nodes):
            for i in range(2 + j):
                specs = [make_op(op, c, c, 2 if reduction and i < 2 else 1) for op in ops]
                blocks.append(ChoiceBlock([None if sp is None else sp.build() for sp in specs], specs))
                self.inputs.append((j, i))
        self.edges = nn.ModuleList(blocks)
        self.nodes = nodes

    def forward(self, s0: Tensor, s1: Tensor) -> Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        e = 0
        for _ in range(self.nodes):
            out: Tensor | None = None
            for i in range(len(states)):
                blk = cast(ChoiceBlock, self.edges[e])
                e += 1
                if blk.mode == "single" and blk.is_zero[blk.active]:
                    continue
                y = blk(states[i])
                out = y if out is None else out + y
            if out is None:  # every edge off: zeros shaped like the node (as the space's Zero op)
                n, _, h, w = s1.shape
                st = 2 if self.reduction else 1
                out = s1.new_zeros((n, self.c, (h - 1) // st + 1, (w - 1) // st + 1))
            states.append(out)
        return torch.cat(states[2:], dim=1)


def _example() -> DartsSpace:
    return cast(DartsSpace, get_space("darts", C=4, layers=3, resolution=8))


@register_supernet("darts", DartsSpace, options=("num_classes",), example=_example)
class DartsSupernet(Supernet):
    """stem -> ``layers`` super cells (reductions at 1/3 and 2/3) -> global pool, linear."""

    def __init__(self, space: DartsSpace, num_classes: int | None = None, seed: int = 0) -> None:
        super().__init__()
        self.space = space
        self.darts = space
        # the supernet needs a zero candidate to turn unselected edges off
        self.ops: tuple[str, ...] = space.ops if "none" in space.ops else ("none", *space.ops)
        self.none = self.ops.index("none")
        k = space.num_classes if num_classes is None else num_classes

        def make(c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> DartsCell:
            dummy = ((("none", 0), ("none", 1)),) * space.nodes  # only the channel bookkeeping is used
            return DartsCell(c_pp, c_p, c, reduction, reduction_prev, dummy)

        stem_c, cells = stack_cells(make, space.C, space.layers, space.stem_multiplier)
        if all(c.reduction for c in cells):  # layers < 3: every cell reduces, the normal cell's edges run nowhere
            raise NasforgeError(f"the darts supernet needs a normal and a reduction cell: layers={space.layers} "
                                "has only reduction cells; use layers >= 3")
        self.stem = ConvBNAct(3, stem_c, 3, 1, act="none").build()  # as CellNetworkSpec.stem()
        self.cells = nn.ModuleList([SuperDartsCell(c.c_pp, c.c_p, c.c, c.reduction, c.reduction_prev, space.nodes,
                                                   self.ops) for c in cells])
        out_c = space.nodes * cells[-1].c
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(out_c, k)
        supers = [cast(SuperDartsCell, c) for c in self.cells]
        self.groups = []
        self.unit_names, self.unit_labels = [], []
        n_edges = len(supers[0].inputs)
        for t, cell_type in enumerate(CELLS):
            mine = [c for c in supers if c.reduction == (t == 1)]
            for e in range(n_edges):
                j, i = supers[0].inputs[e]
                self.groups.append([cast(ChoiceBlock, c.edges[e]) for c in mine])
                self.unit_names.append(f"{cell_type}.node{j}<-{i}")
                self.unit_labels.append(self.ops)
        self.n_edges = n_edges
        self.init_alpha(torch.Generator().manual_seed(seed))

    def forward(self, x: Tensor) -> Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return cast(Tensor, self.classifier(torch.flatten(self.pool(s1), 1)))

    def input_shape(self) -> tuple[int, ...]:
        return (3, self.darts.resolution, self.darts.resolution)

    def _edge(self, j: int, i: int) -> int:
        """Unit offset of edge node j <- input i within one cell type."""
        return sum(2 + m for m in range(j)) + i

    def choices_of(self, arch: Architecture) -> list[int]:
        geno = self.darts.genotype(arch)
        out = [self.none] * (2 * self.n_edges)
        for t, cell_type in enumerate(CELLS):
            for j, node in enumerate(geno[cell_type]):
                for op, i in node:
                    out[t * self.n_edges + self._edge(j, i)] = self.ops.index(op)
        return out

    def arch_of(self, choices: Sequence[int]) -> Architecture:
        """Not defined for cell edges (a path may switch on any number of edges per node)."""
        raise NasforgeError("darts supernet: an architecture is derived from alpha (top-2 edges per node), "
                            "not from one op per edge; use derive()")

    def derive(self) -> Architecture:
        """Per node the top-2 incoming edges by their max non-``none`` weight, each with its best op."""
        p = self.probs().detach().cpu()
        raw = self.alpha.detach().cpu()
        keep = [o for o in range(len(self.ops)) if o != self.none]
        cells: list[list[tuple[str, int]]] = []
        for t in range(len(CELLS)):
            edges: list[tuple[str, int]] = []
            for j in range(self.darts.nodes):
                scored = []
                for i in range(2 + j):
                    u = t * self.n_edges + self._edge(j, i)
                    row = p[u, keep]
                    best = int(row.argmax())
                    # ties (e.g. edges fixed by perturbation selection) go to the larger raw alpha
                    scored.append((float(row[best]), float(raw[u, keep[best]]), i, self.ops[keep[best]]))
                top = sorted(scored, key=lambda s: (-s[0], -s[1], s[2]))[:2]
                edges += [(op, i) for _, _, i, op in sorted(top, key=lambda s: s[2])]
            cells.append(edges)
        return self.darts.arch_of(cells[0], cells[1])

    def to_standalone(self, arch: Architecture, num_classes: int | None = None) -> nn.Module:
        """The stand-alone network of ``arch`` (``space.build``) carrying this supernet's weights."""
        spec = self.darts.network_spec(arch, num_classes=num_classes)
        net: Any = spec.build()
        net.stem.load_state_dict(self.stem.state_dict())
        net.classifier.load_state_dict(self.classifier.state_dict())
        k = 0
        for cell_spec, live, sup in zip(spec.cells, spec.live(), self.cells, strict=True):
            if not live:
                continue
            std = net.cells[k]
            k += 1
            sup = cast(SuperDartsCell, sup)
            assert isinstance(cell_spec, DartsCell)
            if std.pre0 is not None:
                std.pre0.load_state_dict(sup.pre0.state_dict())
            if std.pre1 is not None:
                std.pre1.load_state_dict(sup.pre1.state_dict())
            e = 0
            for j, node in enumerate(cell_spec.nodes):
                for op, i in node:
                    if op == "none":
                        continue
                    blk = cast(ChoiceBlock, sup.edges[self._edge(j, i)])
                    std.edges[e].load_state_dict(blk.ops[self.ops.index(op)].state_dict())
                    e += 1
        return cast(nn.Module, net)
