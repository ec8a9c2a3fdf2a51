"""Multi-fidelity over epochs: successive halving, Hyperband, and an early-stopping estimator wrapper.

Two ways to stop weak candidates early:

- ``successive_halving(candidates, evaluate, ...)`` / ``hyperband(sample, evaluate, ...)``: batch helpers
  that train every candidate for a few epochs, keep the top ``1/eta`` and retrain those ``eta`` times
  longer, up to ``max_epochs`` (each rung trains from scratch, so ``evaluate(arch, epochs)`` is all they
  need).
- ``EarlyStopping(estimator, ...)``: an ``Estimator`` for the runner's one-at-a-time loop (asynchronous
  successive halving). Each candidate is trained once for the full budget; at each rung epoch its
  validation accuracy so far is compared with that of the earlier candidates at the same rung, and it is
  stopped (status ``pruned``) unless it is in their top ``1/eta``. Decisions depend only on the order of
  calls, so a run is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from nasforge.errors import NasforgeError
from nasforge.estimators._base import Result
from nasforge.estimators._train import RungCallback
from nasforge.spaces import Architecture

Evaluate = Callable[[Architecture, int], Result]


@dataclass(frozen=True)
class Rung:
    """One rung of successive halving: the epochs trained and each candidate's result at that budget."""

    epochs: int
    results: tuple[tuple[Architecture, Result], ...]


def rung_epochs(min_epochs: int, max_epochs: int, eta: int) -> list[int]:
    """Budgets ``max_epochs / eta^k`` down to ``min_epochs``, ascending, ending at ``max_epochs``."""
    _check(min_epochs, max_epochs, eta)
    out = [max_epochs]
    while True:
        nxt = out[-1] // eta
        if nxt < min_epochs or nxt == out[-1]:
            break
        out.append(nxt)
    return out[::-1]


def _check(min_epochs: int, max_epochs: int, eta: int) -> None:
    if min_epochs < 1 or max_epochs < min_epochs:
        raise NasforgeError(f"need 1 <= min_epochs <= max_epochs, got {min_epochs} and {max_epochs}")
    if eta < 2:
        raise NasforgeError(f"eta must be an integer >= 2, got {eta!r}")


def _score(r: Result) -> float:
    return r.reward if r.ok and r.reward is not None else -math.inf


def successive_halving(candidates: Sequence[Architecture], evaluate: Evaluate, min_epochs: int = 1,
                       max_epochs: int = 9, eta: int = 3) -> list[Rung]:
    """Evaluate all candidates at ``min_epochs``, keep the best ``ceil(n/eta)``, repeat up to ``max_epochs``.

    ``evaluate(arch, epochs)`` is e.g. ``TrainingEstimator.evaluate``. Failed candidates never advance;
    ties keep the earlier candidate. Returns the rungs in order; the best architecture is the top of the last
    rung (``best_of(rungs)``).
    """
    if not candidates:
        return []
    budgets = rung_epochs(min_epochs, max_epochs, eta)
    alive = list(dict.fromkeys(candidates))
    rungs: list[Rung] = []
    for i, epochs in enumerate(budgets):
        results = tuple((a, evaluate(a, epochs)) for a in alive)
        rungs.append(Rung(epochs, results))
        if i + 1 < len(budgets):
            ranked = sorted(range(len(results)), key=lambda j: (-_score(results[j][1]), j))
            keep = max(1, math.ceil(len(results) / eta))
            alive = [results[j][0] for j in sorted(ranked[:keep]) if results[j][1].ok]
            if not alive:
                break
    return rungs


def best_of(rungs: Sequence[Rung]) -> tuple[Architecture, Result] | None:
    """The best successful (architecture, result) of the highest rung that has one."""
    for rung in reversed(rungs):
        ok = [(a, r) for a, r in rung.results if r.ok]
        if ok:
            return max(ok, key=lambda ar: _score(ar[1]))
    return None


def hyperband(sample: Callable[[], Architecture], evaluate: Evaluate, max_epochs: int = 27, eta: int = 3,
              min_epochs: int = 1) -> list[list[Rung]]:
    """Hyperband: successive halving brackets from aggressive (many candidates, few epochs) to none.

    ``sample()`` draws a candidate (e.g. ``lambda: space.sample(rng)``). Bracket ``s`` starts
    ``ceil((s_max + 1) / (s + 1) * eta^s)`` candidates at ``max_epochs / eta^s`` epochs, as in Li et al.
    """
    _check(min_epochs, max_epochs, eta)
    s_max = len(rung_epochs(min_epochs, max_epochs, eta)) - 1
    brackets: list[list[Rung]] = []
    for s in range(s_max, -1, -1):
        n = math.ceil((s_max + 1) / (s + 1) * eta**s)
        start = max(min_epochs, max_epochs // eta**s)
        brackets.append(successive_halving([sample() for _ in range(n)], evaluate, start, max_epochs, eta))
    return brackets


class RungEstimator(Protocol):
    """What ``EarlyStopping`` wraps: an estimator that can report at rung epochs (``TrainingEstimator``)."""

    epochs: int

    def evaluate(self, arch: Architecture, epochs: int | None = None, *, rungs: Sequence[int] = (),
                 on_rung: RungCallback | None = None) -> Result: ...


class EarlyStopping:
    """An ``Estimator`` that stops candidates whose partial validation accuracy is not in the top ``1/eta``.

    ``rungs`` default to ``epochs / eta^k`` (e.g. 1 and 3 for 9 epochs with eta 3). A candidate is judged at
    a rung only once ``min_history`` earlier candidates reached it (default ``eta``); it goes on if its
    accuracy is at least the ``ceil(n/eta)``-th best of those ``n``. Every candidate's accuracy at each rung
    it reaches joins the history, so decisions follow the order of calls. ``state_dict`` /
    ``load_state_dict`` save the history for resume.
    """

    def __init__(self, estimator: RungEstimator, eta: int = 3, rungs: Sequence[int] | None = None,
                 min_history: int | None = None) -> None:
        if eta < 2:
            raise NasforgeError(f"eta must be an integer >= 2, got {eta!r}")
        total = estimator.epochs
        if rungs is None:
            rungs = [r for r in rung_epochs(1, total, eta) if r < total]
        bad = [r for r in rungs if not 1 <= r < total]
        if bad:
            raise NasforgeError(f"rungs must be epochs in 1..{total - 1} (the budget is {total}), got {bad}")
        self.estimator = estimator
        self.eta = eta
        self.rungs = tuple(sorted(set(rungs)))
        self.min_history = eta if min_history is None else min_history
        self.history: dict[int, list[float]] = {r: [] for r in self.rungs}

    def threshold(self, epoch: int) -> float | None:
        """The accuracy a candidate needs at ``epoch`` to go on (None while the history is too short)."""
        seen = self.history.get(epoch, [])
        if len(seen) < max(1, self.min_history):
            return None
        return sorted(seen, reverse=True)[math.ceil(len(seen) / self.eta) - 1]

    def _on_rung(self, epoch: int, val_acc: float) -> str | None:
        need = self.threshold(epoch)
        n = len(self.history[epoch])
        self.history[epoch].append(val_acc)
        if need is not None and val_acc < need:
            return (f"pruned at epoch {epoch}: val_acc {val_acc:.4f} < {need:.4f} "
                    f"(top 1/{self.eta} of {n} earlier candidates)")
        return None

    def evaluate(self, arch: Architecture) -> Result:
        return self.estimator.evaluate(arch, rungs=self.rungs, on_rung=self._on_rung)

    def state_dict(self) -> dict[str, Any]:
        return {"rungs": list(self.rungs), "history": {str(r): list(v) for r, v in self.history.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        hist = state.get("history", {})
        self.history = {r: [float(v) for v in hist.get(str(r), [])] for r in self.rungs}
