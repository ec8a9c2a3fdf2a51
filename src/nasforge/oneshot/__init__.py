"""One-shot search: supernets, DARTS, ProxylessNAS (latency loss) and SPOS. Not ask/tell strategies: each
trains a supernet once and returns an ``Architecture`` of the same space."""

from __future__ import annotations

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
from nasforge.oneshot._registry import (
    METHODS,
    example_space,
    list_supernets,
    make_supernet,
    register_supernet,
)
from nasforge.oneshot._supernet import ChoiceBlock, Supernet, recalibrate_bn

__all__ = [
    "METHODS",
    "ChoiceBlock",
    "OneShotResult",
    "Supernet",
    "SupernetEstimator",
    "count_op",
    "darts",
    "derive_under_latency",
    "example_space",
    "expected_latency",
    "latency_range",
    "list_supernets",
    "make_supernet",
    "measure_choice_latency",
    "path_latency",
    "proxyless",
    "proxyless_alpha_step",
    "recalibrate_bn",
    "register_supernet",
    "spos",
    "step_peak_memory",
    "table_from_lut",
]

# Supernets register themselves when imported (one import line per supernet module).
from nasforge.oneshot import _darts as _darts
from nasforge.oneshot import _nb201 as _nb201
from nasforge.oneshot import _staged as _staged
