"""Performance estimation: the ``Estimator`` contract and its ``Result``."""

from __future__ import annotations

from nasforge.estimators._base import STATUSES, Estimator, Result
from nasforge.estimators._tabular import TabularEstimator

__all__ = ["STATUSES", "Estimator", "Result", "TabularEstimator"]
