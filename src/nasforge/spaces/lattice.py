"""``lattice``: a searchable network topology as in Auto-DeepLab.

A stem brings the input to 1/4 of its resolution (level 0). Then ``layers`` cells each run at one level
of the lattice: level ``l`` is 1/(4 * 2**l) of the input with ``base_channels * 2**l`` channels. From one
layer to the next the path goes ``down`` (one level coarser: a stride-2 3x3 conv), ``stay``, or ``up`` (one
level finer: nearest upsampling to the finer level's size, then a 1x1 conv), within the lattice's bounds.
Each cell is then a ResNet basic block at its level. An architecture is such a path.

Decisions: one per layer, choices ``down``, ``stay``, ``up``. Moves that would leave the lattice are
clamped to ``stay`` (so every choice tuple decodes to a valid path; the canonical tuple is the clamped
one). ``size()`` counts the valid paths by dynamic programming (exact Python ints for any ``layers``),
``sample`` draws a path uniformly by the same counts, ``mutate`` changes one move while keeping the
whole (shifted) rest of the path inside the lattice, and ``crossover`` swaps whole segments between
layers where both parents sit at the same level (so each move comes from one parent and the child is
valid). Canonical string: the downsampling factor after each layer, e.g. ``8-8-16-8-16-32-32-16``.

``head="classification"`` ends in global pooling and a linear layer; ``head="dense"`` upsamples back to
1/4 and applies a 1x1 conv to ``num_classes`` channels (a per-pixel prediction map).

``task="segmentation"`` (``for_data(..., task="segmentation")``) builds a dense-prediction network as
Auto-DeepLab: at the path's end an ASPP-lite (1x1 and 3x3 dilation-2 and -4 branches plus image pooling, fused to
``2 * base_channels`` channels), a 1x1 conv to ``num_classes`` logits, and bilinear upsampling to the input's
resolution: logits (N, num_classes, H, W), class 0 the background (the dense contract). ``named_archs()`` has
``down-up``, the fixed downsample-then-upsample path (as deep as the layers allow, back to 1/4 at the end): the
baseline a searched path is compared with.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.blocks import BasicBlock, ConvBNAct, NetworkSpec
from nasforge.blocks._dense import ASPPLite, Upsample
from nasforge.blocks._spec import Conv, Flatten, GlobalPool, Linear, Spec
from nasforge.cost import Cost
from nasforge.cost._cost import Part, chain
from nasforge.errors import NasforgeError
from nasforge.spaces._base import Architecture, Decision, SearchSpace, check_task, data_shape, register_space
from nasforge.spaces._staged import check_int, fold

if TYPE_CHECKING:
    from torch import nn

MOVES = ("down", "stay", "up")
_DELTA = (1, 0, -1)  # level change of each move
HEADS = ("classification", "dense")


@register_space("lattice")
class LatticeSpace(SearchSpace):
    """Paths over a lattice of downsampling levels (1/4 .. 1/(4 * 2**(levels-1))); see the module docstring."""

    name = "lattice"
    tasks = ("classification", "segmentation")

    def __init__(self, layers: int = 12, levels: int = 4, base_channels: int = 16, resolution: int = 64,
                 in_channels: int = 3, num_classes: int = 10, head: str = "classification",
                 task: str = "classification") -> None:
        self.layers = check_int("lattice", "layers", layers, 1, 10_000)
        self.levels = check_int("lattice", "levels", levels, 1, 8)
        self.base_channels = check_int("lattice", "base_channels", base_channels, 1)
        self.resolution = check_int("lattice", "resolution", resolution, 4)
        self.in_channels = check_int("lattice", "in_channels", in_channels, 1)
        self.num_classes = check_int("lattice", "num_classes", num_classes, 1)
        if head not in HEADS:
            raise NasforgeError(f"lattice: option 'head' has bad value {head!r}; allowed: {', '.join(HEADS)}")
        self.head = head
        if check_task(task) not in self.tasks:
            raise NasforgeError(f"space 'lattice' cannot serve task {task!r} (it serves: {', '.join(self.tasks)})")
        self.task = task
        # spatial size of each level: the stem's two stride-2 convs, then one stride-2 conv per level
        sizes = [_down(_down(self.resolution))]
        for _ in range(1, self.levels):
            sizes.append(_down(sizes[-1]))
        self.sizes = tuple(sizes)
        self._decisions = [Decision(f"layer{i + 1}", MOVES) for i in range(self.layers)]
        # ways[i][l]: number of valid continuations of layers i+1..L from level l after layer i
        ways = [[1] * self.levels]
        for _ in range(self.layers):
            nxt = ways[0]
            ways.insert(0, [sum(nxt[m] for m in (lv - 1, lv, lv + 1) if 0 <= m < self.levels)
                            for lv in range(self.levels)])
        self._ways = ways
        self._parts: dict[tuple[Any, ...], Part] = {}  # stem, (from, to) cells and heads, filled on first cost
        self._at: dict[int, LatticeSpace] = {}  # the same lattice at other resolutions

    def _fit(self, input_shape: Sequence[int], num_classes: int, keep: Collection[str],
             task: str) -> LatticeSpace:
        """Input channels, classes and resolution (the image side, at least 4) from the data."""
        c, side, k = data_shape(self.name, input_shape, num_classes)
        return type(self)(self.layers, self.levels, self.base_channels,
                          self.resolution if "resolution" in keep else max(4, side),
                          self.in_channels if "in_channels" in keep else c,
                          self.num_classes if "num_classes" in keep else k, self.head, task)

    # -- decisions and paths -----------------------------------------------------------------------
    def decisions(self) -> list[Decision]:
        return list(self._decisions)

    def canonical(self, choices: Any) -> tuple[int, ...]:
        """Moves that would leave the lattice become ``stay``."""
        out = []
        level = 0
        for c in choices:
            c = int(c)
            nxt = level + _DELTA[c]
            if not 0 <= nxt < self.levels:
                c, nxt = 1, level
            out.append(c)
            level = nxt
        return tuple(out)

    def path(self, arch: Architecture) -> list[int]:
        """The level after each layer (0 = 1/4)."""
        self._check_mine(arch)
        return _levels(arch.choices)

    def _from_levels(self, levels: list[int]) -> Architecture:
        prev = 0
        c = []
        for lv in levels:
            c.append(_DELTA.index(lv - prev))
            prev = lv
        t = tuple(c)
        return Architecture(self.name, t, self.format(t))

    def format(self, choices: tuple[int, ...]) -> str:
        return "-".join(str(4 << lv) for lv in _levels(choices))

    def parse(self, text: str) -> Architecture:
        allowed = [str(4 << lv) for lv in range(self.levels)]
        toks = text.strip().split("-")
        if len(toks) != self.layers:
            raise NasforgeError(f"lattice: expected {self.layers} downsampling factors joined by '-', got {len(toks)} "
                                f"in {text!r}")
        levels = []
        prev = 0
        for i, t in enumerate(toks):
            if t not in allowed:
                raise NasforgeError(f"lattice: layer {i + 1} has factor {t!r}; allowed: {', '.join(allowed)}")
            lv = allowed.index(t)
            if abs(lv - prev) > 1:
                raise NasforgeError(f"lattice: layer {i + 1} jumps from 1/{4 << prev} to 1/{t}; each layer moves at "
                                    "most one level (x2 or /2)")
            levels.append(lv)
            prev = lv
        return self._from_levels(levels)

    # -- size, sampling, variation -------------------------------------------------------------------
    def size(self) -> int:
        return self._ways[0][0]

    def enumerate(self) -> Iterator[Architecture]:
        def walk(level: int, acc: list[int]) -> Iterator[list[int]]:
            if len(acc) == self.layers:
                yield acc
                return
            for m in (level + 1, level, level - 1):
                if 0 <= m < self.levels:
                    yield from walk(m, [*acc, m])

        for levels in walk(0, []):
            yield self._from_levels(levels)

    def sample(self, rng: np.random.Generator) -> Architecture:
        """Uniform over valid paths: each next level with probability (its continuations) / (all continuations)."""
        u = rng.random(self.layers).tolist()
        level = 0
        levels = []
        for i in range(self.layers):
            opts = [m for m in (level + 1, level, level - 1) if 0 <= m < self.levels]
            total = self._ways[i][level]
            acc = 0.0
            pick = opts[-1]
            for m in opts:
                acc += self._ways[i + 1][m] / total
                if u[i] < acc:
                    pick = m
                    break
            levels.append(pick)
            level = pick
        return self._from_levels(levels)

    def _moves(self, arch: Architecture) -> list[tuple[int, int]]:
        """Every (layer, new move) that changes one move and keeps the shifted rest of the path valid."""
        levels = _levels(arch.choices)
        lo = levels[:]
        hi = levels[:]
        for i in range(self.layers - 2, -1, -1):
            lo[i] = min(lo[i], lo[i + 1])
            hi[i] = max(hi[i], hi[i + 1])
        out = []
        for i, c in enumerate(arch.choices):
            for new in range(3):
                shift = _DELTA[new] - _DELTA[c]
                if new != c and lo[i] + shift >= 0 and hi[i] + shift < self.levels:
                    out.append((i, new))
        return out

    def _with(self, arch: Architecture, i: int, new: int) -> Architecture:
        c = list(arch.choices)
        c[i] = new
        t = tuple(c)
        return Architecture(self.name, t, self.format(t))

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """Change one move; the rest of the path shifts by the change and must stay in the lattice."""
        self._check_mine(arch)
        opts = self._moves(arch)
        if not opts:
            return arch
        i, new = opts[int(rng.integers(len(opts)))]
        return self._with(arch, i, new)

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        self._check_mine(arch)
        return [self._with(arch, i, new) for i, new in self._moves(arch)]

    def crossover(self, a: Architecture, b: Architecture, rng: np.random.Generator) -> Architecture:
        """Segments between layers where both paths are at the same level come whole from one parent."""
        self._check_mine(a)
        self._check_mine(b)
        la, lb = _levels(a.choices), _levels(b.choices)
        c = []
        take_b = bool(rng.integers(2))
        for i in range(self.layers):
            c.append(b.choices[i] if take_b else a.choices[i])
            if la[i] == lb[i]:  # a crossing point: the next segment may come from either parent
                take_b = bool(rng.integers(2))
        t = tuple(c)
        return Architecture(self.name, t, self.format(t))

    # -- the network ---------------------------------------------------------------------------------
    def channels(self, level: int) -> int:
        return self.base_channels << level

    def _stem(self) -> tuple[Spec, ...]:
        c0 = self.channels(0)
        return (ConvBNAct(self.in_channels, c0, 3, 2), ConvBNAct(c0, c0, 3, 2))

    def _cell(self, prev: int, lv: int) -> tuple[Spec, ...]:
        """The layer moving from level ``prev`` to ``lv``: the transition, then a basic block."""
        cp, cl = self.channels(prev), self.channels(lv)
        if lv > prev:
            return (ConvBNAct(cp, cl, 3, 2), BasicBlock(cl, cl))
        if lv < prev:
            return (Upsample(self.sizes[lv]), ConvBNAct(cp, cl, 1), BasicBlock(cl, cl))
        return (BasicBlock(cl, cl),)

    def _head(self, last: int, num_classes: int) -> tuple[Spec, ...]:
        c = self.channels(last)
        if self.task == "segmentation":
            mid = 2 * self.base_channels
            return (ASPPLite(c, mid, (2, 4)), Conv(mid, num_classes, 1), Upsample(self.resolution, "bilinear"))
        if self.head == "classification":
            return (GlobalPool(), Flatten(), Linear(c, num_classes))
        up: tuple[Spec, ...] = (Upsample(self.sizes[0]),) if last else ()
        return (*up, Conv(c, num_classes, 1))

    def _shape(self, level: int) -> tuple[int, int, int]:
        return (self.channels(level), self.sizes[level], self.sizes[level])

    def network_spec(self, arch: Architecture, resolution: int | None = None,
                     num_classes: int | None = None) -> NetworkSpec:
        """The ``NetworkSpec``: stem, one stage per layer (transition + basic block), head."""
        self._check_mine(arch)
        if resolution is not None and resolution != self.resolution:
            other = self._at_resolution(resolution)
            return other.network_spec(Architecture(other.name, arch.choices, arch.text), None, num_classes)
        levels = self.path(arch)
        k = self.num_classes if num_classes is None else check_int("lattice", "num_classes", num_classes, 1)
        stages = tuple(self._cell(prev, lv) for prev, lv in zip([0, *levels], levels, strict=False))
        return NetworkSpec(arch.text, self.input_shape(arch), self._stem(), stages, self._head(levels[-1], k))

    def input_shape(self, arch: Architecture | None = None) -> tuple[int, ...]:
        return (self.in_channels, self.resolution, self.resolution)

    def _at_resolution(self, resolution: int) -> LatticeSpace:
        """The same lattice at another input resolution (cached)."""
        other = self._at.get(resolution)
        if other is None:
            other = self._at[resolution] = LatticeSpace(self.layers, self.levels, self.base_channels, resolution,
                                                        self.in_channels, self.num_classes, self.head, self.task)
        return other

    def cost(self, arch: Architecture, resolution: int | None = None, precision: str = "fp32") -> Cost:
        """Analytic cost from parts cached per (from level, to level): coarser cells cost less memory."""
        if resolution is not None and resolution != self.resolution:
            other = self._at_resolution(resolution)
            return other.cost(Architecture(other.name, arch.choices, arch.text), None, precision)
        levels = self.path(arch)
        parts = self._parts
        if not parts:
            parts[("stem",)] = fold(self._stem(), self.input_shape())
            for a in range(self.levels):
                parts[("head", a)] = fold(self._head(a, self.num_classes), self._shape(a))
                for b in (a - 1, a, a + 1):
                    if 0 <= b < self.levels:
                        parts[(a, b)] = fold(self._cell(a, b), self._shape(a))
        seq = [parts[("stem",)], *(parts[(p, q)] for p, q in zip([0, *levels], levels, strict=False)),
               parts[("head", levels[-1])]]
        return chain(seq, precision)

    def build(self, arch: Architecture, num_classes: int | None = None, **options: Any) -> nn.Module:
        if options:
            raise NasforgeError(f"lattice: unknown build option(s) {', '.join(sorted(options))}; allowed: none")
        return self.network_spec(arch, num_classes=num_classes).build()

    def named_archs(self) -> dict[str, Architecture]:
        """``down-up``: down one level a layer to the deepest level the layers allow, stay, then up one level a
        layer so the last layer is back at 1/4 (a fixed encoder-decoder path; the segmentation baseline)."""
        depth = min(self.levels - 1, self.layers // 2)
        levels = [min(i + 1, depth, self.layers - 1 - i) for i in range(self.layers)]
        return {"down-up": self._from_levels(levels)}

    def graph(self, arch: Architecture) -> dict[str, list[dict[str, Any]]]:
        """The path for drawing: the stem, one node per layer at its level (``1/<factor>``), the head; edges
        ``down``/``stay``/``up`` between consecutive nodes."""
        levels = self.path(arch)
        nodes: list[dict[str, Any]] = [{"id": "stem", "kind": "stem", "level": "1/4"}]
        edges: list[dict[str, Any]] = []
        prev, prev_level = "stem", 0
        for i, lv in enumerate(levels):
            me = f"layer{i + 1}"
            nodes.append({"id": me, "kind": "cell", "level": f"1/{4 << lv}"})
            edges.append({"from": prev, "to": me, "kind": MOVES[_DELTA.index(lv - prev_level)]})
            prev, prev_level = me, lv
        nodes.append({"id": "head", "kind": self.task, "level": f"1/{4 << levels[-1]}"})
        edges.append({"from": prev, "to": "head", "kind": "output"})
        return {"nodes": nodes, "edges": edges}


def _down(size: int) -> int:
    """Spatial size after a padded stride-2 3x3 conv."""
    return (size - 1) // 2 + 1


def _levels(choices: tuple[int, ...]) -> list[int]:
    out = []
    level = 0
    for c in choices:
        level += _DELTA[c]
        out.append(level)
    return out
