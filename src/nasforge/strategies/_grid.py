"""Grid search over chosen decisions, and EfficientNet compound scaling as a helper.

``grid`` walks the Cartesian product of the chosen decisions (in order, or shuffled by the seed);
decisions not on the grid are fixed to a given choice or sampled. Candidates that a ``feasible``
predicate rejects (e.g. a MACs budget on the analytic cost) are skipped before they are ever asked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasforge.errors import NasforgeError
from nasforge.spaces import Architecture, Result, SearchSpace
from nasforge.strategies._base import register_strategy
from nasforge.strategies._util import as_choices, check_kind, rng_state, set_rng_state

_MAX_SHUFFLE = 10_000_000


@register_strategy("grid")
class GridSearch:
    """Cartesian product of ``decisions`` (names; default all), others ``fixed`` ({name: choice}) or sampled.

    ``feasible(arch) -> bool`` filters candidates before they are asked (``skipped`` counts them);
    ``shuffle=True`` visits the grid in a seeded random order. Duplicates (equal canonical
    architectures) are asked once. When the grid is exhausted ``done`` becomes True and ``ask`` raises
    ``StopIteration`` (the runner stops with "strategy exhausted").
    """

    def __init__(self, space: SearchSpace, seed: int = 0, decisions: Sequence[str] | None = None,
                 fixed: dict[str, Hashable] | None = None, feasible: Callable[[Architecture], bool] | None = None,
                 shuffle: bool = False) -> None:
        self.space = space
        self.decs = space.decisions()
        names = [d.name for d in self.decs]
        grid_names = list(names) if decisions is None else list(decisions)
        for n in grid_names:
            if n not in names:
                raise NasforgeError(f"grid: unknown decision {n!r}; known: {', '.join(names)}")
        self.fixed: dict[int, int] = {}
        for n, v in (fixed or {}).items():
            if n not in names:
                raise NasforgeError(f"grid: unknown fixed decision {n!r}; known: {', '.join(names)}")
            d = self.decs[names.index(n)]
            if v not in d.choices:
                raise NasforgeError(f"grid: {v!r} is not a choice of {n!r}; allowed: {list(d.choices)}")
            if n in grid_names:
                raise NasforgeError(f"grid: decision {n!r} is both on the grid and fixed")
            self.fixed[names.index(n)] = d.choices.index(v)
        self.axes = [names.index(n) for n in grid_names]
        self.total = math.prod(self.decs[i].n for i in self.axes)
        self.feasible = feasible
        self.shuffle = bool(shuffle)
        self.rng = np.random.default_rng(seed)
        self._order: np.ndarray | None = None
        if self.shuffle:
            if self.total > _MAX_SHUFFLE:
                raise NasforgeError(f"grid: {self.total} points are too many to shuffle (at most {_MAX_SHUFFLE})")
            self._order = np.random.default_rng(seed).permutation(self.total)
        self.pos = 0
        self.skipped = 0
        self._asked: list[tuple[int, ...]] = []
        self._asked_set: set[tuple[int, ...]] = set()

    @property
    def done(self) -> bool:
        return self.pos >= self.total

    def _point(self, k: int) -> Architecture:
        """Grid point number ``k`` (mixed radix over the axes, last axis fastest); others fixed or sampled."""
        choices = [0] * len(self.decs)
        for i, d in enumerate(self.decs):
            if i in self.fixed:
                choices[i] = self.fixed[i]
            elif i not in self.axes:
                choices[i] = int(self.rng.integers(d.n))
        for i in reversed(self.axes):
            k, choices[i] = divmod(k, self.decs[i].n)
        return self.space.decode(choices)

    def ask(self) -> Architecture:
        while self.pos < self.total:
            k = int(self._order[self.pos]) if self._order is not None else self.pos
            self.pos += 1
            arch = self._point(k)
            if arch.choices in self._asked_set:
                continue
            if self.feasible is not None and not self.feasible(arch):
                self.skipped += 1
                continue
            self._asked.append(arch.choices)
            self._asked_set.add(arch.choices)
            return arch
        if not self._asked:
            raise NasforgeError(f"grid: none of the {self.total} grid points is feasible")
        raise StopIteration(f"grid: all {len(self._asked)} feasible points were asked")

    def tell(self, arch: Architecture, result: Result) -> None:
        """Grid search ignores results (the runner keeps the best)."""

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "grid", "rng": rng_state(self.rng), "pos": self.pos, "skipped": self.skipped,
                "asked": [list(c) for c in self._asked]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_kind(state, "grid")
        set_rng_state(self.rng, state["rng"])
        self.pos = int(state["pos"])
        self.skipped = int(state["skipped"])
        self._asked = [as_choices(c) for c in state["asked"]]
        self._asked_set = set(self._asked)


@dataclass(frozen=True)
class CompoundScaling:
    """EfficientNet compound scaling: coefficients per unit of phi, the phi used, and the multipliers."""

    alpha: float
    beta: float
    gamma: float
    phi: float
    depth: float
    width: float
    resolution: float
    cost: float
    base_cost: float


def compound_scaling(cost: Callable[[float, float, float], float], budget: float,
                     score: Callable[[float, float, float], float] | None = None, target: float = 2.0,
                     tolerance: float = 0.1, step: float = 0.05, max_coef: float = 2.0,
                     phi_step: float = 0.01) -> CompoundScaling:
    """Grid-search alpha, beta, gamma (depth, width, resolution) with alpha*beta^2*gamma^2 ~ ``target``,
    then scale by the largest phi whose cost fits ``budget``.

    ``cost(d, w, r)`` is the base network's cost (e.g. MACs) at multipliers d, w, r (it does its own
    rounding to whole layers/channels/pixels). ``score(a, b, g)`` ranks the candidate coefficients (the
    accuracy of the network scaled once, as in EfficientNet); without it the most balanced coefficients
    win (depth, width^2 and resolution^2 sharing the cost growth most evenly), ties going to the one whose
    measured cost ratio cost(a, b, g)/cost(1, 1, 1) is closest to ``target``. Returns the coefficients,
    phi and the scaled multipliers (alpha^phi, beta^phi, gamma^phi).
    """
    base = float(cost(1.0, 1.0, 1.0))
    if not base > 0:
        raise NasforgeError(f"compound_scaling: base cost must be > 0, got {base}")
    if not budget >= base:
        raise NasforgeError(f"compound_scaling: budget {budget} is below the base network's cost {base}")
    if not (target > 1 and step > 0 and max_coef > 1 and phi_step > 0 and tolerance >= 0):
        raise NasforgeError("compound_scaling: need target > 1, step > 0, max_coef > 1, phi_step > 0, tolerance >= 0")
    grid = np.round(np.arange(1.0, max_coef + 1e-9, step), 10)
    cands = [(float(a), float(b), float(g)) for a in grid for b in grid for g in grid
             if abs(a * b * b * g * g - target) <= tolerance]
    if not cands:
        raise NasforgeError(f"compound_scaling: no alpha, beta, gamma on a {step} grid gives "
                            f"alpha*beta^2*gamma^2 within {tolerance} of {target}")

    def balance(c: tuple[float, float, float]) -> float:
        logs = np.log([c[0], c[1] ** 2, c[2] ** 2])
        return float(logs.max() - logs.min())

    if score is not None:
        keyed = [(-float(score(*c)), balance(c), c) for c in cands]
    else:
        keyed = [(balance(c), abs(float(cost(*c)) / base - target), c) for c in cands]
    alpha, beta, gamma = min(keyed)[2]
    phi = 0.0
    while True:  # costs grow with phi; step until the next phi would break the budget
        nxt = round(phi + phi_step, 10)
        if float(cost(alpha**nxt, beta**nxt, gamma**nxt)) > budget or nxt > 1000:
            break
        phi = nxt
    d, w, r = alpha**phi, beta**phi, gamma**phi
    return CompoundScaling(alpha, beta, gamma, phi, d, w, r, float(cost(d, w, r)), base)
