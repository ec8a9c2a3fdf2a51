"""Small helpers every strategy shares: RNG state as JSON, rewards of results, choice tuples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nasforge.errors import NasforgeError
from nasforge.spaces import Architecture, Result, SearchSpace


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's state as a JSON-able dict (PCG64 state ints are exact in JSON)."""
    return dict(rng.bit_generator.state)


def set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state


def reward_of(result: Result) -> float | None:
    """The reward to maximise, or None for failed/infeasible/pruned results and non-finite rewards."""
    if not result.ok or result.reward is None:
        return None
    r = float(result.reward)
    return r if np.isfinite(r) else None


def minimise_vector(result: Result) -> tuple[float, ...] | None:
    """The objective vector to minimise, ``(-reward, *result.objectives)``, or None when the result is not ok or
    any value is not finite (a single-objective result gives ``(-reward,)``)."""
    r = reward_of(result)
    if r is None:
        return None
    v = (-r, *(float(x) for x in result.objectives))
    return v if all(np.isfinite(x) for x in v) else None


def choices_of(space: SearchSpace, arch: Architecture) -> tuple[int, ...]:
    return tuple(int(c) for c in space.encode(arch))


def as_choices(x: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(c) for c in x)


def check_positive(name: str, value: int, minimum: int = 1) -> int:
    """An integer option that must be at least ``minimum``; raises ``NasforgeError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise NasforgeError(f"option {name}={value!r} must be an integer >= {minimum}")
    return int(value)


def check_fraction(name: str, value: float) -> float:
    """A probability option in [0, 1]."""
    if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise NasforgeError(f"option {name}={value!r} must be a number in [0, 1]")
    return float(value)


def check_kind(state: dict[str, Any], kind: str) -> None:
    """``load_state_dict`` guard: the state must come from the same strategy kind."""
    if state.get("kind") != kind:
        raise NasforgeError(f"state of strategy {state.get('kind')!r} given to strategy {kind!r}")
