"""NAS-Bench-201: a 4-node cell with 6 edges, 5 ops each (15,625 cells), in NB201's macro network.

Canonical string: NB201's own form ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (node 1, 2, 3; ``op~i`` is the
edge from node i). Decisions: the 6 edges in string order. The network (``build``) is NB201's
``TinyNetwork``: stem 3x3 conv + BN, three stages of N cells at C, 2C, 4C channels with a ResNet basic
block (stride 2) between them, BN + ReLU, global pooling, linear. ``none`` edges are skipped (in the
analytic IR and in the module alike); a node whose edges are all ``none`` is a zero tensor.

The ``flops`` of the NASLib NB201 tables (NAS-Bench-Suite-Zero) come from tensorwatch's ``ModelStats``
(torchstat's counter), not from MACs: conv/linear MACs plus 2 per batch-norm element, 1 per ReLU
element, k*k per pooling output and C*(h+1)*(w+1) for the global pool (adds free). ``cost()`` reports
MACs; ``naslib_flops`` reproduces the tables' convention exactly. Params agree exactly (BN affine
weights counted).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.blocks import ConvBNAct, NetworkSpec
from nasforge.blocks._cell_ops import BNReLU, ResNetBasicBlock, make_op
from nasforge.blocks._cells import EDGES, NB201Cell
from nasforge.blocks._spec import Flatten, GlobalPool, Linear, Spec, part_of
from nasforge.cost import Cost, GraphBuilder
from nasforge.cost._cost import Part, chain
from nasforge.cost._ir import Shape
from nasforge.errors import NasforgeError
from nasforge.spaces._base import (
    Architecture,
    Decision,
    SearchSpace,
    check_int,
    data_shape,
    register_space,
    round_up,
)

if TYPE_CHECKING:
    from torch import nn

NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
_FORM = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"


def nb201_string(ops: tuple[str, ...]) -> str:
    """The NB201 string of 6 edge ops in string order."""
    o = ops
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


def naslib_to_nb201(encoding: tuple[int, ...] | list[int] | str) -> str:
    """NASLib's NB201 op-index tuple (e.g. ``"(4, 3, 3, 3, 2, 3)"``) as an NB201 string.

    NASLib's op ids are ``skip_connect, none, nor_conv_3x3, nor_conv_1x1, avg_pool_3x3`` over its edge list
    ``(1,2),(1,3),(1,4),(2,3),(2,4),(3,4)``, so entries 2 and 3 swap places in NB201's string order.
    """
    if isinstance(encoding, str):
        encoding = [int(t) for t in encoding.strip("()[] ").split(",")]
    t = tuple(int(v) for v in encoding)
    names = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
    if len(t) != 6 or any(not 0 <= v < 5 for v in t):
        raise NasforgeError(f"NASLib NB201 encoding must be 6 op ids in 0..4, got {encoding!r}")
    return nb201_string((names[t[0]], names[t[1]], names[t[3]], names[t[2]], names[t[4]], names[t[5]]))


_TOKEN = re.compile(r"^([A-Za-z0-9_]+)~(\d+)$")


@register_space("nb201")
class NB201Space(SearchSpace):
    """The NAS-Bench-201 cell space (size 5^6 = 15,625) in NB201's macro network."""

    name = "nb201"
    ops: tuple[str, ...] = NB201_OPS

    def __init__(self, C: int = 16, N: int = 5, num_classes: int = 10, resolution: int = 32) -> None:
        self.C = check_int("nb201", "C", C, 1)
        self.N = check_int("nb201", "N", N, 1)
        self.num_classes = check_int("nb201", "num_classes", num_classes, 1)
        self.resolution = check_int("nb201", "resolution", resolution, 4)
        if self.resolution % 4:
            raise NasforgeError(f"nb201 option resolution={self.resolution} must be a multiple of 4 (two halvings)")
        self._decisions = [Decision(f"edge_{dst}<-{src}", self.ops) for dst, src in EDGES]
        self._archs: dict[tuple[int, ...], Architecture] = {}
        self._parsed: dict[str, Architecture] = {}
        self._costs: dict[tuple[tuple[int, ...], int, str], Cost] = {}
        self._fixed: dict[int, tuple[list[Part], list[Shape]]] = {}

    # -- views -------------------------------------------------------------------------------------
    def decisions(self) -> list[Decision]:
        return list(self._decisions)

    def format(self, choices: tuple[int, ...]) -> str:
        return nb201_string(tuple(self.ops[c] for c in choices))

    def _arch(self, choices: tuple[int, ...]) -> Architecture:
        a = self._archs.get(choices)
        if a is None:
            a = Architecture(self.name, choices, self.format(choices))
            self._archs[choices] = a
        return a

    def decode(self, choices: Any) -> Architecture:
        key = tuple(int(c) for c in choices)
        a = self._archs.get(key)
        if a is not None:
            return a
        if len(key) != 6:
            raise NasforgeError(f"nb201: expected 6 choices (one per edge), got {len(key)}")
        for c, d in zip(key, self._decisions, strict=True):
            if not 0 <= c < 5:
                raise NasforgeError(f"nb201: choice {c} out of range for decision {d.name!r} (0..4)")
        return self._arch(key)

    def parse(self, text: str) -> Architecture:
        a = self._parsed.get(text)
        if a is None:
            a = self._arch(self._parse(text))
            self._parsed[text] = a
        return a

    def _parse(self, text: str) -> tuple[int, ...]:
        s = text.strip()
        if not (s.startswith("|") and s.endswith("|")):
            raise NasforgeError(f"nb201: arch string must start and end with '|', got {text!r}; form: {_FORM}")
        groups = s.split("+")
        if len(groups) != 3:
            raise NasforgeError(f"nb201: expected 3 nodes separated by '+', got {len(groups)} in {text!r}; "
                                f"form: {_FORM}")
        choices: list[int] = []
        for j, grp in enumerate(groups, start=1):
            if not (grp.startswith("|") and grp.endswith("|")) or len(grp) < 2:
                raise NasforgeError(f"nb201: node {j} must be written |op~0|...|, got {grp!r}; form: {_FORM}")
            toks = grp[1:-1].split("|")
            if len(toks) != j:
                raise NasforgeError(f"nb201: node {j} has {len(toks)} edges, expected {j}; form: {_FORM}")
            for i, tok in enumerate(toks):
                m = _TOKEN.match(tok)
                if m is None:
                    raise NasforgeError(f"nb201: bad edge {tok!r} at node {j}; expected op~{i}")
                op, src = m.group(1), int(m.group(2))
                if src != i:
                    raise NasforgeError(f"nb201: edge {tok!r} at node {j} must read node {i} "
                                        f"(edges in order ~0..~{j - 1})")
                if op not in self.ops:
                    raise NasforgeError(f"nb201: unknown op {op!r} on edge {j}<-{i}; allowed: {', '.join(self.ops)}")
                choices.append(self.ops.index(op))
        return tuple(choices)

    def arch_of(self, ops: tuple[str, ...] | list[str]) -> Architecture:
        """The architecture of 6 op names in string order."""
        return self.parse(nb201_string(tuple(ops)))

    # -- sampling (uniform, as the base, without the generic overhead) ---------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        return self._arch(tuple(int(v) for v in rng.integers(5, size=6)))

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        self._check_mine(arch)
        i = int(rng.integers(6))
        new = int(rng.integers(4))
        c = list(arch.choices)
        c[i] = new if new < c[i] else new + 1
        return self._arch(tuple(c))

    def size(self) -> int:
        return 5**6

    def same_computation_key(self, arch: Architecture) -> tuple[int, ...]:
        """Equal for cells that compute the same function: with no edge between the intermediate nodes 1 and 2
        (``none``), swapping them (with their edges) changes the string, not the computation. Latency noise
        ceilings compare such pairs (``hardware._transfer.noise_ceiling``)."""
        e01, e02, e12, e03, e13, e23 = arch.choices
        if self.ops[e12] != "none":
            return arch.choices
        a, b = sorted([(e01, e13), (e02, e23)])
        return (a[0], b[0], e12, e03, a[1], b[1])

    # -- networks ----------------------------------------------------------------------------------
    def _fit(self, input_shape: Sequence[int], num_classes: int, keep: Collection[str],
             task: str) -> NB201Space:
        """Classes from the data, resolution = the image side rounded up to a multiple of 4 (the 3-channel stem
        stays: grey images are repeated to 3 channels)."""
        _, side, k = data_shape(self.name, input_shape, num_classes)
        return type(self)(self.C, self.N, self.num_classes if "num_classes" in keep else k,
                          self.resolution if "resolution" in keep else round_up(side, 4))

    def input_shape(self, arch: Architecture | None = None, resolution: int | None = None) -> tuple[int, ...]:
        r = self.resolution if resolution is None else check_int("nb201", "resolution", resolution, 4)
        return (3, r, r)

    def network_spec(self, arch: Architecture, resolution: int | None = None,
                     num_classes: int | None = None) -> NetworkSpec:
        """The whole network as a spec (``emit`` gives the per-layer IR; ``build`` the module)."""
        self._check_mine(arch)
        r = self._resolution(resolution)
        k = self.num_classes if num_classes is None else check_int("nb201", "num_classes", num_classes, 1)
        ops = tuple(self.ops[c] for c in arch.choices)
        C, N = self.C, self.N
        stages: list[tuple[Spec, ...]] = []
        for s in range(3):
            c = C << s
            cells: list[Spec] = [NB201Cell(c, ops) for _ in range(N)]
            if s:
                cells.insert(0, ResNetBasicBlock(c // 2, c, 2))
            stages.append(tuple(cells))
        head: tuple[Spec, ...] = (BNReLU(4 * C), GlobalPool(), Flatten(), Linear(4 * C, k))
        return NetworkSpec("nb201", (3, r, r), (ConvBNAct(3, C, 3, 1, act="none"),), tuple(stages), head)

    def build(self, arch: Architecture, num_classes: int | None = None, **options: Any) -> nn.Module:
        if options:
            raise NasforgeError(f"nb201: unknown build option(s) {', '.join(options)}; the space options "
                                "C, N, num_classes, resolution are set on the space")
        return self.network_spec(arch, num_classes=num_classes).build()

    def _resolution(self, resolution: int | None) -> int:
        if resolution is None:
            return self.resolution
        r = check_int("nb201", "resolution", resolution, 4)
        if r % 4:
            raise NasforgeError(f"nb201: resolution={r} must be a multiple of 4 (two halvings)")
        return r

    # -- cost --------------------------------------------------------------------------------------
    def cost(self, arch: Architecture, resolution: int | None = None, precision: str = "fp32") -> Cost:
        """Analytic cost from cached parts: fixed layers once per resolution, cells from per-edge tables."""
        r = self._resolution(resolution)
        key = (arch.choices, r, precision)
        c = self._costs.get(key)
        if c is not None and arch.space == self.name:
            return c
        self._check_mine(arch)
        fixed = self._fixed.get(r)
        if fixed is None:
            fixed = self._fixed_parts(r)
            self._fixed[r] = fixed
        (stem, red1, red2, *head), shapes = fixed
        cells = [_cell_part(arch.choices, s) for s in shapes]
        N = self.N
        parts = [stem, *[cells[0]] * N, red1, *[cells[1]] * N, red2, *[cells[2]] * N, *head]
        c = chain(parts, precision)
        self._costs[key] = c
        return c

    def _fixed_parts(self, r: int) -> tuple[list[Part], list[Shape]]:
        C, k = self.C, self.num_classes
        stem = part_of(ConvBNAct(3, C, 3, 1, act="none"), (3, r, r))
        s1 = stem.out_shape
        red1 = part_of(ResNetBasicBlock(C, 2 * C, 2), s1)
        s2 = red1.out_shape
        red2 = part_of(ResNetBasicBlock(2 * C, 4 * C, 2), s2)
        s3 = red2.out_shape
        head: list[Part] = []
        shape = s3
        for spec in (BNReLU(4 * C), GlobalPool(), Flatten(), Linear(4 * C, k)):
            p = part_of(spec, shape)
            head.append(p)
            shape = p.out_shape
        return [stem, red1, red2, *head], [s1, s2, s3]

    def naslib_flops(self, arch: Architecture, resolution: int | None = None) -> int:
        """FLOPs as the NASLib NB201 tables count them (their ``flops`` x 1e6; see the module doc).

        That counter (tensorwatch's ``ModelStats``, from torchstat) counts conv and linear MACs, 2 per
        element of batch norm, 1 per element of ReLU, kernel-size per output element of pooling and
        C x (k_h + 1) x (k_w + 1) for global pooling; adds are free.
        """
        c = self.network_spec(arch, resolution).cost(layers=True)
        flops = c.macs
        for lc in c.layers:
            n = math.prod(lc.out_shape)
            if lc.op == "batchnorm":
                flops += 2 * n
            elif lc.op == "relu":
                flops += n
            elif lc.op in ("avgpool", "maxpool"):
                flops += lc.other_ops  # kernel-size ops per output element
            elif lc.op == "adaptive_avgpool":
                ch, h, w = lc.in_shape
                oh, ow = lc.out_shape[1:]
                flops += ch * oh * ow * (h // oh + 1) * (w // ow + 1)
        return flops


# -- the fast cell cost -------------------------------------------------------------------------------
# Every buffer of an NB201 cell (input, conv/pool/add/zero outputs) has the cell's shape S, so its
# activations and peak are (count x S) with counts that depend only on which edges are none, skip or a
# layer. Params, MACs and other ops add up over edges (+ S per add). Tests check this equals part_of.
_KIND = (0, 1, 2, 2, 2)  # none, skip, layer, layer, layer


@lru_cache(maxsize=1024)
def _pattern_units(kinds: tuple[int, ...]) -> tuple[int, int, int]:
    """(activations excl. input, peak incl. input, adds) in units of the cell's tensor size."""
    ops = tuple(("none", "skip_connect", "avg_pool_3x3")[k] for k in kinds)
    g = GraphBuilder((1, 1, 1))
    NB201Cell(1, ops).emit(g, 0)
    p = Part.of(g.nodes)
    adds = sum(1 for n in g.nodes if n.op == "add")
    return p.activations, p.peak, adds


@lru_cache(maxsize=256)
def _edge_table(shape: Shape) -> tuple[tuple[int, int, int], ...]:
    """(params, MACs, other ops) of each NB201 op on a tensor of ``shape``."""
    out = []
    for op in NB201_OPS:
        spec = make_op(op, shape[0], shape[0], 1) if op not in ("none", "skip_connect") else None
        if spec is None:
            out.append((0, 0, 0))
        else:
            p = part_of(spec, shape)
            out.append((p.params, p.macs, p.other_ops))
    return tuple(out)


@lru_cache(maxsize=65536)
def _cell_part(choices: tuple[int, ...], shape: Shape) -> Part:
    acts, peak, adds = _pattern_units(tuple(_KIND[c] for c in choices))
    tab = _edge_table(shape)
    s = shape[0] * shape[1] * shape[2]
    params = macs = other = 0
    for c in choices:
        p, m, o = tab[c]
        params += p
        macs += m
        other += o
    return Part(params, macs, other + adds * s, acts * s, peak * s, shape, shape)
