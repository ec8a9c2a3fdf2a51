"""Random search: uniform samples from the space (``space.sample``), optionally without repeats."""

from __future__ import annotations

from typing import Any

import numpy as np

from nasforge.spaces import Architecture, Result, SearchSpace
from nasforge.strategies._base import register_strategy
from nasforge.strategies._util import as_choices, check_kind, rng_state, set_rng_state

_MAX_TRIES = 1000


@register_strategy("random")
class RandomSearch:
    """Uniform random search. With ``unique=True`` an architecture is not asked twice until the space runs out.

    The baseline every other strategy must beat; ``tell`` only records what was seen.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, unique: bool = False) -> None:
        self.space = space
        self.seed = seed
        self.unique = bool(unique)
        self.rng = np.random.default_rng(seed)
        self._seen: set[tuple[int, ...]] = set()
        self._seen_order: list[tuple[int, ...]] = []
        self._size = space.size() if self.unique else 0

    def ask(self) -> Architecture:
        arch = self.space.sample(self.rng)
        if self.unique and len(self._seen) < self._size:
            tries = 0
            while arch.choices in self._seen and tries < _MAX_TRIES:
                arch = self.space.sample(self.rng)
                tries += 1
        if self.unique and arch.choices not in self._seen:
            self._seen.add(arch.choices)
            self._seen_order.append(arch.choices)
        return arch

    def tell(self, arch: Architecture, result: Result) -> None:
        if self.unique and arch.choices not in self._seen:
            self._seen.add(arch.choices)
            self._seen_order.append(arch.choices)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "random", "rng": rng_state(self.rng), "seen": [list(c) for c in self._seen_order]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_kind(state, "random")
        set_rng_state(self.rng, state["rng"])
        self._seen_order = [as_choices(c) for c in state["seen"]]
        self._seen = set(self._seen_order)
