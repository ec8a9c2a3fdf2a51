"""The search loop, the crash-safe run store, constraints and Pareto fronts.

The public surface is what users call; the jobs and tests use the private modules for the rest
(``_constraints``: parsing, ``check_satisfiable``, ``pareto_front``; ``_store``: ``is_run_dir``).
"""

from __future__ import annotations

from nasforge.runner._constraints import Constraints
from nasforge.runner._loop import SearchResult, run_search
from nasforge.runner._store import RunStore, Trial

__all__ = ["Constraints", "RunStore", "SearchResult", "Trial", "run_search"]
