"""The model registry: ``@register_model`` enrols a builder (and its published figures) under its function name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nasforge.blocks import NetworkSpec
from nasforge.errors import NasforgeError

Builder = Callable[[int, int], NetworkSpec]
"""``builder(num_classes, resolution) -> NetworkSpec``."""

TORCHVISION = "torchvision model docs, table of ImageNet-1K weights (IMAGENET1K_V1: Acc@1, GFLOPS)"


@dataclass(frozen=True)
class ModelInfo:
    """What the literature reports for a model on ImageNet at 224x224, with where it comes from.

    ``top1`` is a fraction in [0, 1] (as every accuracy in nasforge); the sources publish percent, which
    ``register_model(top1_percent=...)`` takes as written and divides by 100."""

    name: str
    family: str
    top1: float
    top1_source: str
    macs: int
    macs_source: str
    params: int | None = None  # the reference implementation's count at 1000 classes, where one is published

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "family": self.family, "top1": self.top1, "top1_source": self.top1_source,
                "published_macs": self.macs, "macs_source": self.macs_source, "published_params": self.params}


_BUILDERS: dict[str, Builder] = {}
_INFO: dict[str, ModelInfo] = {}


def register_model(*, family: str, top1_percent: float, top1_source: str, macs: int, macs_source: str,
                   params: int | None = None) -> Callable[[Builder], Builder]:
    """Register ``builder`` under its ``__name__`` with its published ImageNet top-1 (in percent, as published;
    stored as a fraction) and MACs (at 224)."""
    if not 0 < top1_percent <= 100:
        raise ValueError(f"top1_percent {top1_percent!r} must be a percentage in (0, 100]")

    def deco(builder: Builder) -> Builder:
        name = builder.__name__
        if name in _BUILDERS:
            raise ValueError(f"model {name!r} is registered twice")
        _BUILDERS[name] = builder
        _INFO[name] = ModelInfo(name, family, top1_percent / 100, top1_source, macs, macs_source, params)
        return builder

    return deco


def list_models() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(_BUILDERS)


def _known(name: str) -> None:
    if name not in _BUILDERS:
        raise NasforgeError(f"unknown model {name!r}; known: {', '.join(list_models())}")


def model_info(name: str) -> ModelInfo:
    """Published figures of ``name`` (top-1, MACs, params) and their sources."""
    _known(name)
    return _INFO[name]


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise NasforgeError(f"{what} {value!r} must be a positive integer")
    return value


def _try(builder: Builder, num_classes: int, resolution: int) -> NetworkSpec | None:
    """The network at this resolution, or None when some layer would get a non-positive spatial size."""
    spec = builder(num_classes, resolution)
    try:
        spec.cost()  # also fills the per-block cost cache the caller's next ``cost()`` uses
    except NasforgeError:
        return None
    return spec


def min_resolution(name: str, num_classes: int = 1000) -> int:
    """The smallest input side every layer of ``name`` can run on (output sizes grow with the input)."""
    _known(name)
    builder = _BUILDERS[name]
    hi = 1
    while _try(builder, num_classes, hi) is None:
        hi *= 2
        if hi > 1 << 16:
            raise NasforgeError(f"model {name!r} does not fit any resolution up to {hi}")
    lo = hi // 2  # does not fit (or 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _try(builder, num_classes, mid) is not None:
            hi = mid
        else:
            lo = mid
    return hi


def create(name: str, num_classes: int = 1000, resolution: int = 224) -> NetworkSpec:
    """The network ``name`` as a ``NetworkSpec`` for ``num_classes`` outputs and square ``resolution`` inputs.

    Raises ``NasforgeError`` for an unknown name, a non-positive size, or a resolution too small for the
    network's downsampling (some layer would get no pixels), naming the smallest workable resolution.
    """
    _known(name)
    _positive_int(num_classes, "num_classes")
    _positive_int(resolution, "resolution")
    spec = _try(_BUILDERS[name], num_classes, resolution)
    if spec is None:
        raise NasforgeError(f"resolution {resolution} is too small for {name}: its downsampling needs at least "
                            f"{min_resolution(name, num_classes)}")
    return spec
