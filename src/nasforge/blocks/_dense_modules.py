"""The torch modules of the dense specs (``_dense``): they run the layers the specs emit, in the same order."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from nasforge.blocks._dense import ASPPLite, FCOSHead, PyramidSpec, gn_groups, resample, run_pyramid


def _tower(s: FCOSHead) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(s.convs):
        layers += [nn.Conv2d(s.channels, s.channels, 3, 1, 1), nn.GroupNorm(gn_groups(s.channels), s.channels),
                   nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class FCOSHeadModule(nn.Module):
    """Class tower -> class logits; box tower -> box distances and centerness; concatenated (one level).

    Initialised as FCOS: convs normal(0, 0.01) with zero bias, the class bias at -log((1 - 0.01) / 0.01) so every
    location starts at a 1% foreground probability (training is stable from the first step)."""

    def __init__(self, s: FCOSHead) -> None:
        super().__init__()
        self.cls_tower = _tower(s)
        self.cls_logits = nn.Conv2d(s.channels, s.num_classes, 3, 1, 1)
        self.box_tower = _tower(s)
        self.box = nn.Conv2d(s.channels, 4, 3, 1, 1)
        self.centerness = nn.Conv2d(s.channels, 1, 3, 1, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
        assert self.cls_logits.bias is not None
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - 0.01) / 0.01))

    def forward(self, x: Tensor) -> Tensor:
        cls = self.cls_logits(self.cls_tower(x))
        t = self.box_tower(x)
        return torch.cat([cls, self.box(t), self.centerness(t)], 1)


class ASPPLiteModule(nn.Module):
    """1x1 and dilated 3x3 conv-BN-ReLU branches, an image-pooling branch, concatenated, fused by 1x1 conv-BN-ReLU."""

    def __init__(self, s: ASPPLite) -> None:
        super().__init__()
        self.branches = nn.ModuleList()
        for r in (1, *s.rates):
            k = 1 if r == 1 else 3
            self.branches.append(nn.Sequential(
                nn.Conv2d(s.in_ch, s.mid, k, 1, 0 if r == 1 else r, dilation=r, bias=False),
                nn.BatchNorm2d(s.mid), nn.ReLU(inplace=True)))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(s.in_ch, s.mid, 1), nn.ReLU(inplace=True))
        self.project = nn.Sequential(nn.Conv2d(s.mid * (len(s.rates) + 2), s.mid, 1, bias=False),
                                     nn.BatchNorm2d(s.mid), nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        outs = [b(x) for b in self.branches]
        p = self.pool(x)
        outs.append(nn.functional.interpolate(p, size=(int(x.shape[2]), int(x.shape[3])), mode="nearest"))
        return self.project(torch.cat(outs, 1))


class _Same(nn.Module):
    """Identity (a merge input already at the cell's level)."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class PyramidNetwork(nn.Module):
    """A detector built from a ``PyramidSpec``: returns one (N, num_classes + 5, h, w) map per output level.

    ``strides`` (the dense contract) lists each output level's stride in input pixels."""

    def __init__(self, spec: PyramidSpec) -> None:
        super().__init__()
        self.spec = spec
        self.strides: tuple[int, ...] = tuple(spec.strides)
        self.backbone = nn.ModuleList(s.build() for s in spec.backbone)
        self.laterals = nn.ModuleList(s.build() for _, s in spec.laterals)
        self.extras = nn.ModuleList(s.build() for s in spec.extras)
        levels = spec.pool_levels()
        self.cells = nn.ModuleList()
        for c in spec.cells:
            res = [resample(levels[i], c.level, spec.sizes[c.level]) for i in (c.a, c.b)]
            mods = [r.build() if r is not None else _Same() for r in res]
            gate = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Sigmoid()) if c.op == "attention" else _Same()
            self.cells.append(nn.ModuleList([*mods, gate, spec.post.build()]))
        self.head = spec.head.build()

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return run_pyramid(self, x)
