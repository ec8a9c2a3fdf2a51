"""Performance estimation: the ``Estimator`` contract and its ``Result``."""

from __future__ import annotations

from nasforge.estimators._base import STATUSES, Estimator, Result
from nasforge.estimators._multifidelity import EarlyStopping, Rung, best_of, hyperband, rung_epochs, successive_halving
from nasforge.estimators._tabular import TabularEstimator
from nasforge.estimators._train import TrainingEstimator
from nasforge.estimators._zero_cost import PROXIES, ZeroCostEstimator, get_proxy, random_batch

__all__ = [
    "PROXIES",
    "STATUSES",
    "EarlyStopping",
    "Estimator",
    "Result",
    "Rung",
    "TabularEstimator",
    "TrainingEstimator",
    "ZeroCostEstimator",
    "best_of",
    "get_proxy",
    "hyperband",
    "random_batch",
    "rung_epochs",
    "successive_halving",
]
