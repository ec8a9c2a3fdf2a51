"""The strategy contract: ask for architectures, tell results. Strategies never train or look anything up.

Every strategy is built as ``get_strategy(name, space, seed=..., **options)``, draws all randomness from
one ``numpy.random.Generator`` seeded by ``seed``, may be asked several times before any ``tell``
(parallel workers), and saves/restores itself with ``state_dict``/``load_state_dict`` (JSON-able dicts).
What it asks depends only on the seed and the ask/tell sequence, so replaying a recorded sequence into
a fresh strategy restores it too. A strategy with nothing left to ask (``grid``) raises ``StopIteration``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from nasforge.errors import NasforgeError
from nasforge.spaces import Architecture, Result, SearchSpace


@runtime_checkable
class Strategy(Protocol):
    def ask(self) -> Architecture: ...

    def tell(self, arch: Architecture, result: Result) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


StrategyFactory = Callable[..., Strategy]
_STRATEGIES: dict[str, StrategyFactory] = {}
_MULTI_OBJECTIVE: set[str] = set()


def register_strategy(name: str, multi_objective: bool = False) -> Callable[[StrategyFactory], StrategyFactory]:
    """Register a factory under ``name``; ``multi_objective=True``: it reads ``Result.objectives`` (a vector
    search), so a search with several objectives may use it."""
    def deco(factory: StrategyFactory) -> StrategyFactory:
        _STRATEGIES[name] = factory
        if multi_objective:
            _MULTI_OBJECTIVE.add(name)
        return factory

    return deco


def list_strategies(multi_objective: bool | None = None) -> list[str]:
    """Registered names; ``multi_objective=True`` only those that search several objectives, False the others."""
    return sorted(n for n in _STRATEGIES if multi_objective is None or (n in _MULTI_OBJECTIVE) == multi_objective)


def check_objectives(name: str, n_objectives: int) -> None:
    """Refuse a single-objective strategy in a search with more than one objective (one line naming those that
    can)."""
    if n_objectives > 1 and name not in _MULTI_OBJECTIVE:
        raise NasforgeError(f"strategy {name!r} optimises one objective, not {n_objectives}; multi-objective "
                            f"strategies: {', '.join(list_strategies(multi_objective=True))}")


def get_strategy(name: str, space: SearchSpace, seed: int = 0, **options: Any) -> Strategy:
    factory = _STRATEGIES.get(name)
    if factory is None:
        raise NasforgeError(f"unknown strategy {name!r}; known: {', '.join(list_strategies())}")
    try:
        return factory(space, seed=seed, **options)
    except TypeError as e:
        raise NasforgeError(f"bad option for strategy {name!r}: {e}") from None
