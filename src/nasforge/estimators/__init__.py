"""Performance estimation: the ``Estimator`` contract, its ``Result`` (defined beside ``Architecture``) and the
estimators: training (``DenseTrainingEstimator``: segmentation and detection), tabular lookup, zero-cost proxies,
multi-fidelity (early stopping, successive halving, hyperband). The proxies and the rung helpers are in the private
modules (``_zero_cost``, ``_multifidelity``).
"""

from __future__ import annotations

from nasforge.estimators._base import STATUSES, Estimator, Result
from nasforge.estimators._dense import DenseTrainingEstimator
from nasforge.estimators._multifidelity import EarlyStopping, hyperband, successive_halving
from nasforge.estimators._tabular import TabularEstimator
from nasforge.estimators._train import TrainingEstimator
from nasforge.estimators._zero_cost import ZeroCostEstimator

__all__ = [
    "STATUSES",
    "DenseTrainingEstimator",
    "EarlyStopping",
    "Estimator",
    "Result",
    "TabularEstimator",
    "TrainingEstimator",
    "ZeroCostEstimator",
    "hyperband",
    "successive_halving",
]
