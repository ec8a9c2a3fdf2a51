"""MobileNet v1 (Howard et al. 2017) and v2 (Sandler et al. 2018, torchvision layout), width 1.0."""

from __future__ import annotations

from nasforge.blocks import ConvBNAct, DepthwiseSeparable, InvertedResidual, NetworkSpec
from nasforge.blocks._spec import Dropout, Flatten, GlobalPool, Linear, Spec
from nasforge.zoo._registry import TORCHVISION, register_model

MOBILENET_V1_PAPER = "Howard et al. 2017, MobileNets (arXiv:1704.04861), Table 8: 1.0 MobileNet-224"

# (output channels, stride of the first block, number of blocks) per stage
_V1_STAGES = ((64, 1, 1), (128, 2, 2), (256, 2, 2), (512, 2, 6), (1024, 2, 2))
# MobileNetV2 (expand ratio t, output channels c, blocks n, first stride s), Table 2 of the paper
_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
              (6, 320, 1, 1))


@register_model(family="mobilenet", top1_percent=70.6, top1_source=MOBILENET_V1_PAPER, macs=569_000_000,
                macs_source=MOBILENET_V1_PAPER)
def mobilenet_v1(num_classes: int, resolution: int) -> NetworkSpec:
    """3x3/2 conv stem, 13 depthwise-separable blocks (32 -> 1024 channels), global pool, linear."""
    stages: list[tuple[Spec, ...]] = []
    c_in = 32
    for c, s, n in _V1_STAGES:
        blocks: list[Spec] = []
        for j in range(n):
            blocks.append(DepthwiseSeparable(c_in, c, s if j == 0 else 1))
            c_in = c
        stages.append(tuple(blocks))
    return NetworkSpec(
        "mobilenet_v1", (3, resolution, resolution),
        stem=(ConvBNAct(3, 32, 3, 2),),
        stages=tuple(stages),
        head=(GlobalPool(1), Flatten(), Linear(c_in, num_classes)),
    )


@register_model(family="mobilenet", top1_percent=71.878, top1_source=TORCHVISION, macs=300_000_000,
                macs_source=TORCHVISION, params=3_504_872)
def mobilenet_v2(num_classes: int, resolution: int) -> NetworkSpec:
    """3x3/2 conv stem, 17 inverted residual blocks (ReLU6), 1x1 conv to 1280, global pool, dropout, linear."""
    stages: list[tuple[Spec, ...]] = []
    c_in = 32
    for t, c, n, s in _V2_STAGES:
        blocks: list[Spec] = []
        for j in range(n):
            blocks.append(InvertedResidual(c_in, c, s if j == 0 else 1, t, 3, "relu6"))
            c_in = c
        stages.append(tuple(blocks))
    return NetworkSpec(
        "mobilenet_v2", (3, resolution, resolution),
        stem=(ConvBNAct(3, 32, 3, 2, act="relu6"),),
        stages=tuple(stages),
        head=(ConvBNAct(c_in, 1280, 1, act="relu6"), GlobalPool(1), Flatten(), Dropout(0.2),
              Linear(1280, num_classes)),
    )
