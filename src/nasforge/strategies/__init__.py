"""Search strategies: ask/tell only, over any space's decisions.

``get_strategy(name, space, seed=..., **options)`` builds one of ``list_strategies()``: ``random``,
``evolution`` (regularized evolution), ``local`` (local search), ``reinforce`` (LSTM controller),
``bo`` (Optuna TPE/GP), ``grid`` (Cartesian product with a feasibility filter) and ``surrogate``
(local search asking neighbours in the order a surrogate predicts). Multi-objective (they read
``Result.objectives``; ``list_strategies(multi_objective=True)``): ``nsga2`` (steady-state NSGA-II),
``pareto-local`` (Pareto local search) and ``mo-surrogate`` (a surrogate per objective, hypervolume improvement).
``compound_scaling`` is EfficientNet's depth/width/resolution scaling rule.
"""

from __future__ import annotations

from nasforge.strategies import _bo, _evolution, _local, _nsga2, _pareto_local, _random, _reinforce  # noqa: F401
from nasforge.strategies._base import Strategy, get_strategy, list_strategies, register_strategy
from nasforge.strategies._grid import compound_scaling

__all__ = ["Strategy", "compound_scaling", "get_strategy", "list_strategies", "register_strategy"]
