"""One-shot search: supernets, DARTS, ProxylessNAS (latency loss) and SPOS. Not ask/tell strategies: each
trains a supernet once and returns an ``Architecture`` of the same space."""

from __future__ import annotations

from typing import Any

import torch

from nasforge.errors import NasforgeError
from nasforge.oneshot._methods import (
    OneShotResult,
    SupernetEstimator,
    count_op,
    darts,
    derive_under_latency,
    expected_latency,
    latency_range,
    measure_choice_latency,
    path_latency,
    proxyless,
    proxyless_alpha_step,
    spos,
    step_peak_memory,
    table_from_lut,
)
from nasforge.oneshot._supernet import ChoiceBlock, Supernet, recalibrate_bn
from nasforge.spaces import SearchSpace

METHODS = ("darts", "proxyless", "spos")


SUPERNET_SPACES = ("nb201", "darts", "mobilenet", "config")


def make_supernet(space: SearchSpace, **options: Any) -> Supernet:
    """The supernet of a space; spaces without one raise ``NasforgeError`` naming those that have one.

    Options: ``num_classes``, ``seed`` (weight and alpha init: the same seed gives the same supernet) for all;
    nb201 also ``in_channels``; staged spaces
    (``mobilenet``, ``config``) also ``resolution`` and ``width`` (fixed per supernet, values of the space).
    """
    from nasforge.spaces._staged import StagedSpace
    from nasforge.spaces.darts import DartsSpace
    from nasforge.spaces.nb201 import NB201Space

    allowed = {"nb201": ("num_classes", "in_channels", "seed"), "darts": ("num_classes", "seed"),
               "staged": ("num_classes", "seed", "resolution", "width")}
    kind = ("nb201" if isinstance(space, NB201Space) else "darts" if isinstance(space, DartsSpace)
            else "staged" if isinstance(space, StagedSpace) else None)
    if kind is None:
        raise NasforgeError(f"space {space.name!r} has no supernet; supernets exist for: {', '.join(SUPERNET_SPACES)}")
    bad = sorted(set(options) - set(allowed[kind]))
    if bad:
        raise NasforgeError(f"unknown supernet option(s) {', '.join(bad)} for {space.name}; allowed: "
                            f"{', '.join(allowed[kind])}")
    with torch.random.fork_rng(devices=[]):  # weight init from ``seed``, the caller's RNG untouched
        torch.manual_seed(int(options.get("seed", 0)))
        return _build(kind, space, options)


def _build(kind: str, space: SearchSpace, options: dict[str, Any]) -> Supernet:
    if kind == "nb201":
        from nasforge.oneshot._nb201 import NB201Supernet
        from nasforge.spaces.nb201 import NB201Space

        assert isinstance(space, NB201Space)
        return NB201Supernet(space, **options)
    if kind == "darts":
        from nasforge.oneshot._darts import DartsSupernet
        from nasforge.spaces.darts import DartsSpace

        assert isinstance(space, DartsSpace)
        return DartsSupernet(space, **options)
    from nasforge.oneshot._staged import StagedSupernet
    from nasforge.spaces._staged import StagedSpace

    assert isinstance(space, StagedSpace)
    return StagedSupernet(space, **options)


__all__ = [
    "METHODS",
    "SUPERNET_SPACES",
    "ChoiceBlock",
    "OneShotResult",
    "Supernet",
    "SupernetEstimator",
    "count_op",
    "darts",
    "derive_under_latency",
    "expected_latency",
    "latency_range",
    "make_supernet",
    "measure_choice_latency",
    "path_latency",
    "proxyless",
    "proxyless_alpha_step",
    "recalibrate_bn",
    "spos",
    "step_peak_memory",
    "table_from_lut",
]
