"""The built-in estimators run the conformance suite ``nasforge.testing.pytest_estimators.EstimatorSuite``."""

from __future__ import annotations

from nasforge.testing.pytest_estimators import EstimatorSuite


class TestEstimators(EstimatorSuite):
    pass
