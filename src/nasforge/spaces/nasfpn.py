"""``nasfpn``: the NAS-FPN feature-pyramid space (Ghiasi, Lin, Le, CVPR 2019) with an FCOS head, for detection.

The network: a backbone gives levels P3..P5 (strides 8, 16, 32; each projected to ``channels`` by a 1x1 conv + BN),
extended to P6 and P7 by stride-2 3x3 convs as RetinaNet (P6 from C5, P7 from P6). ``levels`` pyramid levels are
used, from P3 up (default 5: P3-P7; ``for_data`` uses fewer on small inputs: the coarsest stride is at most the
image side, and at least P3-P4). Then ``cells`` merging cells (default 7, as published): each picks two distinct
maps from the growing pool (the pyramid inputs, then every earlier cell's output), an output level, and a binary
op: ``sum``, or global-pooling attention ``att`` (the coarser input plus the finer one times the sigmoid of the
coarser one's global max; at equal levels the first input is the coarser). Inputs are resampled to the cell's
level (max pooling down, nearest upsampling up); the merge is followed by ReLU, 3x3 conv, BN.

Outputs: the output at each level is the last cell at that level (a level no cell writes outputs its input map),
and, as in the paper's reference implementation, an output cell also adds every map at its level that nothing has
read yet, so no cell is wasted. The published network puts its last five cells at the five levels, so this rule
reproduces it exactly (``named_archs()['published']``). The head is FCOS (anchor-free, one head shared by every
level: towers of ``head_convs`` conv + GN + ReLU), giving per level (N, num_classes + 5, H/s, W/s) as the dense
contract says; the module has ``strides``.

Encoding: per cell two decisions, ``cK.level`` (P3..) and ``cK.merge`` (the op and an unordered input pair, e.g.
``att(P4,c1)``). Every choice tuple is a distinct architecture (attention is symmetric given the levels), so
``size() = prod_k levels * 2 * C(levels + k, 2)`` exactly, and the base class's sampling, mutation, crossover and
neighbours are uniform and valid. Canonical string: cells joined by ``|``, each ``<level>=<op>(<in>,<in>)``, e.g.
the published ``P4=att(P4,P6)|P4=sum(P4,c1)|P3=sum(P3,c2)|P4=sum(c2,c3)|P5=att(c3,c4)|P7=att(c2,c5)|P6=att(c5,c6)``.

Baselines built with the same backbone, channels and head (``neck`` option): ``fpn`` (a plain top-down FPN over
the backbone levels, written as sum cells of the same kind, as the NAS-FPN paper draws FPN; P6/P7 as above) and
``none`` (no neck: the head on the backbone's last level only, its 1x1 projection). Each is a one-architecture
space whose string is the neck's name.

Backbones: ``tiny`` (default; a 5-stage ResNet of basic blocks, 16-24-32-48-64 channels, light enough for CPU)
or any ``nasforge.zoo`` network with stages at strides 8, 16 and 32 (e.g. ``resnet18``, ``mobilenet_v2``; their
stems take 3 channels, grey data is repeated).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from nasforge.blocks import BasicBlock, ConvBNAct
from nasforge.blocks._cell_ops import ReLUConvBN
from nasforge.blocks._dense import FCOSHead, MergeCell, PyramidSpec, Seq, default_post, level_sizes
from nasforge.blocks._spec import Spec, part_of
from nasforge.cost import Cost
from nasforge.errors import NasforgeError
from nasforge.spaces._base import Architecture, Decision, SearchSpace, data_shape, register_space
from nasforge.spaces._staged import check_int

if TYPE_CHECKING:
    from torch import nn

NECKS = ("cells", "fpn", "none")
OPS = {"sum": "sum", "att": "attention"}
FIRST_LEVEL = 3  # P3: stride 8
#: The published NAS-FPN (Ghiasi et al. 2019, Fig. 6/7f; the reference implementation's NASFPN_BLOCK_SPECS)
PUBLISHED = "P4=att(P4,P6)|P4=sum(P4,c1)|P3=sum(P3,c2)|P4=sum(c2,c3)|P5=att(c3,c4)|P7=att(c2,c5)|P6=att(c5,c6)"
TINY_CHANNELS = (16, 24, 32, 48, 64)  # stem (1/2), then 1/4, 1/8 (C3), 1/16 (C4), 1/32 (C5)
_CELL = re.compile(r"P(\d+)=(sum|att)\(([Pc]\d+),([Pc]\d+)\)")


def max_levels(side: int) -> int:
    """Pyramid levels for images of ``side`` pixels: strides 8, 16, ... up to the side (2 to 5 levels)."""
    return max(2, min(5, side.bit_length() - 1 - 2))


@register_space("nasfpn")
class NasFpnSpace(SearchSpace):
    """NAS-FPN merging cells on a backbone with an FCOS head; see the module docstring."""

    name = "nasfpn"
    tasks = ("detection",)
    task = "detection"

    def __init__(self, cells: int = 7, levels: int = 5, channels: int = 32, head_convs: int = 2,
                 backbone: str = "tiny", neck: str = "cells", resolution: int = 128, in_channels: int = 3,
                 num_classes: int = 10) -> None:
        n = self.name
        self.cells = check_int(n, "cells", cells, 1, 30)
        self.levels = check_int(n, "levels", levels, 2, 5)
        self.channels = check_int(n, "channels", channels, 1)
        self.head_convs = check_int(n, "head_convs", head_convs, 0, 8)
        self.resolution = check_int(n, "resolution", resolution, 8)
        self.in_channels = check_int(n, "in_channels", in_channels, 1)
        self.num_classes = check_int(n, "num_classes", num_classes, 1)
        if neck not in NECKS:
            raise NasforgeError(f"{n}: option 'neck' has bad value {neck!r}; allowed: {', '.join(NECKS)}")
        self.neck = neck
        self.backbone = backbone
        self._segments, self._seg_channels = _backbone(backbone, self.in_channels, min(self.levels, 3))
        if backbone != "tiny" and self.in_channels != 3:
            raise NasforgeError(f"{n}: backbone {backbone!r} takes 3 input channels, got in_channels={in_channels}; "
                                "use backbone=tiny for other channel counts")
        self.level_names = tuple(f"P{FIRST_LEVEL + i}" for i in range(self.levels))
        decs: list[Decision] = []
        self._pairs: list[list[tuple[int, int]]] = []
        if neck == "cells":
            for k in range(self.cells):
                pool = self._pool_names(k)
                pairs = list(itertools.combinations(range(len(pool)), 2))
                self._pairs.append(pairs)
                merges = tuple(f"{op}({pool[a]},{pool[b]})" for op in OPS for a, b in pairs)
                decs += [Decision(f"c{k + 1}.level", self.level_names), Decision(f"c{k + 1}.merge", merges)]
        self._decisions = decs

    # -- fitting to data -----------------------------------------------------------------------------
    def _fit(self, input_shape: Sequence[int], num_classes: int, keep: Collection[str], task: str) -> NasFpnSpace:
        """Input channels (the tiny backbone's; zoo backbones keep 3), classes, resolution (the image side) and
        pyramid levels (strides up to the side: 128 px -> P3-P7, 64 -> P3-P6, ...) from the data."""
        c, side, k = data_shape(self.name, input_shape, num_classes)
        res = self.resolution if "resolution" in keep else max(8, side)
        return type(self)(self.cells, self.levels if "levels" in keep else max_levels(res), self.channels,
                          self.head_convs, self.backbone, self.neck, res,
                          self.in_channels if "in_channels" in keep or self.backbone != "tiny" else c,
                          self.num_classes if "num_classes" in keep else k)

    # -- the algorithm's and the user's views ----------------------------------------------------------
    def decisions(self) -> list[Decision]:
        return list(self._decisions)

    def _pool_names(self, k: int) -> list[str]:
        """Names of the maps cell ``k`` (0-based) may read: the pyramid inputs, then cells c1..ck."""
        return [*self.level_names, *(f"c{i + 1}" for i in range(k))]

    def cell_list(self, arch: Architecture) -> list[tuple[int, str, int, int]]:
        """Per cell: (level index, op name ``sum``/``attention``, input a, input b) with pool indices a < b."""
        self._check_mine(arch)
        return self._cells_of(arch.choices)

    def _cells_of(self, choices: Sequence[int]) -> list[tuple[int, str, int, int]]:
        if self.neck == "fpn":
            return self._fpn_cells()
        out = []
        for k in range(len(choices) // 2):
            level, merge = choices[2 * k], choices[2 * k + 1]
            pairs = self._pairs[k]
            op, (a, b) = list(OPS.values())[merge // len(pairs)], pairs[merge % len(pairs)]
            out.append((level, op, a, b))
        return out

    def _fpn_cells(self) -> list[tuple[int, str, int, int]]:
        """The plain FPN's top-down path as sum cells: from the top backbone level down, each level's input plus
        the previous (upsampled) result."""
        top = len(self._segments) - 1
        cells = []
        prev = top
        for lv in range(top - 1, -1, -1):
            cells.append((lv, "sum", lv, prev))
            prev = self.levels + len(cells) - 1
        return cells

    def format(self, choices: tuple[int, ...]) -> str:
        if self.neck != "cells":
            return self.neck
        parts = []
        for k, (level, op, a, b) in enumerate(self._cells_of(choices)):
            pool = self._pool_names(k)
            parts.append(f"{self.level_names[level]}={'att' if op == 'attention' else 'sum'}({pool[a]},{pool[b]})")
        return "|".join(parts)

    def parse(self, text: str) -> Architecture:
        text = text.strip()
        if self.neck != "cells":
            if text != self.neck:
                raise NasforgeError(f"{self.name} with neck={self.neck} has one architecture, {self.neck!r}; "
                                    f"got {text!r}")
            return self.decode([])
        toks = text.split("|")
        if len(toks) != self.cells:
            raise NasforgeError(f"{self.name}: expected {self.cells} cells joined by '|', got {len(toks)} in {text!r}")
        choices: list[int] = []
        for k, tok in enumerate(toks):
            m = _CELL.fullmatch(tok.strip())
            if m is None:
                raise NasforgeError(f"{self.name}: cell {k + 1} {tok!r} is malformed; expected "
                                    "P<level>=<sum|att>(<input>,<input>), e.g. P4=sum(P4,c1)")
            level = f"P{m.group(1)}"
            if level not in self.level_names:
                raise NasforgeError(f"{self.name}: cell {k + 1} has level {level}; allowed: "
                                    f"{', '.join(self.level_names)}")
            pool = self._pool_names(k)
            ins = []
            for name in (m.group(3), m.group(4)):
                if name not in pool:
                    raise NasforgeError(f"{self.name}: cell {k + 1} reads {name}; allowed: {', '.join(pool)}")
                ins.append(pool.index(name))
            a, b = sorted(ins)
            if a == b:
                raise NasforgeError(f"{self.name}: cell {k + 1} reads {pool[a]} twice; its two inputs must differ")
            pairs = self._pairs[k]
            op_index = list(OPS).index(m.group(2))
            choices += [self.level_names.index(level), op_index * len(pairs) + pairs.index((a, b))]
        return self.decode(choices)

    def named_archs(self) -> dict[str, Architecture]:
        """``published``: the NAS-FPN of the paper (needs the default 7 cells and 5 levels); the baseline
        spaces' one architecture under its neck's name."""
        if self.neck != "cells":
            return {self.neck: self.decode([])}
        if self.cells == 7 and self.levels == 5:
            return {"published": self.parse(PUBLISHED)}
        return {}

    # -- the network ---------------------------------------------------------------------------------
    def input_shape(self, arch: Architecture | None = None) -> tuple[int, ...]:
        return (self.in_channels, self.resolution, self.resolution)

    def _plan(self, choices: Sequence[int]) -> tuple[list[MergeCell], list[int]]:
        """The merging cells (with the unconnected maps each output cell adds) and the pool index of each output
        level (the last cell at the level, else its input map), following the reference implementation."""
        if self.neck == "none":
            return [], [0]
        cells = self._cells_of(choices)
        last = {level: k for k, (level, _, _, _) in enumerate(cells)}
        levels = list(range(self.levels))
        reads = [0] * self.levels
        out: list[MergeCell] = []
        for k, (level, op, a, b) in enumerate(cells):
            reads[a] += 1
            reads[b] += 1
            extra: list[int] = []
            if last[level] == k:
                for j, (lv, n) in enumerate(zip(levels, reads, strict=True)):
                    if n == 0 and lv == level:
                        extra.append(j)
                        reads[j] += 1
            out.append(MergeCell(level, a, b, op, tuple(extra)))
            levels.append(level)
            reads.append(0)
        outputs = [self.levels + last[lv] if lv in last else lv for lv in range(self.levels)]
        return out, outputs

    def network_spec(self, arch: Architecture, resolution: int | None = None,
                     num_classes: int | None = None) -> PyramidSpec:
        """The detector as a ``PyramidSpec`` (what ``build`` builds and ``cost`` costs)."""
        self._check_mine(arch)
        res = self.resolution if resolution is None else check_int(self.name, "resolution", resolution, 8)
        k = self.num_classes if num_classes is None else check_int(self.name, "num_classes", num_classes, 1)
        c = self.channels
        cells, outputs = self._plan(arch.choices)
        nseg = len(self._segments)
        if self.neck == "none":
            laterals: tuple[tuple[int, Spec], ...] = ((nseg - 1, ConvBNAct(self._seg_channels[-1], c, 1, act="none")),)
            extras: tuple[Spec, ...] = ()
            strides: tuple[int, ...] = (2 ** (FIRST_LEVEL + nseg - 1),)
            sizes = level_sizes(res, FIRST_LEVEL + nseg - 1, 1)
        else:
            laterals = tuple((i, ConvBNAct(ch, c, 1, act="none")) for i, ch in enumerate(self._seg_channels))
            more = self.levels - nseg
            extras = tuple(ConvBNAct(self._seg_channels[-1], c, 3, 2, act="none") if i == 0 else ReLUConvBN(c, c, 3, 2)
                           for i in range(more))
            strides = tuple(2 ** (FIRST_LEVEL + i) for i in range(self.levels))
            sizes = level_sizes(res, FIRST_LEVEL, self.levels)
        return PyramidSpec(arch.text, (self.in_channels, res, res), self._segments, laterals, extras, tuple(cells),
                           default_post(c), tuple(outputs), FCOSHead(c, k, self.head_convs), sizes, strides)

    def cost(self, arch: Architecture, resolution: int | None = None, precision: str = "fp32") -> Cost:
        """Analytic cost of the whole detector (backbone, neck, head; peak memory included), from cached parts."""
        return self.network_spec(arch, resolution).cost(precision)

    def build(self, arch: Architecture, num_classes: int | None = None, **options: Any) -> nn.Module:
        if options:
            raise NasforgeError(f"{self.name}: unknown build option(s) {', '.join(sorted(options))}; allowed: none")
        return self.network_spec(arch, num_classes=num_classes).build()

    def graph(self, arch: Architecture) -> dict[str, list[dict[str, Any]]]:
        """The chosen topology for drawing: nodes (pyramid inputs, cells, outputs; each with its level ``P<l>``)
        and edges (``input`` edges of the merges, ``unconnected`` maps an output cell adds, ``output`` edges)."""
        self._check_mine(arch)
        cells, outputs = self._plan(arch.choices)
        inputs = [self.level_names[len(self._segments) - 1]] if self.neck == "none" else list(self.level_names)
        names = [*inputs, *(f"c{i + 1}" for i in range(len(cells)))]
        nodes: list[dict[str, Any]] = [{"id": n, "kind": "input", "level": n} for n in inputs]
        edges: list[dict[str, Any]] = []
        for k, cell in enumerate(cells):
            me = names[self.levels + k]
            nodes.append({"id": me, "kind": cell.op, "level": self.level_names[cell.level]})
            edges += [{"from": names[i], "to": me, "kind": "input"} for i in (cell.a, cell.b)]
            edges += [{"from": names[j], "to": me, "kind": "unconnected"} for j in cell.extra]
        out_levels = inputs if self.neck == "none" else list(self.level_names)
        for level, j in zip(out_levels, outputs, strict=True):
            nodes.append({"id": f"out{level}", "kind": "output", "level": level})
            edges.append({"from": names[j], "to": f"out{level}", "kind": "output"})
        return {"nodes": nodes, "edges": edges}

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(neck=self.neck, backbone=self.backbone, levels=list(self.level_names), channels=self.channels)
        return d

    # -- size --------------------------------------------------------------------------------------
    def size(self) -> int:
        return math.prod(d.n for d in self._decisions)


def _backbone(name: str, in_channels: int, count: int) -> tuple[tuple[Spec, ...], tuple[int, ...]]:
    """(segments, their output channels): segment i ends at stride 2**(3 + i), for ``count`` segments."""
    if name == "tiny":
        c = TINY_CHANNELS
        first = Seq((ConvBNAct(in_channels, c[0], 3, 2), BasicBlock(c[0], c[1], 2), BasicBlock(c[1], c[2], 2)))
        segs: list[Spec] = [first, BasicBlock(c[2], c[3], 2), BasicBlock(c[3], c[4], 2)]
        return tuple(segs[:count]), c[2:2 + count]
    from nasforge.zoo import create, list_models

    if name not in list_models():
        raise NasforgeError(f"nasfpn: option 'backbone' has bad value {name!r}; allowed: tiny, "
                            f"{', '.join(list_models())}")
    probe = 256
    net = create(name, 10, probe)
    blocks = [*net.stem, *(b for st in net.stages for b in st)]
    shape: tuple[int, ...] = net.input_shape
    ends: dict[int, tuple[int, int]] = {}  # stride -> (index past the last block at that stride, channels)
    for i, b in enumerate(blocks):
        shape = part_of(b, shape).out_shape
        if len(shape) == 3:
            ends[probe // shape[1]] = (i + 1, shape[0])
    segs = []
    chans = []
    start = 0
    for lv in range(count):
        hit = ends.get(2 ** (FIRST_LEVEL + lv))
        if hit is None:
            raise NasforgeError(f"nasfpn: backbone {name!r} has no stage at stride {2 ** (FIRST_LEVEL + lv)}; "
                                "it needs stages at strides 8, 16 and 32")
        segs.append(Seq(tuple(blocks[start:hit[0]])))
        chans.append(hit[1])
        start = hit[0]
    return tuple(segs), tuple(chans)
