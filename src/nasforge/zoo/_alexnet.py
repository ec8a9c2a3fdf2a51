"""AlexNet (Krizhevsky et al. 2012), in torchvision's single-tower layout (64-192-384-256-256 channels)."""

from __future__ import annotations

from nasforge.blocks import NetworkSpec
from nasforge.blocks._spec import Act, Conv, Dropout, Flatten, GlobalPool, Linear, Pool
from nasforge.zoo._registry import TORCHVISION, register_model


@register_model(family="alexnet", top1_percent=56.522, top1_source=TORCHVISION, macs=710_000_000,
                macs_source=TORCHVISION, params=61_100_840)
def alexnet(num_classes: int, resolution: int) -> NetworkSpec:
    """Five convs with ReLU and three 3x3/2 max pools, adaptive 6x6 average pool, three-layer classifier
    with dropout. Each stage starts with the pool that downsamples it."""
    return NetworkSpec(
        "alexnet", (3, resolution, resolution),
        stem=(Conv(3, 64, 11, 4, 2), Act()),
        stages=(
            (Pool("max", 3, 2), Conv(64, 192, 5), Act()),
            (Pool("max", 3, 2), Conv(192, 384, 3), Act(), Conv(384, 256, 3), Act(), Conv(256, 256, 3), Act()),
        ),
        head=(Pool("max", 3, 2), GlobalPool(6), Flatten(),
              Dropout(0.5), Linear(256 * 6 * 6, 4096), Act(),
              Dropout(0.5), Linear(4096, 4096), Act(),
              Linear(4096, num_classes)),
    )
