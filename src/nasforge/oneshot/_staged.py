"""The supernet of staged spaces (``mobilenet``, ``config``): a choice block per block slot.

Width and resolution are fixed per supernet (options ``width`` and ``resolution``, values of the space's
choices). Each block slot of a stage is a unit over the block type's parameter combinations (e.g. kernel x
expand, mixed radix in the space's order); slots a stage's depth can leave out (index >= the smallest
depth) also hold a ``skip`` candidate, the identity (ProxylessNAS' zero op inside a residual block): every
such slot keeps the stage's shape, so a path with skips is a shallower network. ``derive`` keeps the
mandatory slots, keeps an optional slot whose most likely candidate is not ``skip`` (choosing the nearest
allowed depth by keep-probability when the count is not one), and takes each kept slot's best
combination. ``fix(arch)`` runs the first ``depth`` slots with the arch's blocks and skips the rest,
which is exactly ``space.build(arch)`` (``to_standalone``). Residual candidates are initialised as the
identity (zero last batch-norm scale) so that single-path training learns from the first epochs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from nasforge.blocks._modules import InvertedResidualModule
from nasforge.errors import NasforgeError
from nasforge.oneshot._registry import register_supernet
from nasforge.oneshot._supernet import ChoiceBlock, Supernet
from nasforge.spaces import Architecture, get_space
from nasforge.spaces._staged import StagedSpace, fmt_value
from nasforge.spaces.config import ConfigSpace
from nasforge.spaces.mobilenet import MobileNetSpace


def _pick(space: StagedSpace, what: str, values: tuple[Any, ...], value: Any) -> int:
    for i, v in enumerate(values):
        if value is not None and float(v) == float(value):
            return i
    raise NasforgeError(f"{space.name} supernet: {what}={value!r} is not a choice of the space; allowed: "
                        f"{', '.join(fmt_value(v) for v in values)}")


def _network(space: StagedSpace, arch: Architecture, num_classes: int | None) -> Any:
    """The space's ``NetworkSpec`` of ``arch`` (``network_spec``; ``network`` in older versions of the space)."""
    fn = getattr(space, "network_spec", None) or getattr(space, "network")  # noqa: B009
    return fn(arch, num_classes=num_classes)


def _mobilenet_example() -> StagedSpace:
    return cast(StagedSpace, get_space(
        "mobilenet", stage_channels=[8, 16], stage_strides=[2, 1], depths=[1, 2], kernels=[3, 5], expands=[1, 3],
        widths=[0.5, 1.0], resolutions=[8, 16], num_classes=10, stem_channels=8, first_channels=8,
        head_channels=16))


def _config_example() -> StagedSpace:
    return cast(StagedSpace, get_space("config", spec={
        "input": {"channels": 3, "resolutions": [8]}, "num_classes": 10, "widths": [0.5, 1.0],
        "stem": {"channels": 8, "stride": 1},
        "stages": [{"block": "inverted_residual", "channels": 8, "stride": 2, "depth": [1, 2], "kernel": [3, 5],
                    "expand": [1, 3]},
                   {"block": "conv_bn_act", "channels": 16, "stride": 1, "depth": [1], "kernel": [3]},
                   {"block": "basic", "channels": 16, "stride": 1, "depth": [1, 2]}],
        "head": {"channels": 16}}))


_OPTIONS = ("num_classes", "resolution", "width")


@register_supernet("config", ConfigSpace, options=_OPTIONS, example=_config_example)
@register_supernet("mobilenet", MobileNetSpace, options=_OPTIONS, example=_mobilenet_example)
class StagedSupernet(Supernet):
    """stem -> per stage, per slot a choice block (block combos + skip on optional slots) -> head."""

    def __init__(self, space: StagedSpace, resolution: int | None = None, width: float | None = None,
                 num_classes: int | None = None, seed: int = 0) -> None:
        super().__init__()
        self.space = space
        self.staged = space
        res_i = 0 if resolution is None else _pick(space, "resolution", space.resolutions, resolution)
        w_i = len(space.widths) - 1 if width is None else _pick(space, "width", space.widths, width)
        self.res_i, self.width_i = res_i, w_i
        self.resolution, self.width = space.resolutions[res_i], space.widths[w_i]
        decs = space.decisions()
        self.index = {d.name: k for k, d in enumerate(decs)}
        self.combos: list[list[tuple[int, ...]]] = []  # per stage: parameter index tuples, mixed radix order
        for st in space.stages:
            self.combos.append(list(itertools.product(*(range(len(c)) for c in st.choices))))
        # the deepest network per block combination gives every slot's spec (public API only)
        ref = self._ref_choices()
        nets = {}
        for s, st in enumerate(space.stages):
            for ci, combo in enumerate(self.combos[s]):
                c = list(ref)
                for b in range(max(st.depths)):
                    for p, v in zip(st.kind.params, combo, strict=True):
                        c[self.index[f"s{s + 1}.b{b + 1}.{p}"]] = v
                nets[(s, ci)] = _network(space, space.decode(c), num_classes)
        first = nets[(0, 0)]
        self.stem = nn.Sequential(*(sp.build() for sp in first.stem))
        self.head = nn.Sequential(*(sp.build() for sp in first.head))
        self.in_shape = first.input_shape
        stages: list[nn.Module] = []
        self.groups, self.unit_names, self.unit_labels, self.slots = [], [], [], []
        for s, st in enumerate(space.stages):
            blocks = []
            for b in range(max(st.depths)):
                specs: list[Any] = [nets[(s, ci)].stages[s][b] for ci in range(len(self.combos[s]))]
                cands: list[nn.Module | None] = [sp.build() for sp in specs]
                labels = [self._label(s, combo) for combo in self.combos[s]]
                if b >= min(st.depths):
                    cands.append(nn.Identity())
                    specs.append(None)
                    labels.append("skip")
                blk = ChoiceBlock(cands, specs)
                blocks.append(blk)
                self.groups.append([blk])
                self.unit_names.append(f"s{s + 1}.b{b + 1}")
                self.unit_labels.append(tuple(labels))
                self.slots.append((s, b))
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        # residual candidates start as the identity (last BN's gamma = 0, Goyal et al. 2017): with a random
        # path per step, unit-variance random branches otherwise swamp the shared stream and SPOS did not learn
        for m in self.stages.modules():
            if isinstance(m, InvertedResidualModule) and m.use_residual:
                nn.init.zeros_(m.project.bn.weight)
        self.init_alpha(torch.Generator().manual_seed(seed))

    def _ref_choices(self) -> list[int]:
        sp = self.staged
        c = [0] * len(sp.decisions())
        c[self.index["resolution"]], c[self.index["width"]] = self.res_i, self.width_i
        for s, st in enumerate(sp.stages):
            c[self.index[f"s{s + 1}.depth"]] = st.depths.index(max(st.depths))
        return c

    def _label(self, s: int, combo: tuple[int, ...]) -> str:
        kind = self.staged.stages[s].kind
        vals = zip(kind.letters, self.staged.stages[s].choices, combo, strict=True)
        return kind.prefix + "".join(f"{ltr}{fmt_value(ch[v])}" for ltr, ch, v in vals) or "block"

    def forward(self, x: Tensor) -> Tensor:
        return cast(Tensor, self.head(self.stages(self.stem(x))))

    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.in_shape)

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniform architecture of the space at this supernet's resolution and width."""
        c = list(self.staged.sample(rng).choices)
        c[self.index["resolution"]], c[self.index["width"]] = self.res_i, self.width_i
        return self.staged.decode(c)

    def choices_of(self, arch: Architecture) -> list[int]:
        sp = self.staged
        c = sp.encode(arch)
        if c[self.index["resolution"]] != self.res_i or c[self.index["width"]] != self.width_i:
            raise NasforgeError(f"{sp.name} supernet is fixed at resolution {self.resolution}, width "
                                f"{fmt_value(self.width)}; arch {arch} differs")
        out = []
        for s, b in self.slots:
            st = sp.stages[s]
            depth = st.depths[c[self.index[f"s{s + 1}.depth"]]]
            if b >= depth:
                out.append(len(self.combos[s]))  # skip
                continue
            combo = tuple(c[self.index[f"s{s + 1}.b{b + 1}.{p}"]] for p in st.kind.params)
            out.append(self.combos[s].index(combo))
        return out

    def derive(self) -> Architecture:
        p = self.probs().detach().cpu()
        return self.arch_of([int(p[k, :n].argmax()) for k, n in enumerate(self.unit_sizes())])

    def arch_of(self, choices: Sequence[int]) -> Architecture:
        """The architecture of one candidate per unit: kept slots in order (skips dropped); when the kept
        count is not an allowed depth, the nearest allowed one, optional slots by their keep probability."""
        sp = self.staged
        p = self.probs().detach().cpu()
        c = self._ref_choices()
        for s, st in enumerate(sp.stages):
            rows = [(k, b) for k, (s2, b) in enumerate(self.slots) if s2 == s]
            n = len(self.combos[s])
            lo = min(st.depths)
            keep_p = {b: 1.0 - float(p[k, n]) for k, b in rows if b >= lo}
            kept = [b for k, b in rows if b >= lo and choices[k] != n]
            d = lo + len(kept)
            if d not in st.depths:  # the nearest allowed depth, optional slots by keep probability
                d = min(st.depths, key=lambda v: (abs(v - d), v))
                kept = sorted(sorted(keep_p, key=lambda b: -keep_p[b])[: d - lo])
            slots = [k for k, b in rows if b < lo] + [k for k, b in rows if b in kept]
            c[self.index[f"s{s + 1}.depth"]] = st.depths.index(d)
            for b, k in enumerate(slots):
                ch = choices[k] if choices[k] < n else int(p[k, :n].argmax())
                for prm, v in zip(st.kind.params, self.combos[s][ch], strict=True):
                    c[self.index[f"s{s + 1}.b{b + 1}.{prm}"]] = v
            for b in range(d, max(st.depths)):
                for prm in st.kind.params:
                    c[self.index[f"s{s + 1}.b{b + 1}.{prm}"]] = 0
        return sp.decode(c)

    def to_standalone(self, arch: Architecture, num_classes: int | None = None) -> nn.Module:
        """The stand-alone network of ``arch`` (``space.build``) carrying this supernet's weights."""
        choices = self.choices_of(arch)
        net: Any = self.staged.build(arch, num_classes=num_classes)
        net.stem.load_state_dict(self.stem.state_dict())
        net.head.load_state_dict(self.head.state_dict())
        for k, (s, b) in enumerate(self.slots):
            blk = self.groups[k][0]
            if blk.specs[choices[k]] is None:
                continue
            net.stages[s][b].load_state_dict(blk.ops[choices[k]].state_dict())
        return cast(nn.Module, net)
