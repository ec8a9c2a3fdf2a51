"""One-shot search: supernets, DARTS, ProxylessNAS (latency loss) and SPOS. Not ask/tell strategies: each
trains a supernet once and returns an ``Architecture`` of the same space."""

from __future__ import annotations

from typing import Any

from nasforge.errors import NasforgeError
from nasforge.oneshot._methods import (
    OneShotResult,
    SupernetEstimator,
    count_op,
    darts,
    expected_latency,
    measure_choice_latency,
    proxyless,
    proxyless_alpha_step,
    spos,
)
from nasforge.oneshot._supernet import ChoiceBlock, Supernet, recalibrate_bn
from nasforge.spaces import SearchSpace

METHODS = ("darts", "proxyless", "spos")


def make_supernet(space: SearchSpace, **options: Any) -> Supernet:
    """The supernet of a space; spaces without one raise ``NasforgeError`` naming those that have one."""
    if space.name == "nb201":
        from nasforge.oneshot._nb201 import NB201Supernet
        from nasforge.spaces.nb201 import NB201Space

        assert isinstance(space, NB201Space)
        return NB201Supernet(space, **options)
    raise NasforgeError(f"space {space.name!r} has no supernet; supernets exist for: nb201")


__all__ = [
    "METHODS",
    "ChoiceBlock",
    "OneShotResult",
    "Supernet",
    "SupernetEstimator",
    "count_op",
    "darts",
    "expected_latency",
    "make_supernet",
    "measure_choice_latency",
    "proxyless",
    "proxyless_alpha_step",
    "recalibrate_bn",
    "spos",
]
