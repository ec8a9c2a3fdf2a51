"""Regularized (aging) evolution (Real et al. 2019): tournament selection, mutation, optional crossover.

The population is a FIFO queue of the last ``population`` good results: each new child pushes out the
oldest member, not the worst, which keeps the search from sticking to early lucky evaluations.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from nasforge.spaces import Architecture, Result, SearchSpace
from nasforge.strategies._base import register_strategy
from nasforge.strategies._util import (
    as_choices,
    check_fraction,
    check_kind,
    check_positive,
    reward_of,
    rng_state,
    set_rng_state,
)

_MAX_TRIES = 100


@register_strategy("evolution")
class RegularizedEvolution:
    """Aging evolution over the space's ``mutate``/``crossover``.

    Options: ``population`` (10) and ``sample`` (3, the tournament size) as in NAS-Bench-201;
    ``crossover`` (0.0): probability that a child is the crossover of two tournament winners before it
    is mutated; ``unique`` (False): re-mutate (up to 100 times) children that were already asked.
    Until ``population`` candidates have been asked the strategy samples uniformly, so parallel asks
    before any result simply fill the first population. Failed results never enter the population.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, population: int = 10, sample: int = 3,
                 crossover: float = 0.0, unique: bool = False) -> None:
        self.space = space
        self.population_size = check_positive("population", population)
        self.sample_size = check_positive("sample", sample)
        self.crossover_prob = check_fraction("crossover", crossover)
        self.unique = bool(unique)
        self.rng = np.random.default_rng(seed)
        self.population: deque[tuple[tuple[int, ...], float]] = deque()
        self._random_asked = 0
        self._seen: set[tuple[int, ...]] = set()

    # -- operators ---------------------------------------------------------------------------------
    def _tournament(self) -> tuple[int, ...]:
        """The best of ``sample`` members drawn without replacement (ties: the oldest)."""
        n = len(self.population)
        idx = self.rng.choice(n, size=min(self.sample_size, n), replace=False)
        best = max((int(i) for i in idx), key=lambda i: (self.population[i][1], -i))
        return self.population[best][0]

    def _child(self) -> Architecture:
        parent = self.space.decode(self._tournament())
        if self.crossover_prob > 0.0 and self.rng.random() < self.crossover_prob:
            other = self.space.decode(self._tournament())
            parent = self.space.crossover(parent, other, self.rng)
        return self.space.mutate(parent, self.rng)

    # -- ask/tell ----------------------------------------------------------------------------------
    def ask(self) -> Architecture:
        if self._random_asked < self.population_size or not self.population:
            self._random_asked += 1
            arch = self.space.sample(self.rng)
            if self.unique:
                tries = 0
                while arch.choices in self._seen and tries < _MAX_TRIES:
                    arch = self.space.sample(self.rng)
                    tries += 1
        else:
            arch = self._child()
            if self.unique:
                tries = 0
                while arch.choices in self._seen and tries < _MAX_TRIES:
                    arch = self._child()
                    tries += 1
        if self.unique:
            self._seen.add(arch.choices)
        return arch

    def tell(self, arch: Architecture, result: Result) -> None:
        if self.unique:
            self._seen.add(arch.choices)
        r = reward_of(result)
        if r is None:
            if len(self.population) < self.population_size:
                self._random_asked -= 1  # a failed initial member is replaced by another random one
            return
        self.population.append((arch.choices, r))
        if len(self.population) > self.population_size:
            self.population.popleft()

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "evolution", "rng": rng_state(self.rng), "random_asked": self._random_asked,
                "population": [[list(c), r] for c, r in self.population], "seen": sorted(list(c) for c in self._seen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_kind(state, "evolution")
        set_rng_state(self.rng, state["rng"])
        self._random_asked = int(state["random_asked"])
        self.population = deque((as_choices(c), float(r)) for c, r in state["population"])
        self._seen = {as_choices(c) for c in state["seen"]}
