"""VGG (Simonyan & Zisserman 2015): stacks of 3x3 convs with ReLU between 2x2 max pools, no batch norm."""

from __future__ import annotations

from nasforge.blocks import NetworkSpec
from nasforge.blocks._spec import Act, Conv, Dropout, Flatten, GlobalPool, Linear, Pool, Spec
from nasforge.zoo._registry import TORCHVISION, register_model


def _convs(c_in: int, c_out: int, n: int) -> tuple[Spec, ...]:
    out: list[Spec] = []
    for i in range(n):
        out += [Conv(c_in if i == 0 else c_out, c_out, 3), Act()]
    return tuple(out)


def vgg_net(name: str, depths: tuple[int, ...], num_classes: int, resolution: int) -> NetworkSpec:
    """VGG with ``depths[i]`` convs at width 64 * 2**i (capped at 512); stages after the first start with
    the max pool that halves the resolution; torchvision's adaptive 7x7 pool and classifier (with dropout)."""
    widths = [min(64 * 2**i, 512) for i in range(len(depths))]
    stages = tuple((Pool("max", 2, 2), *_convs(widths[i - 1], widths[i], depths[i])) for i in range(1, len(depths)))
    return NetworkSpec(
        name, (3, resolution, resolution),
        stem=_convs(3, widths[0], depths[0]),
        stages=stages,
        head=(Pool("max", 2, 2), GlobalPool(7), Flatten(),
              Linear(widths[-1] * 7 * 7, 4096), Act(), Dropout(0.5),
              Linear(4096, 4096), Act(), Dropout(0.5),
              Linear(4096, num_classes)),
    )


@register_model(family="vgg", top1_percent=71.592, top1_source=TORCHVISION, macs=15_470_000_000,
                macs_source=TORCHVISION, params=138_357_544)
def vgg16(num_classes: int, resolution: int) -> NetworkSpec:
    """VGG-16 (configuration D): 2-2-3-3-3 convs."""
    return vgg_net("vgg16", (2, 2, 3, 3, 3), num_classes, resolution)
