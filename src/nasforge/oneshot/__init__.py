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
from nasforge.oneshot._method_darts import darts
from nasforge.oneshot._method_proxyless import proxyless
from nasforge.oneshot._method_spos import spos
from nasforge.oneshot._registry import list_supernets, make_supernet, register_supernet
from nasforge.oneshot._retrain import retrain
from nasforge.oneshot._supernet import Supernet

__all__ = [
    "Supernet",
    "SupernetEstimator",
    "darts",
    "list_supernets",
    "make_supernet",
    "proxyless",
    "register_supernet",
    "retrain",
    "spos",
]

# Supernets register themselves when imported (one import line per supernet module).
from nasforge.oneshot import _darts as _darts
from nasforge.oneshot import _nb201 as _nb201
from nasforge.oneshot import _staged as _staged
