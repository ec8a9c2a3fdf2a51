"""The torch modules that specs build. Each takes its spec and runs the layers ``spec.emit`` lists, in order."""

from __future__ import annotations

from torch import Tensor, nn

from nasforge.blocks._spec import ConvBNAct, InvertedResidual, NetworkSpec, make_act


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
