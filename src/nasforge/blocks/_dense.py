"""Dense-prediction specs: resampling, NAS-FPN's merge ops, the FCOS head, ASPP-lite, and a whole pyramid network.

Every spec here emits its layers into the cost IR in the order its module runs them, so the analytic cost of a
detection or segmentation network equals its traced cost (peak memory included). ``PyramidSpec`` describes a
detector (backbone levels, a neck of merging cells, a shared head per level) and emits into a ``GraphBuilder``
(every layer, ``cost(layers=True)``) or a ``MacroBuilder`` (one step per block, from cached parts: the fast path).

The dense contract (see ``SearchSpace``): a detector maps (N, C, H, W) to a tuple of per-level
(N, num_classes + 5, H/s, W/s) maps (class logits, 4 raw box distances, a centerness logit) and has ``strides``.
Level sizes are ``ceil(H / s)``: every stride-2 layer pads (they equal ``H // s`` when ``s`` divides ``H``).
Peak memory follows the README's model for every network: a tensor nobody reads dies at the step that writes it, so
the head's per-level outputs (``num_classes + 5`` channels each, small beside the features) count while written,
not held to the end of the forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from nasforge.blocks._cell_ops import ReLUConvBN
from nasforge.blocks._cells import Builder, apply
from nasforge.blocks._spec import Pool, Spec
from nasforge.cost._cost import Cost, analyze
from nasforge.cost._ir import GraphBuilder, Shape
from nasforge.cost._macro import MacroBuilder

if TYPE_CHECKING:
    from torch import Tensor, nn

MERGE_OPS = ("sum", "attention")


def gn_groups(channels: int) -> int:
    """Group-norm groups of the head: the most of 32, 16, ..., 1 that leaves at least 4 channels a group."""
    for g in (32, 16, 8, 4, 2):
        if channels % g == 0 and channels // g >= 4:
            return g
    return 1


@dataclass(frozen=True)
class Upsample:
    """Upsampling to an exact ``size`` x ``size`` (nearest, or bilinear without corner alignment)."""

    size: int
    mode: str = "nearest"

    def emit(self, g: GraphBuilder, x: int) -> int:
        c = g.shape(x)[0]
        return g.add("upsample", [x], (c, self.size, self.size), name="upsample")

    def build(self) -> nn.Module:
        from torch import nn

        if self.mode == "nearest":
            return nn.Upsample(size=(self.size, self.size), mode="nearest")
        return nn.Upsample(size=(self.size, self.size), mode=self.mode, align_corners=False)


@dataclass(frozen=True)
class Seq:
    """Specs run one after another as one block (a backbone segment, a tower)."""

    specs: tuple[Spec, ...]

    def emit(self, g: GraphBuilder, x: int) -> int:
        for i, s in enumerate(self.specs):
            with g.scope(str(i)):
                x = s.emit(g, x)
        return x

    def build(self) -> nn.Module:
        from torch import nn

        return nn.Sequential(*(s.build() for s in self.specs))


def resample(from_level: int, to_level: int, size: int) -> Spec | None:
    """NAS-FPN's resampling between pyramid levels: max pooling down (kernel = stride = 2**d, ceil), nearest
    upsampling up (to the level's exact size); ``None`` at the same level."""
    d = to_level - from_level
    if d > 0:
        return Pool("max", 2**d, 2**d, 0, ceil_mode=True)
    if d < 0:
        return Upsample(size)
    return None


@dataclass(frozen=True)
class GlobalGate:
    """Global max pooling then a sigmoid: the per-channel weights of NAS-FPN's global-pooling attention merge."""

    def emit(self, g: GraphBuilder, x: int) -> int:
        c, h, w = g.shape(x)
        y = g.add("adaptive_maxpool", [x], (c, 1, 1), name="pool", kernel=(h, w))
        return g.act(y, "sigmoid", name="sigmoid")

    def build(self) -> nn.Module:
        from torch import nn

        return nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Sigmoid())


@dataclass(frozen=True)
class FCOSHead:
    """The FCOS head (Tian et al. 2019) run on one level: a class tower and a box tower of ``convs`` 3x3
    conv + group norm + ReLU, then 3x3 convs to the class logits, the 4 box distances and centerness (on the box
    tower, as FCOS v2), concatenated to ``num_classes + 5`` channels. One head is shared by every level;
    ``shared=True`` emits a later level (its weights were counted at the first)."""

    channels: int
    num_classes: int
    convs: int = 2
    shared: bool = False

    @property
    def out_channels(self) -> int:
        return self.num_classes + 5

    def _tower(self, g: GraphBuilder, x: int) -> int:
        c = self.channels
        for i in range(self.convs):
            x = g.conv2d(x, c, 3, 1, None, 1, True, name=f"{i}.conv", shared=self.shared)
            x = g.add("groupnorm", [x], g.shape(x), name=f"{i}.gn", params=0 if self.shared else 2 * c)
            x = g.act(x, "relu", name=f"{i}.relu")
        return x

    def emit(self, g: GraphBuilder, x: int) -> int:
        with g.scope("cls_tower"):
            t = self._tower(g, x)
        cls = g.conv2d(t, self.num_classes, 3, 1, None, 1, True, name="cls_logits", shared=self.shared)
        with g.scope("box_tower"):
            t = self._tower(g, x)
        box = g.conv2d(t, 4, 3, 1, None, 1, True, name="box", shared=self.shared)
        ctr = g.conv2d(t, 1, 3, 1, None, 1, True, name="centerness", shared=self.shared)
        return g.cat([cls, box, ctr], name="cat")

    def build(self) -> nn.Module:
        from nasforge.blocks._dense_modules import FCOSHeadModule

        return FCOSHeadModule(self)


@dataclass(frozen=True)
class ASPPLite:
    """A light ASPP (DeepLab v3, as Auto-DeepLab ends its path): a 1x1 conv branch, one 3x3 conv branch per
    dilation ``rate`` (each conv + BN + ReLU) and an image-pooling branch (global average, 1x1 conv with bias,
    ReLU, upsampled back), concatenated and fused by a 1x1 conv + BN + ReLU to ``mid`` channels."""

    in_ch: int
    mid: int
    rates: tuple[int, ...] = (2, 4)

    def emit(self, g: GraphBuilder, x: int) -> int:
        _, h, w = g.shape(x)
        outs = []
        for i, r in enumerate((1, *self.rates)):
            with g.scope(f"branches.{i}"):
                k = 1 if r == 1 else 3
                y = g.conv2d(x, self.mid, k, 1, None if r == 1 else r, 1, False, dilation=r, name="conv")
                y = g.batchnorm(y, name="bn")
                outs.append(g.act(y, "relu", name="relu"))
        with g.scope("pool"):
            y = g.global_avgpool(x, 1, name="pool")
            y = g.conv2d(y, self.mid, 1, 1, None, 1, True, name="conv")
            y = g.act(y, "relu", name="relu")
            outs.append(g.add("upsample", [y], (self.mid, h, w), name="upsample"))
        y = g.cat(outs, name="cat")
        with g.scope("project"):
            y = g.conv2d(y, self.mid, 1, 1, None, 1, False, name="conv")
            y = g.batchnorm(y, name="bn")
            return g.act(y, "relu", name="relu")

    def build(self) -> nn.Module:
        from nasforge.blocks._dense_modules import ASPPLiteModule

        return ASPPLiteModule(self)


@dataclass(frozen=True)
class MergeCell:
    """One NAS-FPN merging cell: resample inputs ``a`` and ``b`` (indices into the pool of feature maps, ``a < b``)
    to ``level`` (0 = the finest pyramid level), merge them with ``op``, add the unconnected same-level maps
    listed in ``extra`` (output cells, as the paper), then ReLU, 3x3 conv, BN."""

    level: int
    a: int
    b: int
    op: str
    extra: tuple[int, ...] = ()


@dataclass(frozen=True)
class PyramidSpec:
    """A detector as specs: backbone segments, lateral 1x1 projections, extra strided levels, merging cells,
    and the FCOS head on each output level.

    ``backbone[i]`` maps the previous segment's output to the next backbone level; ``laterals`` are
    (segment index, spec) pairs giving the first pyramid maps; each of ``extras`` makes one coarser level from
    the previous one (the first from the last backbone segment's output, as RetinaNet's P6 from C5). The pool
    of feature maps is the laterals and extras in level order, then one map per cell. ``outputs[i]`` is the
    pool index the head reads for the i-th output level, whose stride is ``strides[i]``; ``sizes[l]`` is the
    side of pyramid level ``l``.
    """

    name: str
    input_shape: Shape
    backbone: tuple[Spec, ...]
    laterals: tuple[tuple[int, Spec], ...]
    extras: tuple[Spec, ...]
    cells: tuple[MergeCell, ...]
    post: Spec
    outputs: tuple[int, ...]
    head: FCOSHead
    sizes: tuple[int, ...]
    strides: tuple[int, ...]

    def pool_levels(self) -> list[int]:
        """The pyramid level of each map of the pool (inputs, then cells)."""
        return [*range(len(self.laterals) + len(self.extras)), *(c.level for c in self.cells)]

    def emit2(self, g: Builder, x: int) -> int:
        """Emit the network into either builder, in the order the module runs; returns the last output."""
        taps = []
        for i, seg in enumerate(self.backbone):
            with g.scope(f"backbone.{i}"):
                x = apply(g, seg, x)
            taps.append(x)
        feats: list[int] = []
        for i, (tap, spec) in enumerate(self.laterals):
            with g.scope(f"laterals.{i}"):
                feats.append(apply(g, spec, taps[tap]))
        src = taps[-1]
        for i, spec in enumerate(self.extras):
            with g.scope(f"extras.{i}"):
                src = apply(g, spec, src)
            feats.append(src)
        levels = self.pool_levels()
        for k, cell in enumerate(self.cells):
            with g.scope(f"cells.{k}"):
                ra = self._resample(g, feats[cell.a], levels[cell.a], cell.level, "resample0")
                rb = self._resample(g, feats[cell.b], levels[cell.b], cell.level, "resample1")
                if cell.op == "sum":
                    y = g.add_(ra, rb, name="add")
                else:  # the gate comes from the coarser input (the first one at equal levels), as the reference
                    coarse, fine = (ra, rb) if levels[cell.a] >= levels[cell.b] else (rb, ra)
                    with g.scope("gate"):
                        m = apply(g, GlobalGate(), coarse)
                    y = g.add_(coarse, g.mul(fine, m, name="mul"), name="add")
                for j in cell.extra:
                    y = g.add_(y, feats[j], name="add_unconnected")
                with g.scope("post"):
                    feats.append(apply(g, self.post, y))
        out = x
        for i, j in enumerate(self.outputs):
            with g.scope(f"head{i}"):
                out = apply(g, replace(self.head, shared=i > 0), feats[j])
        return out

    def _resample(self, g: Builder, x: int, src: int, dst: int, name: str) -> int:
        spec = resample(src, dst, self.sizes[dst])
        if spec is None:
            return x
        with g.scope(name):
            return apply(g, spec, x)

    def emit(self, g: GraphBuilder, x: int) -> int:
        return self.emit2(g, x)

    def cost(self, precision: str = "fp32", layers: bool = False) -> Cost:
        """Analytic cost: from cached block parts, or every layer with ``layers=True`` (the same totals)."""
        if layers:
            g = GraphBuilder(self.input_shape)
            self.emit2(g, 0)
            return analyze(g.nodes, precision)
        m = MacroBuilder(self.input_shape)
        p = m.finish(self.emit2(m, 0))
        return Cost(p.params, p.macs, p.other_ops, p.activations + math.prod(self.input_shape), p.peak,
                    tuple(self.input_shape), p.out_shape, precision)

    def build(self) -> nn.Module:
        from nasforge.blocks._dense_modules import PyramidNetwork

        return PyramidNetwork(self)


def default_post(channels: int) -> Spec:
    """What every merging cell runs after its merge: ReLU, 3x3 conv, BN (NAS-FPN)."""
    return ReLUConvBN(channels, channels, 3)


def level_sizes(side: int, first_stride_log2: int, count: int) -> tuple[int, ...]:
    """Sides of ``count`` pyramid levels from stride ``2**first_stride_log2`` on: ``ceil(side / stride)``."""
    return tuple(-(-side // 2 ** (first_stride_log2 + i)) for i in range(count))


def run_pyramid(net: Any, x: Tensor) -> tuple[Tensor, ...]:
    """The forward of a ``PyramidNetwork`` (kept beside the specs so both read the same plan)."""
    spec: PyramidSpec = net.spec
    taps = []
    for seg in net.backbone:
        x = seg(x)
        taps.append(x)
    feats = [lat(taps[tap]) for (tap, _), lat in zip(spec.laterals, net.laterals, strict=True)]
    src = taps[-1]
    for ex in net.extras:
        src = ex(src)
        feats.append(src)
    levels = spec.pool_levels()
    for cell, (res0, res1, gate, post) in zip(spec.cells, net.cells, strict=True):
        ra = res0(feats[cell.a])
        rb = res1(feats[cell.b])
        if cell.op == "sum":
            y = ra + rb
        else:
            coarse, fine = (ra, rb) if levels[cell.a] >= levels[cell.b] else (rb, ra)
            y = coarse + fine * gate(coarse)
        for j in cell.extra:
            y = y + feats[j]
        feats.append(post(y))
    return tuple(net.head(feats[j]) for j in spec.outputs)

