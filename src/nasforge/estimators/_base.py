"""The estimator contract: evaluate one architecture, return a ``Result``. Estimators only evaluate."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from nasforge.spaces import Architecture
from nasforge.spaces._result import STATUSES, Result

__all__ = ["STATUSES", "Estimator", "Result"]


@runtime_checkable
class Estimator(Protocol):
    """Evaluates architectures; must not mutate them or know the strategy."""

    def evaluate(self, arch: Architecture) -> Result: ...
