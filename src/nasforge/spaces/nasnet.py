"""The NASNet cell space: a normal and a reduction cell of B blocks, 5 decisions per block.

Each block takes two states (``input1``, ``input2``), applies an op to each (``op1``, ``op2``) and
combines the results (``combine``: add or concat along channels). State 0 is the output of the cell two
back, 1 the previous cell's output, 2 + k the k-th block of this cell; so block k chooses among 2 + k
inputs (or only 0 and 1 with ``cell_inputs_only=True``). The decision list is the 5-step sequence an RNN
controller emits per block (input 1, input 2, op 1, op 2, combine), normal cell first, then reduction.
Block outputs no later block reads are concatenated as the cell output. In the reduction cell ops on
the cell inputs have stride 2.

``size()`` counts distinct decision sequences of both cells: per cell prod_k (n_k^2 M^2 N) with
n_k = 2 + k (or 2), i.e. ((2*2*M*M*N)^B)^2 with inputs restricted. Canonical string, one group per
block (``op~input`` twice, then the combine op), cells separated by ``;``::

    normal=|sep_conv_3x3~0|skip_connect~1|add|+|...|;reduce=|max_pool_3x3~0|sep_conv_7x7~1|add|+|...|
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from nasforge.blocks._cell_ops import check_ops
from nasforge.blocks._cells import NasnetBlock, NasnetCell
from nasforge.cost import Cost
from nasforge.errors import NasforgeError
from nasforge.spaces._base import Architecture, Decision, check_int, data_shape, register_space
from nasforge.spaces._cellnet import CellStackSpace, check_resolution, data_resolution

if TYPE_CHECKING:
    pass

# The NASNet paper's op list (Zoph et al. 2018) minus the 1x3-then-3x1 conv.
NASNET_OPS: tuple[str, ...] = (
    "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "conv_7x1_1x7", "dil_conv_3x3",
    "avg_pool_3x3", "max_pool_3x3", "max_pool_5x5", "max_pool_7x7",
    "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7",
)
COMBINE_OPS: tuple[str, ...] = ("add", "concat")
CELLS = ("normal", "reduce")


@register_space("nasnet")
class NasnetSpace(CellStackSpace):
    """NASNet's cell search space (Zoph et al.) in a small DARTS-style CIFAR network."""

    name = "nasnet"

    def __init__(self, B: int = 5, ops: Any = NASNET_OPS, combine: Any = COMBINE_OPS,
                 cell_inputs_only: bool = False, C: int = 8, layers: int = 5, stem_multiplier: int = 3,
                 num_classes: int = 10, resolution: int = 32) -> None:
        self.B = check_int(self.name, "B", B, 1, 32)
        self.ops = check_ops(ops, "nasnet ops", allow_none=False)
        comb = tuple(str(c) for c in combine) if isinstance(combine, (list, tuple)) else ()
        if not comb or any(c not in COMBINE_OPS for c in comb) or len(set(comb)) != len(comb):
            raise NasforgeError(f"nasnet option combine={combine!r}: a non-empty list of distinct ops from "
                                f"{', '.join(COMBINE_OPS)}")
        self.combine = comb
        if not isinstance(cell_inputs_only, bool):
            raise NasforgeError(f"nasnet option cell_inputs_only={cell_inputs_only!r} must be true or false")
        self.cell_inputs_only = cell_inputs_only
        self.C = check_int(self.name, "C", C, 1)
        self.layers = check_int(self.name, "layers", layers, 1)
        self.stem_multiplier = check_int(self.name, "stem_multiplier", stem_multiplier, 1)
        self.num_classes = check_int(self.name, "num_classes", num_classes, 1)
        self.resolution = check_resolution(self.name, resolution, self.layers)
        self._decisions: list[Decision] = []
        for cell in CELLS:
            for k in range(self.B):
                inputs = tuple(range(2 if cell_inputs_only else 2 + k))
                p = f"{cell}.block{k}"
                self._decisions += [Decision(f"{p}.input1", inputs), Decision(f"{p}.input2", inputs),
                                    Decision(f"{p}.op1", self.ops), Decision(f"{p}.op2", self.ops),
                                    Decision(f"{p}.combine", self.combine)]
        self._costs: dict[tuple[tuple[int, ...], int, str], Cost] = {}

    def _fit(self, input_shape: Sequence[int], num_classes: int, keep: Collection[str],
             task: str) -> NasnetSpace:
        """Classes from the data, resolution = the image side rounded up to halve at both reduction cells (the
        3-channel stem stays: grey images are repeated to 3 channels)."""
        _, side, k = data_shape(self.name, input_shape, num_classes)
        return type(self)(self.B, list(self.ops), list(self.combine), self.cell_inputs_only, self.C, self.layers,
                          self.stem_multiplier, self.num_classes if "num_classes" in keep else k,
                          self.resolution if "resolution" in keep else data_resolution(self.layers, side))

    # -- views -------------------------------------------------------------------------------------
    def decisions(self) -> list[Decision]:
        return list(self._decisions)

    def size_per_cell(self) -> int:
        return math.prod(self._decisions[5 * k].n ** 2 * len(self.ops) ** 2 * len(self.combine)
                         for k in range(self.B))

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["size_per_cell"] = self.size_per_cell()
        d["size_counts"] = ("distinct decision sequences of the normal cell times those of the reduction cell; "
                             "swapping a block's two inputs gives another sequence")
        return d

    def blocks(self, arch: Architecture) -> dict[str, list[NasnetBlock]]:
        """Both cells as lists of (input 1, input 2, op 1, op 2, combine)."""
        self._check_mine(arch)
        return {cell: list(self._blocks(arch.choices, k)) for k, cell in enumerate(CELLS)}

    def _blocks(self, choices: tuple[int, ...], k: int) -> tuple[NasnetBlock, ...]:
        out = []
        base = 5 * self.B * k
        for b in range(self.B):
            i1, i2, o1, o2, cb = choices[base + 5 * b: base + 5 * b + 5]
            out.append((i1, i2, self.ops[o1], self.ops[o2], self.combine[cb]))
        return tuple(out)

    def format(self, choices: tuple[int, ...]) -> str:
        return ";".join(
            f"{cell}=" + "+".join(f"|{o1}~{i1}|{o2}~{i2}|{cb}|" for i1, i2, o1, o2, cb in self._blocks(choices, k))
            for k, cell in enumerate(CELLS)
        )

    def parse(self, text: str) -> Architecture:
        form = "normal=|op~i|op~j|add|+|...|;reduce=|...|"
        parts = text.strip().split(";")
        if len(parts) != 2:
            raise NasforgeError(f"nasnet: expected 2 cells separated by ';', got {len(parts)}; form: {form}")
        choices: list[int] = []
        for cell, part in zip(CELLS, parts, strict=True):
            head, sep, body = part.strip().partition("=")
            if not sep or head.strip() != cell:
                raise NasforgeError(f"nasnet: expected '{cell}=...' as cell {CELLS.index(cell) + 1}, got "
                                    f"{part.strip()[:30]!r}; form: {form}")
            groups = body.strip().split("+")
            if len(groups) != self.B:
                raise NasforgeError(f"nasnet: the {cell} cell has {len(groups)} blocks, expected B={self.B}")
            for k, grp in enumerate(groups):
                toks = grp.split("|")
                if len(toks) != 5 or toks[0] or toks[4]:
                    raise NasforgeError(f"nasnet: {cell} block {k} must be |op~i|op~j|combine|, got {grp!r}")
                n = self._decisions[5 * k].n
                ins, ops = [], []
                for tok in toks[1:3]:
                    op, tilde, idx = tok.partition("~")
                    if not tilde or not idx.isdigit():
                        raise NasforgeError(f"nasnet: bad input {tok!r} in {cell} block {k}; expected op~input")
                    if op not in self.ops:
                        raise NasforgeError(f"nasnet: unknown op {op!r} in {cell} block {k}; allowed: "
                                            f"{', '.join(self.ops)}")
                    if int(idx) >= n:
                        raise NasforgeError(f"nasnet: {cell} block {k} reads state {idx}; allowed: 0..{n - 1}")
                    ins.append(int(idx))
                    ops.append(self.ops.index(op))
                if toks[3] not in self.combine:
                    raise NasforgeError(f"nasnet: unknown combine op {toks[3]!r} in {cell} block {k}; allowed: "
                                        f"{', '.join(self.combine)}")
                choices += [ins[0], ins[1], ops[0], ops[1], self.combine.index(toks[3])]
        return self.decode(choices)

    # -- networks ----------------------------------------------------------------------------------
    def make_cell(self, choices: tuple[int, ...], c_pp: int, c_p: int, c: int, reduction: bool,
                  reduction_prev: bool) -> NasnetCell:
        return NasnetCell(c_pp, c_p, c, reduction, reduction_prev, self._blocks(choices, 1 if reduction else 0))
