"""Every registered strategy runs the conformance suite ``nasforge.testing.pytest_strategies.StrategySuite``."""

from __future__ import annotations

from nasforge.strategies import list_strategies
from nasforge.testing.pytest_strategies import StrategySuite


class TestStrategies(StrategySuite):
    pass


def test_every_built_in_strategy_is_enrolled() -> None:
    assert {"random", "evolution", "local", "reinforce", "bo", "grid", "surrogate"} <= set(list_strategies())
    assert {"nsga2", "pareto-local", "mo-surrogate"} <= set(list_strategies(multi_objective=True))
    assert "evolution" in list_strategies(multi_objective=False)
