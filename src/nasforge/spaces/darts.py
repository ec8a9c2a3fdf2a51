"""The DARTS cell space: a normal and a reduction cell, each with 4 nodes of 2 edges over 8 ops.

Node j (0-based) picks two distinct inputs among the two cell inputs (0, 1) and the j earlier nodes, and an
op for each edge; the cell outputs the concatenation of its nodes. Canonical string, one group per node
with its edges in input order, cells separated by ``;``::

    normal=|sep_conv_3x3~0|sep_conv_3x3~1|+|sep_conv_3x3~0|skip_connect~1|+|...|;reduce=|max_pool_3x3~0|...|

Decisions, per cell and node: ``inputs`` (one of the C(n, 2) input pairs), ``op1`` (the op on the lower
input), ``op2``. ``size()`` counts distinct encodings: (prod_j C(j + 2, 2) * M^2)^2 for M ops; like
NB201's 15,625 it does not merge cells that compute the same function (``none`` edges, isomorphisms).
``build`` gives DARTS' ``NetworkCIFAR`` (no auxiliary head) with options C, layers, stem multiplier.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Collection, Sequence
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.blocks._cell_ops import check_ops
from nasforge.blocks._cells import DartsCell, DartsNode
from nasforge.cost import Cost
from nasforge.errors import NasforgeError
from nasforge.spaces._base import Architecture, Decision, check_int, data_shape, register_space
from nasforge.spaces._cellnet import CellStackSpace, check_resolution, data_resolution

if TYPE_CHECKING:
    pass

DARTS_OPS: tuple[str, ...] = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)
CELLS = ("normal", "reduce")
# NASLib's op ids in its compact NB301 encoding ``[[(input, op) x8], [(input, op) x8]]``.
NASLIB_NB301_OPS: tuple[str, ...] = (
    "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)


@register_space("darts")
class DartsSpace(CellStackSpace):
    """The DARTS (NAS-Bench-301) cell space and its CIFAR network."""

    name = "darts"

    def __init__(self, C: int = 16, layers: int = 8, num_classes: int = 10, resolution: int = 32,
                 nodes: int = 4, ops: Any = DARTS_OPS, stem_multiplier: int = 3) -> None:
        self.C = check_int(self.name, "C", C, 1)
        self.layers = check_int(self.name, "layers", layers, 1)
        self.num_classes = check_int(self.name, "num_classes", num_classes, 1)
        self.nodes = check_int(self.name, "nodes", nodes, 1, 16)
        self.stem_multiplier = check_int(self.name, "stem_multiplier", stem_multiplier, 1)
        self.ops = check_ops(ops, "darts ops")
        self.resolution = check_resolution(self.name, resolution, self.layers)
        self.pairs = [tuple(combinations(range(2 + j), 2)) for j in range(self.nodes)]
        self._decisions: list[Decision] = []
        for cell in CELLS:
            for j in range(self.nodes):
                self._decisions += [Decision(f"{cell}.node{j}.inputs", self.pairs[j]),
                                    Decision(f"{cell}.node{j}.op1", self.ops),
                                    Decision(f"{cell}.node{j}.op2", self.ops)]
        self._costs: dict[tuple[tuple[int, ...], int, str], Cost] = {}

    def _fit(self, input_shape: Sequence[int], num_classes: int, keep: Collection[str],
             task: str) -> DartsSpace:
        """Classes from the data, resolution = the image side rounded up to halve at both reduction cells (the
        3-channel stem stays: grey images are repeated to 3 channels)."""
        _, side, k = data_shape(self.name, input_shape, num_classes)
        return type(self)(self.C, self.layers, self.num_classes if "num_classes" in keep else k,
                          self.resolution if "resolution" in keep else data_resolution(self.layers, side),
                          self.nodes, list(self.ops), self.stem_multiplier)

    # -- views -------------------------------------------------------------------------------------
    def decisions(self) -> list[Decision]:
        return list(self._decisions)

    def size_per_cell(self) -> int:
        return math.prod(len(p) * len(self.ops) ** 2 for p in self.pairs)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["size_per_cell"] = self.size_per_cell()
        d["size_counts"] = ("distinct encodings of the normal cell times those of the reduction cell; "
                             "cells with none edges or isomorphic nodes are not merged (as NB201's 15,625)")
        return d

    def genotype(self, arch: Architecture) -> dict[str, list[DartsNode]]:
        """The cells as DARTS genotype lists: per node two (op, input) edges, inputs ascending."""
        self._check_mine(arch)
        return {cell: list(self._nodes(arch.choices, k)) for k, cell in enumerate(CELLS)}

    def _nodes(self, choices: tuple[int, ...], k: int) -> tuple[DartsNode, ...]:
        out = []
        base = 3 * self.nodes * k
        for j in range(self.nodes):
            p, o1, o2 = choices[base + 3 * j: base + 3 * j + 3]
            a, b = self.pairs[j][p]
            out.append(((self.ops[o1], a), (self.ops[o2], b)))
        return tuple(out)

    def format(self, choices: tuple[int, ...]) -> str:
        cells = []
        for k, cell in enumerate(CELLS):
            groups = "+".join(f"|{e1[0]}~{e1[1]}|{e2[0]}~{e2[1]}|" for e1, e2 in self._nodes(choices, k))
            cells.append(f"{cell}={groups}")
        return ";".join(cells)

    def arch_of(self, normal: Any, reduce: Any) -> Architecture:
        """The architecture of two genotype lists of (op, input) edges, two per node in node order."""
        choices: list[int] = []
        for cell, edges in (("normal", normal), ("reduce", reduce)):
            edges = [tuple(e) for e in edges]
            if len(edges) != 2 * self.nodes:
                raise NasforgeError(f"darts: the {cell} genotype needs {2 * self.nodes} (op, input) edges, "
                                    f"got {len(edges)}")
            for j in range(self.nodes):
                choices += self._node_choices(cell, j, [(str(o), int(i)) for o, i in edges[2 * j: 2 * j + 2]])
        return self.decode(choices)

    def naslib_arch(self, compact: Any) -> Architecture:
        """The architecture of NASLib's compact NB301 encoding (a nested list or its string form)."""
        if isinstance(compact, str):
            try:
                compact = ast.literal_eval(compact)
            except (ValueError, SyntaxError):
                raise NasforgeError(f"darts: cannot read NASLib encoding {compact[:40]!r}") from None
        try:
            cells = [[(NASLIB_NB301_OPS[int(o)], int(i)) for i, o in cell] for cell in compact]
        except (TypeError, ValueError, IndexError):
            raise NasforgeError("darts: a NASLib encoding is two lists of (input, op id) pairs, op ids 0..6") from None
        if len(cells) != 2:
            raise NasforgeError(f"darts: a NASLib encoding has 2 cells, got {len(cells)}")
        return self.arch_of(cells[0], cells[1])

    def _node_choices(self, cell: str, j: int, edges: list[tuple[str, int]]) -> list[int]:
        n = 2 + j
        for op, i in edges:
            if op not in self.ops:
                raise NasforgeError(f"darts: unknown op {op!r} in {cell} node {j}; allowed: {', '.join(self.ops)}")
            if not 0 <= i < n:
                raise NasforgeError(f"darts: {cell} node {j} reads input {i}; allowed: 0..{n - 1}")
        (o1, a), (o2, b) = sorted(edges, key=lambda e: e[1])
        if a == b:
            raise NasforgeError(f"darts: {cell} node {j} reads input {a} twice; its two inputs must differ")
        return [self.pairs[j].index((a, b)), self.ops.index(o1), self.ops.index(o2)]

    def parse(self, text: str) -> Architecture:
        form = "normal=|op~i|op~j|+|...|;reduce=|op~i|op~j|+|...|"
        parts = text.strip().split(";")
        if len(parts) != 2:
            raise NasforgeError(f"darts: expected 2 cells separated by ';', got {len(parts)}; form: {form}")
        choices: list[int] = []
        for cell, part in zip(CELLS, parts, strict=True):
            head, sep, body = part.strip().partition("=")
            if not sep or head.strip() != cell:
                raise NasforgeError(f"darts: expected '{cell}=...' as cell {CELLS.index(cell) + 1}, got "
                                    f"{part.strip()[:30]!r}; form: {form}")
            groups = body.strip().split("+")
            if len(groups) != self.nodes:
                raise NasforgeError(f"darts: the {cell} cell has {len(groups)} nodes, expected {self.nodes}")
            for j, grp in enumerate(groups):
                toks = grp.split("|")
                if len(toks) != 4 or toks[0] or toks[3]:
                    raise NasforgeError(f"darts: {cell} node {j} must be |op~i|op~j| (2 edges), got {grp!r}")
                edges = []
                for tok in toks[1:3]:
                    op, tilde, idx = tok.partition("~")
                    if not tilde or not idx.isdigit():
                        raise NasforgeError(f"darts: bad edge {tok!r} in {cell} node {j}; expected op~input")
                    edges.append((op, int(idx)))
                choices += self._node_choices(cell, j, edges)
        return self.decode(choices)

    # -- networks ----------------------------------------------------------------------------------
    def make_cell(self, choices: tuple[int, ...], c_pp: int, c_p: int, c: int, reduction: bool,
                  reduction_prev: bool) -> DartsCell:
        return DartsCell(c_pp, c_p, c, reduction, reduction_prev, self._nodes(choices, 1 if reduction else 0))

    def sample(self, rng: np.random.Generator) -> Architecture:
        return self.decode([int(rng.integers(d.n)) for d in self._decisions])
