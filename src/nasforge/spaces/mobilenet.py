"""``mobilenet``: the MobileNetV2 / ProxylessNAS / MCUNet (TinyNAS) fixed-topology space.

Stem (3x3 conv, stride 2) -> one fixed inverted-residual block (expand 1, kernel 3, like MobileNetV2's
first block) -> stages of inverted-residual blocks with searchable depth per stage and per-block kernel
and expand ratio -> 1x1 conv head, global pool, linear. The input resolution and a width multiplier are
decisions too (the TinyNAS knobs). The defaults follow ProxylessNAS-mobile (stage channels 24, 40, 80,
96, 192, 320; strides 2, 2, 2, 1, 2, 1; head 1280; depths 2..4 with a single-block last stage), so the
ProxylessNAS latency table's layer keys appear in its networks at width 1.

The head's 1280 channels stay fixed for width <= 1 (MobileNetV2, ProxylessNAS). ``head_scale=True``
scales them with the width too, as MCUNet/TinyNAS does: at 1000 classes the fixed head's int8 classifier
alone is 1.28 MB, more than a 1 MiB microcontroller flash at any width (``nasforge design tinynas`` sets it).

Channels are rounded with MobileNetV2's ``make_divisible`` (multiples of ``divisor``, default 8). The
canonical string is ``r<res>-w<width>|k3e1|<stage 1 blocks>|...``, blocks ``k<kernel>e<expand>`` joined
by commas, e.g. ``r160-w0.5|k3e1|k3e6,k5e4|...``. See ``nasforge.spaces._staged`` for the encoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nasforge.blocks._spec import ACTS
from nasforge.errors import NasforgeError
from nasforge.spaces._base import register_space
from nasforge.spaces._staged import StageDef, StagedSpace, check_int, float_list, int_list

DEFAULT_CHANNELS = (24, 40, 80, 96, 192, 320)
DEFAULT_STRIDES = (2, 2, 2, 1, 2, 1)
DEFAULT_DEPTHS: tuple[tuple[int, ...], ...] = ((2, 3, 4),) * 5 + ((1,),)
DEFAULT_RESOLUTIONS = tuple(range(48, 225, 16))
DEFAULT_WIDTHS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@register_space("mobilenet")
class MobileNetSpace(StagedSpace):
    """Inverted-residual stages with searchable depth, kernel, expand, width and resolution.

    ``depths`` is one list for every stage or one list per stage; every other list option is shared.
    """

    def __init__(
        self,
        stage_channels: Sequence[int] = DEFAULT_CHANNELS,
        stage_strides: Sequence[int] = DEFAULT_STRIDES,
        depths: Sequence[int] | Sequence[Sequence[int]] = DEFAULT_DEPTHS,
        kernels: Sequence[int] = (3, 5, 7),
        expands: Sequence[float] = (3, 4, 6),
        widths: Sequence[float] = DEFAULT_WIDTHS,
        resolutions: Sequence[int] = DEFAULT_RESOLUTIONS,
        num_classes: int = 1000,
        in_channels: int = 3,
        stem_channels: int = 32,
        first_channels: int = 16,
        head_channels: int = 1280,
        act: str = "relu6",
        divisor: int = 8,
        head_scale: bool = False,
    ) -> None:
        name = "mobilenet"
        chans = int_list(name, "stage_channels", stage_channels, 1, unique=False)
        strides = int_list(name, "stage_strides", stage_strides, 1, 2, unique=False)
        if len(strides) != len(chans):
            raise NasforgeError(f"{name}: option 'stage_strides' has {len(strides)} values; it needs one per stage "
                                f"({len(chans)})")
        per_stage = _depths(depths, len(chans))
        ks = int_list(name, "kernels", kernels, 1, 15, odd=True)
        es = tuple(v if not float(v).is_integer() else int(v) for v in float_list(name, "expands", expands, 0, 16))
        stages = [StageDef("inverted_residual", check_int(name, "first_channels", first_channels, 1), 1, (1,),
                           ((3,), (1,)))]
        for c, s, d in zip(chans, strides, per_stage, strict=True):
            stages.append(StageDef("inverted_residual", c, s, d, (ks, es)))
        if not isinstance(head_scale, bool):
            raise NasforgeError(f"{name}: option 'head_scale' has bad value {head_scale!r}; allowed: true, false")
        if act not in ACTS:
            raise NasforgeError(f"{name}: option 'act' has bad value {act!r}; allowed: {', '.join(ACTS)}")
        super().__init__(
            name, stages,
            resolutions=int_list(name, "resolutions", resolutions, 8, 4096),
            widths=float_list(name, "widths", widths, 0.0, 4.0),
            in_channels=check_int(name, "in_channels", in_channels, 1),
            num_classes=check_int(name, "num_classes", num_classes, 1),
            stem_channels=check_int(name, "stem_channels", stem_channels, 1),
            stem_stride=2,
            head_channels=check_int(name, "head_channels", head_channels, 0),
            act=act,
            divisor=check_int(name, "divisor", divisor, 1, 64),
            head_scale=head_scale,
        )


def _depths(value: Any, n: int) -> list[tuple[int, ...]]:
    """One depth list for all stages, or one per stage."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (list, tuple)) for v in value):
        if len(value) != n:
            raise NasforgeError(f"mobilenet: option 'depths' has {len(value)} lists; it needs one per stage ({n}) "
                                "or a single list for all")
        return [int_list("mobilenet", f"depths[{i}]", v, 1, 16) for i, v in enumerate(value)]
    one = int_list("mobilenet", "depths", value, 1, 16)
    return [one] * n
