"""ShuffleNet v1 (Zhang et al. 2018, g=3, 1.0x) and v2 (Ma et al. 2018, 1.0x, torchvision layout)."""

from __future__ import annotations

from nasforge.blocks import ConvBNAct, NetworkSpec, ShuffleV1Unit, ShuffleV2Unit
from nasforge.blocks._spec import Flatten, GlobalPool, Linear, Pool, Spec
from nasforge.zoo._registry import TORCHVISION, register_model

# The paper (Zhang et al. 2018, arXiv:1707.01083, Table 2) gives 140 MFLOPs and 67.4% for 1x, g=3, counting some
# elementwise work too; its authors' reference implementation reports 138M (conv/linear MACs, as here) and 67.8%.
SHUFFLENET_V1_REF = ("megvii-model/ShuffleNet-Series, ShuffleNetV1/README.md (the authors' reference "
                     "implementation): ShuffleNetV1 1.0x (group=3)")
SHUFFLENET_V2_PAPER = "Ma et al. 2018, ShuffleNet V2 (arXiv:1807.11164), Table 8: ShuffleNet v2 1x"

_REPEATS = (4, 8, 4)


def _stem() -> tuple[Spec, ...]:
    return (ConvBNAct(3, 24, 3, 2), Pool("max", 3, 2, 1))


@register_model(family="shufflenet", top1_percent=67.8, top1_source=SHUFFLENET_V1_REF, macs=138_000_000,
                macs_source=SHUFFLENET_V1_REF)
def shufflenet_v1(num_classes: int, resolution: int) -> NetworkSpec:
    """g=3: stages of 4-8-4 units at 240-480-960 channels; the very first 1x1 conv is not grouped; the classifier
    has no bias, as in the reference implementation."""
    stages: list[tuple[Spec, ...]] = []
    c_in = 24
    for i, (c, n) in enumerate(zip((240, 480, 960), _REPEATS, strict=True)):
        first = ShuffleV1Unit(c_in, c, 2, 3, first_grouped=i > 0)
        stages.append((first, *(ShuffleV1Unit(c, c, 1, 3) for _ in range(n - 1))))
        c_in = c
    return NetworkSpec(
        "shufflenet_v1", (3, resolution, resolution),
        stem=_stem(),
        stages=tuple(stages),
        head=(GlobalPool(1), Flatten(), Linear(c_in, num_classes, bias=False)),
    )


@register_model(family="shufflenet", top1_percent=69.362, top1_source=TORCHVISION, macs=146_000_000,
                macs_source=SHUFFLENET_V2_PAPER, params=2_278_604)
def shufflenet_v2_x1_0(num_classes: int, resolution: int) -> NetworkSpec:
    """1.0x: stages of 4-8-4 units at 116-232-464 channels, 1x1 conv to 1024, global pool, linear."""
    stages: list[tuple[Spec, ...]] = []
    c_in = 24
    for c, n in zip((116, 232, 464), _REPEATS, strict=True):
        stages.append((ShuffleV2Unit(c_in, c, 2), *(ShuffleV2Unit(c, c, 1) for _ in range(n - 1))))
        c_in = c
    return NetworkSpec(
        "shufflenet_v2_x1_0", (3, resolution, resolution),
        stem=_stem(),
        stages=tuple(stages),
        head=(ConvBNAct(c_in, 1024, 1), GlobalPool(1), Flatten(), Linear(1024, num_classes)),
    )
