"""SqueezeNet (Iandola et al. 2016) v1.0 and v1.1: Fire modules between ceil-mode 3x3/2 max pools, a 1x1 conv
classifier and global average pooling (no fully connected layer)."""

from __future__ import annotations

from nasforge.blocks import Fire, NetworkSpec
from nasforge.blocks._spec import Act, Conv, Dropout, Flatten, GlobalPool, Pool, Spec
from nasforge.zoo._registry import TORCHVISION, register_model


def _head(num_classes: int) -> tuple[Spec, ...]:
    return (Dropout(0.5), Conv(512, num_classes, 1), Act(), GlobalPool(1), Flatten())


def _pool() -> Pool:
    return Pool("max", 3, 2, ceil_mode=True)


@register_model(family="squeezenet", top1_percent=58.092, top1_source=TORCHVISION, macs=820_000_000,
                macs_source=TORCHVISION, params=1_248_424)
def squeezenet1_0(num_classes: int, resolution: int) -> NetworkSpec:
    """v1.0: 7x7/2 stem with 96 channels, pools after fire4 and fire8."""
    return NetworkSpec(
        "squeezenet1_0", (3, resolution, resolution),
        stem=(Conv(3, 96, 7, 2, 0), Act()),
        stages=(
            (_pool(), Fire(96, 16, 64, 64), Fire(128, 16, 64, 64), Fire(128, 32, 128, 128)),
            (_pool(), Fire(256, 32, 128, 128), Fire(256, 48, 192, 192), Fire(384, 48, 192, 192),
             Fire(384, 64, 256, 256)),
            (_pool(), Fire(512, 64, 256, 256)),
        ),
        head=_head(num_classes),
    )


@register_model(family="squeezenet", top1_percent=58.178, top1_source=TORCHVISION, macs=350_000_000,
                macs_source=TORCHVISION, params=1_235_496)
def squeezenet1_1(num_classes: int, resolution: int) -> NetworkSpec:
    """v1.1: 3x3/2 stem with 64 channels and earlier pools (2.4x fewer MACs at the same accuracy)."""
    return NetworkSpec(
        "squeezenet1_1", (3, resolution, resolution),
        stem=(Conv(3, 64, 3, 2, 0), Act()),
        stages=(
            (_pool(), Fire(64, 16, 64, 64), Fire(128, 16, 64, 64)),
            (_pool(), Fire(128, 32, 128, 128), Fire(256, 32, 128, 128)),
            (_pool(), Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256),
             Fire(512, 64, 256, 256)),
        ),
        head=_head(num_classes),
    )
