"""The torch modules that specs build. Each takes its spec and runs the layers ``spec.emit`` lists, in order."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nasforge.blocks._functional import channel_shuffle
from nasforge.blocks._spec import (
    BasicBlock,
    Bottleneck,
    ConvBNAct,
    DepthwiseSeparable,
    Fire,
    InvertedResidual,
    NetworkSpec,
    ShuffleV1Unit,
    ShuffleV2Unit,
    make_act,
)


class ConvBNActModule(nn.Sequential):
    """conv (no bias) -> batch norm -> activation."""

    def __init__(self, s: ConvBNAct) -> None:
        super().__init__()
        self.conv = nn.Conv2d(s.in_ch, s.out_ch, s.kernel, s.stride, (s.kernel - 1) // 2, groups=s.groups,
                              bias=False)
        self.bn = nn.BatchNorm2d(s.out_ch)
        if s.act != "none":
            self.act = make_act(s.act)


class Network(nn.Module):
    """stem -> stages -> head, built from a ``NetworkSpec``."""

    def __init__(self, spec: NetworkSpec) -> None:
        super().__init__()
        self.spec = spec
        self.stem = nn.Sequential(*(s.build() for s in spec.stem))
        self.stages = nn.Sequential(*(nn.Sequential(*(b.build() for b in st)) for st in spec.stages))
        self.head = nn.Sequential(*(s.build() for s in spec.head))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(x)))


class InvertedResidualModule(nn.Module):
    """1x1 expand -> depthwise -> 1x1 project, residual when shapes match."""

    def __init__(self, s: InvertedResidual) -> None:
        super().__init__()
        self.use_residual = s.use_residual
        h = s.hidden
        self.expand = ConvBNActModule(ConvBNAct(s.in_ch, h, 1, 1, 1, s.act)) if s.expand != 1 else None
        self.dw = ConvBNActModule(ConvBNAct(h, h, s.kernel, s.stride, h, s.act))
        self.project = ConvBNActModule(ConvBNAct(h, s.out_ch, 1, 1, 1, "none"))

    def forward(self, x: Tensor) -> Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.dw(y))
        return x + y if self.use_residual else y


class DepthwiseSeparableModule(nn.Sequential):
    """depthwise conv-BN-act -> pointwise conv-BN-act."""

    def __init__(self, s: DepthwiseSeparable) -> None:
        super().__init__()
        self.dw = ConvBNActModule(ConvBNAct(s.in_ch, s.in_ch, s.kernel, s.stride, s.in_ch, s.act))
        self.pw = ConvBNActModule(ConvBNAct(s.in_ch, s.out_ch, 1, 1, 1, s.act))


class FireModule(nn.Module):
    """squeeze 1x1 + ReLU -> (expand 1x1 + ReLU, expand 3x3 + ReLU) -> concat."""

    def __init__(self, s: Fire) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(s.in_ch, s.squeeze, 1)
        self.squeeze_act = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(s.squeeze, s.expand1x1, 1)
        self.expand1x1_act = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(s.squeeze, s.expand3x3, 3, padding=1)
        self.expand3x3_act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.squeeze_act(self.squeeze(x))
        a = self.expand1x1_act(self.expand1x1(x))
        b = self.expand3x3_act(self.expand3x3(x))
        return torch.cat([a, b], 1)


class BasicBlockModule(nn.Module):
    """conv1 (3x3, stride) -> conv2 (3x3, no act) + shortcut -> ReLU."""

    def __init__(self, s: BasicBlock) -> None:
        super().__init__()
        self.conv1 = ConvBNActModule(ConvBNAct(s.in_ch, s.out_ch, 3, s.stride))
        self.conv2 = ConvBNActModule(ConvBNAct(s.out_ch, s.out_ch, 3, 1, 1, "none"))
        self.shortcut = (ConvBNActModule(ConvBNAct(s.in_ch, s.out_ch, 1, s.stride, 1, "none"))
                         if s.has_projection else None)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv2(self.conv1(x))
        if self.shortcut is not None:
            x = self.shortcut(x)
        return self.act(y + x)


class BottleneckModule(nn.Module):
    """1x1 reduce -> 3x3 (stride, groups) -> 1x1 expand (no act) + shortcut -> ReLU."""

    def __init__(self, s: Bottleneck) -> None:
        super().__init__()
        w = s.width
        self.conv1 = ConvBNActModule(ConvBNAct(s.in_ch, w, 1))
        self.conv2 = ConvBNActModule(ConvBNAct(w, w, 3, s.stride, s.groups))
        self.conv3 = ConvBNActModule(ConvBNAct(w, s.out_ch, 1, 1, 1, "none"))
        self.shortcut = (ConvBNActModule(ConvBNAct(s.in_ch, s.out_ch, 1, s.stride, 1, "none"))
                         if s.has_projection else None)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv3(self.conv2(self.conv1(x)))
        if self.shortcut is not None:
            x = self.shortcut(x)
        return self.act(y + x)


class ShuffleV1UnitModule(nn.Module):
    """1x1 group conv -> shuffle -> 3x3 depthwise -> 1x1 group conv; add (stride 1) or concat an avg-pooled
    input (stride 2); ReLU."""

    def __init__(self, s: ShuffleV1Unit) -> None:
        super().__init__()
        self.stride = s.stride
        self.groups = s.groups
        self.pw1 = ConvBNActModule(ConvBNAct(s.in_ch, s.mid, 1, 1, s.groups if s.first_grouped else 1))
        self.dw = ConvBNActModule(ConvBNAct(s.mid, s.mid, 3, s.stride, s.mid, "none"))
        self.pw2 = ConvBNActModule(ConvBNAct(s.mid, s.branch_out, 1, 1, s.groups, "none"))
        self.shortcut = nn.AvgPool2d(3, 2, 1) if s.stride == 2 else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        y = self.pw2(self.dw(channel_shuffle(self.pw1(x), self.groups)))
        y = y + x if self.shortcut is None else torch.cat([self.shortcut(x), y], 1)
        return self.act(y)


class ShuffleV2UnitModule(nn.Module):
    """Split (stride 1) or two branches (stride 2), concat, shuffle with 2 groups."""

    def __init__(self, s: ShuffleV2Unit) -> None:
        super().__init__()
        self.stride = s.stride
        self.branch1 = nn.Sequential(*(b.build() for b in s.branch1())) if s.stride == 2 else None
        self.branch2 = nn.Sequential(*(b.build() for b in s.branch2()))

    def forward(self, x: Tensor) -> Tensor:
        if self.branch1 is None:
            a, x = x.chunk(2, dim=1)
        else:
            a = self.branch1(x)
        return channel_shuffle(torch.cat([a, self.branch2(x)], 1), 2)
