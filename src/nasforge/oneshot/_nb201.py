"""The NB201 supernet: NB201's macro network with a choice block on every edge of every cell.

The fixed parts (stem, reduction blocks, head) are built from the same specs as ``NB201Space.build``, so
a fixed sub-network can hand its weights to the stand-alone network (``to_standalone``) exactly.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor, nn

from nasforge.blocks import ConvBNAct
from nasforge.blocks._cell_ops import BNReLU, ResNetBasicBlock, make_op
from nasforge.blocks._cells import EDGES
from nasforge.blocks._spec import Flatten, GlobalPool, Linear
from nasforge.oneshot._registry import register_supernet
from nasforge.oneshot._supernet import ChoiceBlock, Supernet, decision_units
from nasforge.spaces import Architecture, get_space
from nasforge.spaces.nb201 import NB201Space


class SuperCell(nn.Module):
    """An NB201 cell whose 6 edges are choice blocks over the space's ops."""

    def __init__(self, channels: int, ops: tuple[str, ...]) -> None:
        super().__init__()
        specs = [make_op(op, channels, channels, 1) for op in ops]
        self.edges = nn.ModuleList([ChoiceBlock([None if sp is None else sp.build() for sp in specs], specs)
                                    for _ in EDGES])

    def forward(self, x: Tensor) -> Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            out: Tensor | None = None
            for e, (dst, src) in enumerate(EDGES):
                if dst != j:
                    continue
                blk = cast(ChoiceBlock, self.edges[e])
                if blk.mode == "single" and blk.is_zero[blk.active]:
                    continue
                y = blk(nodes[src])
                out = y if out is None else out + y
            nodes.append(torch.zeros_like(x) if out is None else out)
        return nodes[-1]


def _example() -> NB201Space:
    return cast(NB201Space, get_space("nb201", C=4, N=1, resolution=8))


@register_supernet("nb201", NB201Space, options=("num_classes", "in_channels"), example=_example)
class NB201Supernet(Supernet):
    """stem -> 3 stages of N super cells (ResNet reduction blocks between) -> BN-ReLU, pool, linear."""

    def __init__(self, space: NB201Space, num_classes: int | None = None, in_channels: int = 3,
                 seed: int = 0) -> None:
        super().__init__()
        self.space = space
        self.nb201 = space
        C, N = space.C, space.N
        k = space.num_classes if num_classes is None else num_classes
        self.in_channels = in_channels
        self.stem = nn.Sequential(ConvBNAct(in_channels, C, 3, 1, act="none").build())
        stages = []
        for s in range(3):
            c = C << s
            cells: list[nn.Module] = [SuperCell(c, space.ops) for _ in range(N)]
            if s:
                cells.insert(0, ResNetBasicBlock(c // 2, c, 2).build())
            stages.append(nn.Sequential(*cells))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(*(sp.build() for sp in (BNReLU(4 * C), GlobalPool(), Flatten(), Linear(4 * C, k))))
        cells_all = [m for m in self.modules() if isinstance(m, SuperCell)]
        self.groups = [[cast(ChoiceBlock, cell.edges[e]) for cell in cells_all] for e in range(len(EDGES))]
        self.unit_names, self.unit_labels = decision_units(space)
        self.init_alpha(torch.Generator().manual_seed(seed))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(x)))

    def input_shape(self) -> tuple[int, ...]:
        return (self.in_channels, self.nb201.resolution, self.nb201.resolution)

    def to_standalone(self, arch: Architecture, num_classes: int | None = None) -> nn.Module:
        """The stand-alone network of ``arch`` (``space.build``) carrying this supernet's weights."""
        spec = self.nb201.network_spec(arch, num_classes=num_classes)
        if self.in_channels != 3:
            spec = type(spec)(spec.name, (self.in_channels, *spec.input_shape[1:]),
                              (ConvBNAct(self.in_channels, self.nb201.C, 3, 1, act="none"),), spec.stages, spec.head)
        net: Any = spec.build()
        net.stem.load_state_dict(self.stem.state_dict())
        net.head.load_state_dict(self.head.state_dict())
        for s_std, s_sup in zip(net.stages, self.stages, strict=True):
            for m_std, m_sup in zip(s_std, cast(nn.Sequential, s_sup), strict=True):
                if isinstance(m_sup, SuperCell):
                    k = 0
                    for e in range(len(EDGES)):
                        c = arch.choices[e]
                        blk = cast(ChoiceBlock, m_sup.edges[e])
                        op = self.nb201.ops[c]
                        if op in ("none", "skip_connect"):
                            continue
                        m_std.edges[k].load_state_dict(blk.ops[c].state_dict())
                        k += 1
                else:
                    m_std.load_state_dict(m_sup.state_dict())
        return net
