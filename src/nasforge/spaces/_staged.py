"""Fixed-topology spaces made of stages: the engine under ``mobilenet`` and ``config``.

A network is stem -> stages -> head. Each stage has one block type, an output channel count, a stride
(taken by its first block) and a list of depth choices; each block of a stage has its own choices for
the block type's parameters (e.g. kernel and expand ratio). Two global decisions come first: the input
resolution and a width multiplier (the TinyNAS knobs).

Flat decisions (the algorithm's view), in order::

    resolution, width, s1.depth, s1.b1.kernel, s1.b1.expand, s1.b2.kernel, ..., s2.depth, ...

Blocks beyond a stage's depth are inactive (their choices are 0 in the canonical tuple), so the exact
size is ``|res| * |width| * prod_s sum_{d in depths_s} P_s ** d`` where ``P_s`` is the product of the
per-block choice counts of stage ``s``; sampling picks each stage's depth with weight ``P_s ** d`` and then
every active block uniformly, which is uniform over distinct architectures.

Canonical string: ``r<res>-w<width>|<stage>|<stage>...`` where a stage lists its active blocks, each as
letters and values, e.g. ``r160-w0.5|k3e1|k3e6,k5e4|k7e3,k3e3,k5e6``.

Channels are ``make_divisible(channels * width, divisor)`` (MobileNetV2's rounding: to the nearest
multiple of ``divisor``, at least ``divisor``, never more than 10% below the exact value). The head's
1x1 conv keeps its channels for width <= 1 and scales them above 1, as in MobileNetV2; with
``head_scale=True`` it scales with every width, as in MCUNet/TinyNAS (whose width multiplier shrinks the
whole network: a fixed 1280-channel head and its classifier do not fit a microcontroller's flash).
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Callable, Collection, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.blocks import BasicBlock, ConvBNAct, InvertedResidual, NetworkSpec
from nasforge.blocks._spec import Flatten, GlobalPool, Linear, Spec, chain_cost
from nasforge.cost import Cost
from nasforge.cost._cost import Part, bytes_per_element
from nasforge.errors import NasforgeError
from nasforge.spaces._base import Architecture, Decision, SearchSpace, data_shape, round_up

if TYPE_CHECKING:
    from torch import nn


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """MobileNetV2's channel rounding: nearest multiple of ``divisor``, >= ``min_value``, >= 90% of value."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def fmt_value(v: Hashable) -> str:
    """A choice value as it appears in canonical strings (``6``, ``0.5``, ``1.0`` -> ``1``)."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


# -- block types ------------------------------------------------------------------------------------

BlockMaker = Callable[[int, int, int, tuple[Any, ...], str], Spec]


@dataclass(frozen=True)
class BlockKind:
    """A block type of staged spaces: its per-block parameters (with one-letter tags) and its spec maker."""

    name: str
    params: tuple[str, ...]
    letters: tuple[str, ...]
    make: BlockMaker
    prefix: str = ""  # starts each block's token; needed when a type has no parameters (e.g. "b")


def _make_ir(in_ch: int, out_ch: int, stride: int, vals: tuple[Any, ...], act: str) -> Spec:
    kernel, expand = vals
    return InvertedResidual(in_ch, out_ch, stride, expand, kernel, act)


def _make_basic(in_ch: int, out_ch: int, stride: int, vals: tuple[Any, ...], act: str) -> Spec:
    return BasicBlock(in_ch, out_ch, stride)


def _make_cba(in_ch: int, out_ch: int, stride: int, vals: tuple[Any, ...], act: str) -> Spec:
    (kernel,) = vals
    return ConvBNAct(in_ch, out_ch, kernel, stride, 1, act)


BLOCK_KINDS: dict[str, BlockKind] = {
    "inverted_residual": BlockKind("inverted_residual", ("kernel", "expand"), ("k", "e"), _make_ir),
    "conv_bn_act": BlockKind("conv_bn_act", ("kernel",), ("k",), _make_cba),
    "basic": BlockKind("basic", (), (), _make_basic, prefix="b"),  # ResNet basic block (3x3, ReLU; act unused)
}


def register_block_kind(kind: BlockKind) -> None:
    """Make a block type available to staged spaces (and to config files) under ``kind.name``."""
    BLOCK_KINDS[kind.name] = kind


@dataclass(frozen=True)
class StageDef:
    """One stage: block type, output channels (before width scaling), stride, depth and per-block choices."""

    block: str
    channels: int
    stride: int
    depths: tuple[int, ...]
    choices: tuple[tuple[Any, ...], ...]  # one tuple of values per parameter of the block type

    @property
    def kind(self) -> BlockKind:
        return BLOCK_KINDS[self.block]

    @property
    def per_block(self) -> int:
        """Distinct choices of one block (product over its parameters)."""
        return math.prod(len(c) for c in self.choices)


# -- validation helpers (one-line errors naming the option and what is allowed) ---------------------


def as_tuple(space: str, key: str, value: Any, unique: bool = True) -> tuple[Any, ...]:
    if isinstance(value, (list, tuple)):
        out = tuple(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out = (value,)
    else:
        raise NasforgeError(f"{space}: option {key!r} must be a list, got {value!r}")
    if not out:
        raise NasforgeError(f"{space}: option {key!r} must be a non-empty list")
    if unique and len(set(out)) != len(out):
        raise NasforgeError(f"{space}: option {key!r} has repeated values {list(out)}; each choice once")
    return out


def int_list(space: str, key: str, value: Any, lo: int, hi: int | None = None, odd: bool = False,
             unique: bool = True) -> tuple[int, ...]:
    """A non-empty list of ints in [lo, hi] (odd ones if ``odd``; distinct if ``unique``, as choice lists are)."""
    vals = as_tuple(space, key, value, unique)
    allowed = f"ints >= {lo}" if hi is None else f"ints in {lo}..{hi}"
    if odd:
        allowed = "odd " + allowed
    for v in vals:
        bad = isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi)
        if bad or (odd and v % 2 == 0):
            raise NasforgeError(f"{space}: option {key!r} has bad value {v!r}; allowed: {allowed}")
    return vals


def float_list(space: str, key: str, value: Any, lo: float, hi: float) -> tuple[float, ...]:
    """A non-empty list of distinct numbers in (lo, hi], as floats."""
    vals = as_tuple(space, key, value)
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo < v <= hi:
            raise NasforgeError(f"{space}: option {key!r} has bad value {v!r}; allowed: numbers in ({lo}, {hi}]")
        out.append(float(v))
    return tuple(out)


def check_int(space: str, key: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        allowed = f"an int >= {lo}" if hi is None else f"an int in {lo}..{hi}"
        raise NasforgeError(f"{space}: option {key!r} has bad value {value!r}; allowed: {allowed}")
    return value


@dataclass
class _Tables:
    """Cached parts of one (width, resolution): the stem, per stage the first and later blocks, the head."""

    stem: Part
    blocks: list[tuple[list[Part | None], list[Part | None]]]
    head: Part | None


# -- the space --------------------------------------------------------------------------------------

_TOKEN = re.compile(r"([a-z])([0-9]+(?:\.[0-9]+)?)")


class StagedSpace(SearchSpace):
    """Stem -> stages of searchable depth and per-block choices -> head; see the module docstring."""

    def __init__(
        self,
        name: str,
        stages: Sequence[StageDef],
        resolutions: Sequence[int],
        widths: Sequence[float],
        in_channels: int,
        num_classes: int,
        stem_channels: int,
        stem_stride: int,
        head_channels: int,
        act: str,
        divisor: int,
        head_scale: bool = False,
    ) -> None:
        if not stages:
            raise NasforgeError(f"{name}: needs at least one stage")
        self.name = name
        self.stages = tuple(stages)
        self.resolutions = tuple(resolutions)
        self.widths = tuple(widths)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.stem_channels = stem_channels
        self.stem_stride = stem_stride
        self.head_channels = head_channels
        self.act = act
        self.divisor = divisor
        self.head_scale = head_scale
        decs = [Decision("resolution", self.resolutions), Decision("width", self.widths)]
        self._depth_idx: list[int] = []  # per stage: index of its depth decision (block slots follow it)
        for s, st in enumerate(self.stages, 1):
            self._depth_idx.append(len(decs))
            decs.append(Decision(f"s{s}.depth", st.depths))
            for b in range(1, max(st.depths) + 1):
                for p, ch in zip(st.kind.params, st.choices, strict=True):
                    decs.append(Decision(f"s{s}.b{b}.{p}", ch))
        self._decisions = decs
        self._nparams = [len(st.choices) for st in self.stages]
        # _ends[s][di]: index just past the active blocks of stage s at depth choice di; _ends[s][-1] past all
        self._ends = [[self._slot(s, d) for d in st.depths] + [self._slot(s, max(st.depths))]
                      for s, st in enumerate(self.stages)]
        self._depth_pos = {i: s for s, i in enumerate(self._depth_idx)}
        self._highs = [d.n for d in decs]
        self._highs_f = np.array(self._highs, dtype=np.float64)
        self._head_text = {(r, w): f"r{fmt_value(rv)}-w{fmt_value(wv)}"
                           for r, rv in enumerate(self.resolutions) for w, wv in enumerate(self.widths)}
        self._zeros = [[0] * n for n in range(len(decs) + 1)]
        # decisions with more than one choice: the global ones, and per stage and depth choice the active ones
        self._mut_global = [i for i in (0, 1) if self._highs[i] > 1]
        self._mutable = [[[i for i in range(di, ends[d]) if self._highs[i] > 1] for d in range(len(ends) - 1)]
                         for di, ends in zip(self._depth_idx, self._ends, strict=True)]
        # depth sampling weights (P_s ** d, normalised) per stage, as cumulative floats
        self._depth_cdf: list[list[float]] = []
        for st in self.stages:
            w = [st.per_block**d for d in st.depths]
            tot = sum(w)
            self._depth_cdf.append(list(itertools.accumulate(x / tot for x in w)))
        self._tables: dict[tuple[int, int], _Tables] = {}
        # mixed-radix multipliers turning a block's choice indices into one index of its stage's tables
        self._mult = [[math.prod(len(ch) for ch in st.choices[j + 1:]) for j in range(len(st.choices))]
                      for st in self.stages]
        self._seg_text: list[dict[tuple[int, ...], str]] = [{} for _ in self.stages]

    def with_inputs(self, resolutions: Sequence[int] | None = None, widths: Sequence[float] | None = None,
                    in_channels: int | None = None, num_classes: int | None = None) -> StagedSpace:
        """The same space with other input resolutions, widths, input channels or classes (None: unchanged)."""
        name = self.name
        res = self.resolutions if resolutions is None else int_list(name, "resolutions", resolutions, 1, 4096)
        ws = self.widths if widths is None else float_list(name, "widths", widths, 0.0, 4.0)
        new = object.__new__(type(self))
        new.__dict__.update({k: v for k, v in self.__dict__.items() if not k.startswith("_")})  # e.g. a file path
        StagedSpace.__init__(
            new, name, self.stages, res, ws,
            self.in_channels if in_channels is None else check_int(name, "in_channels", in_channels, 1),
            self.num_classes if num_classes is None else check_int(name, "num_classes", num_classes, 1),
            self.stem_channels, self.stem_stride, self.head_channels, self.act, self.divisor, self.head_scale)
        return new

    def _fit(self, input_shape: Sequence[int], num_classes: int, keep: Collection[str],
             task: str) -> StagedSpace:
        """Input channels and classes from the data; the input resolution becomes the one multiple of 8 that is at
        least the image side and the network's total stride (the last stage still sees one pixel), unless
        ``resolutions`` is kept."""
        c, side, k = data_shape(self.name, input_shape, num_classes)
        stride = math.prod([self.stem_stride, *(st.stride for st in self.stages)])
        return self.with_inputs(
            resolutions=None if "resolutions" in keep else [round_up(max(side, stride), 8)],
            in_channels=None if "in_channels" in keep else c, num_classes=None if "num_classes" in keep else k)

    # -- decisions ---------------------------------------------------------------------------------
    def decisions(self) -> list[Decision]:
        return list(self._decisions)

    def _slot(self, s: int, b: int) -> int:
        """Index of the first decision of block ``b`` (0-based) of stage ``s`` (0-based)."""
        return self._depth_idx[s] + 1 + b * self._nparams[s]

    def active(self, choices: Sequence[int]) -> list[bool]:
        act = [True] * len(choices)
        for di, ends in zip(self._depth_idx, self._ends, strict=True):
            a, b = ends[choices[di]], ends[-1]
            act[a:b] = [False] * (b - a)
        return act

    def canonical(self, choices: Sequence[int]) -> tuple[int, ...]:
        c = list(map(int, choices))
        for di, ends in zip(self._depth_idx, self._ends, strict=True):
            a, b = ends[c[di]], ends[-1]
            c[a:b] = [0] * (b - a)
        return tuple(c)

    def _make(self, canon: tuple[int, ...]) -> Architecture:
        return Architecture(self.name, canon, self.format(canon))

    # -- size, sampling, variation -------------------------------------------------------------------
    def size(self) -> int:
        n = len(self.resolutions) * len(self.widths)
        for st in self.stages:
            n *= sum(st.per_block**d for d in st.depths)
        return n

    def enumerate(self) -> Iterator[Architecture]:
        """Every distinct architecture, built directly from active choices (no duplicates)."""
        stage_opts: list[list[tuple[int, ...]]] = []
        for s, st in enumerate(self.stages):
            opts = []
            width = self._slot(s, max(st.depths)) - self._depth_idx[s]
            per = [len(c) for c in st.choices]
            for di, d in enumerate(st.depths):
                for combo in np.ndindex(*(per * d)) if d else [()]:
                    seg = [di, *combo]
                    seg += [0] * (width - len(seg))
                    opts.append(tuple(int(x) for x in seg))
            stage_opts.append(opts)
        for r in range(len(self.resolutions)):
            for w in range(len(self.widths)):
                for segs in _product(stage_opts):
                    canon = (r, w, *(x for seg in segs for x in seg))
                    yield self._make(canon)

    def _draw(self, rng: np.random.Generator, lo: int, hi: int) -> list[int]:
        """Uniform choices for decisions lo..hi-1 (one generator call)."""
        return (rng.random(hi - lo) * self._highs_f[lo:hi]).astype(np.int64).tolist()

    def sample(self, rng: np.random.Generator) -> Architecture:
        """Uniform over distinct archs: depth d of a stage with weight P**d, then every decision uniform."""
        c = self._draw(rng, 0, len(self._highs))
        u = rng.random(len(self.stages)).tolist()
        for di, cdf, x in zip(self._depth_idx, self._depth_cdf, u, strict=True):
            c[di] = min(bisect.bisect_right(cdf, x), len(cdf) - 1)
        return self._make(self._zero_inactive(c))

    def _zero_inactive(self, c: list[int]) -> tuple[int, ...]:
        for di, ends in zip(self._depth_idx, self._ends, strict=True):
            a, b = ends[c[di]], ends[-1]
            c[a:b] = self._zeros[b - a]
        return tuple(c)

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """Change one active decision; a depth change is one structural step (new blocks drawn at random)."""
        self._check_mine(arch)
        c = list(arch.choices)
        idx = self._mut_global + [i for di, m in zip(self._depth_idx, self._mutable, strict=True) for i in m[c[di]]]
        if not idx:
            return arch
        u = rng.random(2).tolist()
        i = idx[int(u[0] * len(idx))]
        new = int(u[1] * (self._highs[i] - 1))
        old = c[i]
        c[i] = new if new < old else new + 1
        s = self._depth_pos.get(i)
        if s is not None:  # a depth step: blocks that become active get random choices
            a, b = self._ends[s][old], self._ends[s][c[i]]
            if b > a:
                c[a:b] = self._draw(rng, a, b)
        return self._make(self._zero_inactive(c))

    def crossover(self, a: Architecture, b: Architecture, rng: np.random.Generator) -> Architecture:
        """Each decision from a parent chosen uniformly; where that parent's is inactive, from the other."""
        self._check_mine(a)
        self._check_mine(b)
        act_a, act_b = self.active(a.choices), self.active(b.choices)
        pick = rng.integers(2, size=len(a.choices)).tolist()
        c = []
        for i, p in enumerate(pick):
            use_b = (p == 1 and act_b[i]) or not act_a[i]
            c.append(b.choices[i] if use_b else a.choices[i])
        return self._make(self.canonical(c))

    # -- strings -------------------------------------------------------------------------------------
    def format(self, choices: tuple[int, ...]) -> str:
        out = [self._head_text[choices[0], choices[1]]]
        for s, (di, ends) in enumerate(zip(self._depth_idx, self._ends, strict=True)):
            seg = tuple(choices[di:ends[choices[di]]])
            text = self._seg_text[s].get(seg)
            if text is None:  # stage strings are cached: formatting is on the hot path of sampling
                text = self._format_stage(s, seg)
                self._seg_text[s][seg] = text
            out.append(text)
        return "|".join(out)

    def _format_stage(self, s: int, seg: tuple[int, ...]) -> str:
        st = self.stages[s]
        k = self._nparams[s]
        blocks = []
        for b in range(st.depths[seg[0]]):
            vals = seg[1 + b * k:1 + (b + 1) * k]
            pairs = zip(st.kind.letters, st.choices, vals, strict=True)
            blocks.append(st.kind.prefix + "".join(f"{ltr}{fmt_value(ch[v])}" for ltr, ch, v in pairs))
        return ",".join(blocks)

    def parse(self, text: str) -> Architecture:
        text = text.strip()
        parts = text.split("|")
        if len(parts) != len(self.stages) + 1:
            raise NasforgeError(f"{self.name}: expected 'r<res>-w<width>' and {len(self.stages)} stages separated "
                                f"by '|', got {len(parts) - 1} stages in {text!r}")
        head = re.fullmatch(r"r([0-9]+)-w([0-9.]+)", parts[0])
        if head is None:
            raise NasforgeError(f"{self.name}: expected 'r<res>-w<width>' at the start, got {parts[0]!r}")
        c = [self._index("resolution", self.resolutions, head.group(1)),
             self._index("width", self.widths, head.group(2))]
        for s, (st, seg) in enumerate(zip(self.stages, parts[1:], strict=True)):
            blocks = seg.split(",") if seg else []
            if len(blocks) not in st.depths:
                raise NasforgeError(f"{self.name}: stage {s + 1} has {len(blocks)} blocks; allowed depths: "
                                    f"{', '.join(map(str, st.depths))}")
            c.append(st.depths.index(len(blocks)))
            for b, tok in enumerate(blocks):
                pre = st.kind.prefix
                found = _TOKEN.findall(tok[len(pre):])
                letters = tuple(x for x, _ in found)
                if pre + "".join(f"{x}{v}" for x, v in found) != tok or letters != st.kind.letters:
                    want = pre + "".join(f"{ltr}<{p}>" for ltr, p in zip(st.kind.letters, st.kind.params, strict=True))
                    raise NasforgeError(f"{self.name}: block {tok!r} of stage {s + 1} is malformed; expected {want}")
                for (_, v), p, ch in zip(found, st.kind.params, st.choices, strict=True):
                    c.append(self._index(f"s{s + 1}.b{b + 1}.{p}", ch, v))
            c.extend([0] * (self._slot(s, max(st.depths)) - self._slot(s, len(blocks))))
        return self._make(self.canonical(c))

    def _index(self, what: str, choices: Sequence[Any], text: str) -> int:
        for i, v in enumerate(choices):
            if fmt_value(v) == text:
                return i
        try:  # the same number written another way (0.50, 6.0)
            num = float(text)
        except ValueError:
            num = None
        for i, v in enumerate(choices):
            if num is not None and isinstance(v, (int, float)) and float(v) == num:
                return i
        raise NasforgeError(f"{self.name}: {what} {text!r} is not a choice; allowed: "
                            f"{', '.join(fmt_value(v) for v in choices)}")

    # -- the network ---------------------------------------------------------------------------------
    def _width(self, channels: int, width: float) -> int:
        return make_divisible(channels * width, self.divisor)

    def _stem(self, width: float) -> tuple[Spec, ...]:
        return (ConvBNAct(self.in_channels, self._width(self.stem_channels, width), 3, self.stem_stride, 1, self.act),)

    def _stage_in(self, s: int, width: float) -> int:
        if s == 0:
            return self._width(self.stem_channels, width)
        return self._width(self.stages[s - 1].channels, width)

    def _block(self, s: int, b: int, vals: tuple[Any, ...], width: float) -> Spec:
        st = self.stages[s]
        out_ch = self._width(st.channels, width)
        in_ch = self._stage_in(s, width) if b == 0 else out_ch
        return st.kind.make(in_ch, out_ch, st.stride if b == 0 else 1, vals, self.act)

    def _head(self, width: float, num_classes: int) -> tuple[Spec, ...]:
        last = self._width(self.stages[-1].channels, width)
        if self.head_channels > 0:
            hc = make_divisible(self.head_channels * (width if self.head_scale else max(1.0, width)), self.divisor)
            return (ConvBNAct(last, hc, 1, 1, 1, self.act), GlobalPool(), Flatten(), Linear(hc, num_classes))
        return (GlobalPool(), Flatten(), Linear(last, num_classes))

    def _block_vals(self, choices: tuple[int, ...], s: int, b: int) -> tuple[Any, ...]:
        i = self._slot(s, b)
        return tuple(ch[choices[i + j]] for j, ch in enumerate(self.stages[s].choices))

    def network_spec(self, arch: Architecture, resolution: int | None = None,
                     num_classes: int | None = None) -> NetworkSpec:
        """The ``NetworkSpec`` of an architecture (what ``build`` builds and ``cost`` costs)."""
        self._check_mine(arch)
        c = arch.choices
        res = self.resolutions[c[0]] if resolution is None else resolution
        width = self.widths[c[1]]
        stages = []
        for s, st in enumerate(self.stages):
            depth = st.depths[c[self._depth_idx[s]]]
            stages.append(tuple(self._block(s, b, self._block_vals(c, s, b), width) for b in range(depth)))
        return NetworkSpec(arch.text, (self.in_channels, res, res), self._stem(width), tuple(stages),
                           self._head(width, self.num_classes if num_classes is None else num_classes))

    def input_shape(self, arch: Architecture) -> tuple[int, ...]:
        self._check_mine(arch)
        r = self.resolutions[arch.choices[0]]
        return (self.in_channels, r, r)

    def cost(self, arch: Architecture, resolution: int | None = None, precision: str = "fp32") -> Cost:
        """Analytic cost from per-block parts, cached per (width, resolution) in tables indexed by
        stage, first-or-not and the block's choices (the hot path of search: no hashing per block)."""
        self._check_mine(arch)
        bytes_per_element(precision)
        c = arch.choices
        res = self.resolutions[c[0]] if resolution is None else resolution
        wi = c[1]
        tabs = self._tables.get((wi, res))
        if tabs is None:
            tabs = self._new_tables(wi, res)
        p = tabs.stem
        params, macs, other, total, peak = p.params, p.macs, p.other_ops, p.activations, p.peak
        for s, di in enumerate(self._depth_idx):
            k = self._nparams[s]
            mult = self._mult[s]
            first, rest = tabs.blocks[s]
            for b in range(self.stages[s].depths[c[di]]):
                i = di + 1 + b * k
                bidx = c[i] * mult[0] + c[i + 1] if k == 2 else sum(c[i + j] * mult[j] for j in range(k))
                row = first if b == 0 else rest
                q = row[bidx]
                if q is None:
                    spec = self._block(s, b, self._block_vals(c, s, b), self.widths[wi])
                    q = row[bidx] = fold((spec,), p.out_shape)
                p = q
                params += p.params
                macs += p.macs
                other += p.other_ops
                total += p.activations
                if p.peak > peak:
                    peak = p.peak
        q = tabs.head
        if q is None or q.in_shape != p.out_shape:
            q = tabs.head = fold(self._head(self.widths[wi], self.num_classes), p.out_shape)
        peak = max(peak, q.peak)
        return Cost(params + q.params, macs + q.macs, other + q.other_ops,
                    total + q.activations + math.prod(tabs.stem.in_shape), peak, tabs.stem.in_shape, q.out_shape,
                    precision)

    def _new_tables(self, wi: int, res: int) -> _Tables:
        if len(self._tables) > 4096:  # many ad-hoc resolutions: start over rather than grow without bound
            self._tables.clear()
        stem = fold(self._stem(self.widths[wi]), (self.in_channels, res, res))
        blocks: list[tuple[list[Part | None], list[Part | None]]] = [
            ([None] * st.per_block, [None] * st.per_block) for st in self.stages]
        t = self._tables[(wi, res)] = _Tables(stem, blocks, None)
        return t

    def build(self, arch: Architecture, num_classes: int | None = None, **options: Any) -> nn.Module:
        if options:
            raise NasforgeError(f"{self.name}: unknown build option(s) {', '.join(sorted(options))}; allowed: none")
        return self.network_spec(arch, num_classes=num_classes).build()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["stages"] = [{"block": st.block, "channels": st.channels, "stride": st.stride, "depths": list(st.depths)}
                       for st in self.stages]
        return d


def fold(specs: Sequence[Spec], in_shape: tuple[int, ...]) -> Part:
    """Specs run in sequence as one ``Part`` (from the cached per-spec parts)."""
    tot = chain_cost(specs, in_shape)
    return Part(tot.params, tot.macs, tot.other_ops, tot.activations - math.prod(in_shape), tot.peak_activations,
                in_shape, tot.output_shape)


def _product(lists: list[list[tuple[int, ...]]]) -> Iterator[tuple[tuple[int, ...], ...]]:
    if not lists:
        yield ()
        return
    for head in lists[0]:
        for rest in _product(lists[1:]):
            yield (head, *rest)
