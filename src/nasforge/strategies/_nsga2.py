"""NSGA-II (Deb et al. 2002) as a steady-state ask/tell search: non-dominated sorting + crowding distance.

After every tell the population is re-selected from everything told (the first fronts, the last one cut by
crowding distance); each ask is the child of binary tournaments on (rank, crowding), crossed over with
probability ``crossover`` and mutated once, never an architecture already asked. A steady state lets a small
population work at small budgets: the first ``population`` asks are random, every later one is a child.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nasforge.pareto import crowding_distance
from nasforge.spaces import Architecture, Result, SearchSpace
from nasforge.strategies._base import register_strategy
from nasforge.strategies._mo import _MAX_TRIES, Told
from nasforge.strategies._util import check_fraction, check_kind, check_positive, rng_state, set_rng_state


@register_strategy("nsga2", multi_objective=True)
class NSGA2:
    """Steady-state NSGA-II over the space's ``mutate``/``crossover``.

    Options: ``population`` (12): random asks before the first child, and the size of the selected population;
    ``crossover`` (0.5): probability that a child is the crossover of two tournament winners before mutation.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, population: int = 12, crossover: float = 0.5) -> None:
        self.space = space
        self.population_size = check_positive("population", population, minimum=2)
        self.crossover_prob = check_fraction("crossover", crossover)
        self.rng = np.random.default_rng(seed)
        self.told = Told()
        self._random_asked = 0

    def _parents(self) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray]:
        """The selected population: choices, ranks, crowding distances (within each rank)."""
        choices, y, ranks = self.told.ok()
        idx = self.told.survivors(self.population_size)
        sel_r = ranks[idx]
        crowd = np.zeros(len(idx))
        for r in np.unique(sel_r):
            where = np.flatnonzero(sel_r == r)
            crowd[where] = crowding_distance(y[np.array(idx)[where]])
        return [choices[i] for i in idx], sel_r, crowd

    def _tournament(self, pop: list[tuple[int, ...]], ranks: np.ndarray, crowd: np.ndarray) -> tuple[int, ...]:
        i, j = (int(k) for k in self.rng.choice(len(pop), size=2, replace=len(pop) < 2))
        better = (ranks[i], -crowd[i], i) <= (ranks[j], -crowd[j], j)
        return pop[i if better else j]

    def _child(self, pop: list[tuple[int, ...]], ranks: np.ndarray, crowd: np.ndarray) -> tuple[int, ...]:
        parent = self.space.decode(self._tournament(pop, ranks, crowd))
        if self.crossover_prob > 0.0 and self.rng.random() < self.crossover_prob:
            other = self.space.decode(self._tournament(pop, ranks, crowd))
            parent = self.space.crossover(parent, other, self.rng)
        return self.space.mutate(parent, self.rng).choices

    def ask(self) -> Architecture:
        pop, ranks, crowd = self._parents() if self._random_asked >= self.population_size else ([], None, None)
        if not pop or ranks is None or crowd is None:
            self._random_asked += 1
            c = self.told.random_unseen(self.space, self.rng)
        else:
            c = self._child(pop, ranks, crowd)
            tries = 0
            while self.told.seen(c) and tries < _MAX_TRIES:
                c = self._child(pop, ranks, crowd)
                tries += 1
            if self.told.seen(c):  # the neighbourhood of the population is used up: explore
                c = self.told.random_unseen(self.space, self.rng)
        self.told.ask(c)
        return self.space.decode(c)

    def tell(self, arch: Architecture, result: Result) -> None:
        self.told.tell(arch, result)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "nsga2", "rng": rng_state(self.rng), "random_asked": self._random_asked,
                **self.told.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_kind(state, "nsga2")
        set_rng_state(self.rng, state["rng"])
        self._random_asked = int(state["random_asked"])
        self.told.load_state_dict(state)
