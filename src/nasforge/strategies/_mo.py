"""What the multi-objective strategies share: the told objective vectors (to minimise) and their fronts.

A result's vector is ``(-reward, *result.objectives)`` (``minimise_vector``); failed results are kept as None so
they are never asked again. The strategies are deterministic: every choice is drawn from their one generator and
ties go to the first told.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nasforge.pareto import crowding_distance, pareto_ranks
from nasforge.spaces import Architecture, Result, SearchSpace
from nasforge.strategies._util import as_choices, minimise_vector

_MAX_TRIES = 100


class Told:
    """Told vectors by architecture (in tell order), asks still pending, and the ranking of the ok ones."""

    def __init__(self) -> None:
        self.values: dict[tuple[int, ...], tuple[float, ...] | None] = {}
        self.pending: dict[tuple[int, ...], int] = {}  # choices -> asks not yet told (an arch may be asked twice)
        self._cache: tuple[list[tuple[int, ...]], np.ndarray, np.ndarray] | None = None

    def seen(self, c: tuple[int, ...]) -> bool:
        return c in self.values or c in self.pending

    def ask(self, c: tuple[int, ...]) -> None:
        self.pending[c] = self.pending.get(c, 0) + 1

    def tell(self, arch: Architecture, result: Result) -> None:
        c = arch.choices
        n = self.pending.get(c, 0)
        if n > 1:
            self.pending[c] = n - 1
        else:
            self.pending.pop(c, None)
        v = minimise_vector(result)
        if c not in self.values or v is not None:  # a later success overrides a failure; not the reverse
            self.values[c] = v
        self._cache = None

    def ok(self) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray]:
        """(choices, vectors (n, m), Pareto ranks) of the ok results of the most recent vector length."""
        if self._cache is None:
            items = [(c, v) for c, v in self.values.items() if v is not None]
            m = len(items[-1][1]) if items else 1
            items = [(c, v) for c, v in items if len(v) == m]
            y = np.array([v for _, v in items], dtype=float).reshape(len(items), m)
            self._cache = ([c for c, _ in items], y, pareto_ranks(y))
        return self._cache

    def survivors(self, size: int) -> list[int]:
        """NSGA-II environmental selection: indices (into ``ok()``) of the best ``size`` by (rank, crowding)."""
        _, y, ranks = self.ok()
        chosen: list[int] = []
        for r in np.unique(ranks):
            idx = np.flatnonzero(ranks == r)
            if len(chosen) + len(idx) <= size:
                chosen += [int(i) for i in idx]
                continue
            crowd = crowding_distance(y[idx])
            order = np.argsort(-crowd, kind="stable")
            chosen += [int(idx[i]) for i in order[: size - len(chosen)]]
            break
        return chosen

    def random_unseen(self, space: SearchSpace, rng: np.random.Generator) -> tuple[int, ...]:
        c = space.sample(rng).choices
        tries = 0
        while self.seen(c) and tries < _MAX_TRIES:
            c = space.sample(rng).choices
            tries += 1
        return c

    def state_dict(self) -> dict[str, Any]:
        return {"values": [[list(c), None if v is None else list(v)] for c, v in self.values.items()],
                "pending": [[list(c), n] for c, n in self.pending.items()]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.values = {as_choices(c): (None if v is None else tuple(float(x) for x in v))
                       for c, v in state["values"]}
        self.pending = {as_choices(c): int(n) for c, n in state["pending"]}
        self._cache = None
