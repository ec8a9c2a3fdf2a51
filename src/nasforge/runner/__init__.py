"""The search loop, the crash-safe run store, constraints and Pareto fronts."""

from __future__ import annotations

from nasforge.runner._constraints import (
    Constraint,
    Constraints,
    canonical_constraints,
    check_satisfiable,
    cost_numbers,
    pareto_front,
    parse_constraint,
    parse_constraints,
)
from nasforge.runner._loop import SearchResult, best_trial, evaluate_safely, pareto_trials, run_search
from nasforge.runner._store import RunStore, Trial, check_new_run_dir, is_run_dir

__all__ = [
    "Constraint",
    "Constraints",
    "RunStore",
    "SearchResult",
    "Trial",
    "best_trial",
    "canonical_constraints",
    "check_new_run_dir",
    "check_satisfiable",
    "cost_numbers",
    "evaluate_safely",
    "is_run_dir",
    "pareto_front",
    "pareto_trials",
    "parse_constraint",
    "parse_constraints",
    "run_search",
]
