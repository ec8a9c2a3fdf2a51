"""One-shot search: supernets, DARTS, ProxylessNAS (latency loss) and SPOS. Not ask/tell strategies: each
trains a supernet once and returns an ``Architecture`` of the same space.

Layout: ``_supernet`` (choice blocks, the ``Supernet`` base), one module per supernet (``_nb201``, ``_darts``,
``_staged``), registered in ``_registry`` (``make_supernet``, ``list_supernets``, the ``METHODS``); one module per
method (``_method_darts``, ``_method_proxyless``, ``_method_spos``) on the shared loop of ``_training``;
``_estimator`` (inherited-weight scoring), ``_latency`` (latency tables), ``_memory`` (peak memory of a step),
``_rng`` (seeded torch randomness without global seeding).
"""

from __future__ import annotations

from nasforge.oneshot._estimator import SupernetEstimator
from nasforge.oneshot._latency import (
    expected_latency,
    latency_range,
    measure_choice_latency,
    path_latency,
    table_from_lut,
)
from nasforge.oneshot._memory import step_peak_memory
from nasforge.oneshot._method_darts import darts, perturbation_select
from nasforge.oneshot._method_proxyless import derive_under_latency, proxyless, proxyless_alpha_step
from nasforge.oneshot._method_spos import spos
from nasforge.oneshot._registry import (
    METHODS,
    example_space,
    list_supernets,
    make_supernet,
    register_supernet,
)
from nasforge.oneshot._retrain import retrain
from nasforge.oneshot._supernet import ChoiceBlock, Supernet, recalibrate_bn
from nasforge.oneshot._training import ALPHA_STILL, OneShotResult, count_op, mixed_accuracy

__all__ = [
    "ALPHA_STILL",
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
    "mixed_accuracy",
    "path_latency",
    "perturbation_select",
    "proxyless",
    "proxyless_alpha_step",
    "recalibrate_bn",
    "register_supernet",
    "retrain",
    "spos",
    "step_peak_memory",
    "table_from_lut",
]

# Supernets register themselves when imported (one import line per supernet module).
from nasforge.oneshot import _darts as _darts
from nasforge.oneshot import _nb201 as _nb201
from nasforge.oneshot import _staged as _staged
