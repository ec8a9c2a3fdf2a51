"""ResNet (He et al. 2016) and ResNeXt (Xie et al. 2017) in torchvision's layout (v1.5: stride on the 3x3)."""

from __future__ import annotations

from nasforge.blocks import BasicBlock, Bottleneck, ConvBNAct, NetworkSpec
from nasforge.blocks._spec import Flatten, GlobalPool, Linear, Pool, Spec
from nasforge.zoo._registry import TORCHVISION, register_model


def resnet_net(name: str, depths: tuple[int, ...], bottleneck: bool, num_classes: int, resolution: int,
               groups: int = 1, base_width: int = 64) -> NetworkSpec:
    """7x7/2 conv stem + 3x3/2 max pool, four stages of ``depths`` blocks at 64-128-256-512 base channels
    (x4 for bottlenecks), stride 2 in the first block of stages 2-4, global pool + linear."""
    stages: list[tuple[Spec, ...]] = []
    c_in = 64
    for i, n in enumerate(depths):
        c_out = 64 * 2**i * (4 if bottleneck else 1)
        blocks: list[Spec] = []
        for j in range(n):
            stride = 2 if i > 0 and j == 0 else 1
            if bottleneck:
                blocks.append(Bottleneck(c_in, c_out, stride, groups, base_width))
            else:
                blocks.append(BasicBlock(c_in, c_out, stride))
            c_in = c_out
        stages.append(tuple(blocks))
    return NetworkSpec(
        name, (3, resolution, resolution),
        stem=(ConvBNAct(3, 64, 7, 2), Pool("max", 3, 2, 1)),
        stages=tuple(stages),
        head=(GlobalPool(1), Flatten(), Linear(c_in, num_classes)),
    )


@register_model(family="resnet", top1_percent=69.758, top1_source=TORCHVISION, macs=1_810_000_000,
                macs_source=TORCHVISION, params=11_689_512)
def resnet18(num_classes: int, resolution: int) -> NetworkSpec:
    """ResNet-18: 2-2-2-2 basic blocks."""
    return resnet_net("resnet18", (2, 2, 2, 2), False, num_classes, resolution)


@register_model(family="resnet", top1_percent=76.130, top1_source=TORCHVISION, macs=4_090_000_000,
                macs_source=TORCHVISION, params=25_557_032)
def resnet50(num_classes: int, resolution: int) -> NetworkSpec:
    """ResNet-50: 3-4-6-3 bottlenecks."""
    return resnet_net("resnet50", (3, 4, 6, 3), True, num_classes, resolution)


@register_model(family="resnet", top1_percent=77.618, top1_source=TORCHVISION, macs=4_230_000_000,
                macs_source=TORCHVISION, params=25_028_904)
def resnext50_32x4d(num_classes: int, resolution: int) -> NetworkSpec:
    """ResNeXt-50 32x4d: ResNet-50 with 32-group 3x3 convs, 4 channels per group in the first stage."""
    return resnet_net("resnext50_32x4d", (3, 4, 6, 3), True, num_classes, resolution, groups=32, base_width=4)
