"""The search loop: ask, check constraints, evaluate (on a backend, ``_backends``), tell, store.

The schedule is a deterministic function of what the strategy asks, so the same seed gives the same
run for any worker timing: keep up to ``in_flight`` evaluations asked ahead (default ``workers``), and always
tell the *oldest* one next (tell in ask order). A strategy whose asks depend on its tells (evolution, local search)
asks other architectures with another ``in_flight``; with the same one the trials are the same for any worker
count and backend (``workers`` only says how many of them run at once).
 A candidate that breaks a constraint is recorded ``infeasible`` and told at
once (reward None), before anything else is asked; it does not use up the evaluation budget.

Resume: open the store, build a fresh strategy with the same seed, replay the ask/tell log into it
(every replayed ask must give the recorded architecture), then re-evaluate the trials that were asked but
not told (in ask order) and continue. Because the store is always a prefix of the event log of the
uninterrupted run, a run killed at any point and resumed ends with the same trials and result.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasforge import __version__
from nasforge.errors import NasforgeError
from nasforge.estimators import Estimator, Result
from nasforge.runner._backends import Backend, Pending, TrialResources, make_backend
from nasforge.runner._constraints import ALIASES, Constraint, Constraints, LatencyFn, pareto_front, parse_constraints
from nasforge.runner._objectives import Objectives
from nasforge.runner._store import RunStore, Trial
from nasforge.runner._validate import valid_result
from nasforge.spaces import Architecture, SearchSpace

if TYPE_CHECKING:  # strategies are imported lazily: pool workers only evaluate and need not load them
    from nasforge.strategies import Strategy

Progress = Callable[["Trial", "Trial | None", int, int], None]
"""``progress(trial, best_so_far, evaluations_done, budget)`` after every told trial."""

SNAPSHOT_SECONDS = 2.0  # strategy state snapshots are written at most this often (and at the end)


@dataclass(frozen=True)
class SearchResult:
    """What a search gave: every trial in ask order, the best by reward, and the Pareto front."""

    trials: tuple[Trial, ...]
    best: Trial | None
    pareto: tuple[Trial, ...]
    objective: str | None
    run_dir: Path | None = None
    stopped: str = "budget"
    front: dict[str, Any] | None = None  # a multi-objective search: ``Objectives.summary`` (front, hypervolume)

    def to_dict(self) -> dict[str, Any]:
        d = {"best": None if self.best is None else self.best.to_dict(),
             "pareto": [t.to_dict() for t in self.pareto], "objective": self.objective,
             "trials": len(self.trials), "stopped": self.stopped,
             "run_dir": None if self.run_dir is None else str(self.run_dir)}
        if self.front is not None:
            d["front"] = self.front
        return d


def best_trial(trials: Sequence[Trial]) -> Trial | None:
    """The ok trial with the highest reward; of equal rewards the first asked keeps it."""
    best: Trial | None = None
    for t in trials:
        if t.ok and t.reward is not None and (best is None or t.reward > (best.reward or -math.inf)):
            best = t
    return best


def pareto_trials(trials: Sequence[Trial], objective: str) -> tuple[Trial, ...]:
    """Ok trials not dominated in (max reward, min ``cost[objective]``), by increasing cost."""
    pts = [t for t in trials if t.ok and isinstance(t.cost.get(objective), int | float)]
    idx = pareto_front([(float(t.reward or 0.0), float(t.cost[objective])) for t in pts])
    return tuple(pts[i] for i in idx)


# -- the loop ----------------------------------------------------------------------------------------------
def run_search(
    space: SearchSpace,
    strategy: Strategy | str,
    estimator: Estimator,
    budget: int,
    constraints: Constraints | Sequence[str | Constraint] | str = (),
    seed: int = 0,
    out_dir: str | Path | None = None,
    workers: int = 1,
    resume: bool = False,
    progress: Progress | None = None,
    *,
    precision: str = "fp32",
    resolution: int | None = None,
    latency_fn: LatencyFn | None = None,
    objective: str | None = "macs",
    objectives: Sequence[str] | None = None,
    max_trials: int | None = None,
    strategy_options: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    trial_timeout: float | None = None,
    backend: str | Backend = "local",
    trial_resources: str | Mapping[str, Any] | TrialResources | None = None,
    ray_address: str | None = None,
    max_retries: int = 3,
    in_flight: int | None = None,
) -> SearchResult:
    """Search ``space`` with ``strategy`` until ``budget`` evaluations are told; returns the trials and best.

    ``strategy`` is a ``Strategy`` (fresh, built with ``seed``) or a registry name built here as
    ``get_strategy(name, space, seed, **strategy_options)``. ``constraints`` are strings like
    ``'macs<=50e6'`` (checked on ``space.cost`` at ``precision``/``resolution``; ``latency<=`` needs
    ``latency_fn``). Infeasible candidates do not count against ``budget`` but against ``max_trials``
    (default 100 x budget), which stops a search whose strategy proposes only infeasible archs.
    ``objective`` names the cost key of the Pareto front (reward vs cost); None for a single objective.
    ``objectives``: cost keys to minimise besides the reward (``latency`` needs ``latency_fn``), a multi-objective
    search: the strategy (a multi-objective one) is told ``Result.objectives``, and the result and store hold the
    front and its hypervolume history (``runner._objectives``).
    ``out_dir`` None keeps the run in memory; otherwise a run directory is created (it must not exist or be
    empty), or continued with ``resume=True``. ``workers > 1`` evaluates in a process pool (the estimator
    must be picklable); the tell order is the ask order, so results do not depend on timing. ``trial_timeout``
    (seconds) stops an evaluation that runs longer and records it ``failed`` (it needs a process, so the pool is
    used even with one worker); the search goes on.
    ``backend`` is where evaluations run (``_backends``): ``local`` (this machine) or ``ray`` (Ray tasks on a local
    instance, or the cluster at ``ray_address``), each trial given ``trial_resources`` (``cpu``, ``gpu``,
    ``memory``; e.g. ``"cpu=1,gpu=0.5"``); Ray retries a trial whose worker or node died up to ``max_retries``.
    ``in_flight`` (default ``workers``; a resumed run keeps its own): how many evaluations the schedule keeps asked
    ahead of the oldest tell; the trials depend on it, not on ``workers`` or the backend.
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
        raise NasforgeError(f"budget must be an integer > 0, got {budget!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers <= 0:
        raise NasforgeError(f"workers must be an integer > 0, got {workers!r}")
    depth = workers if in_flight is None else in_flight
    if isinstance(depth, bool) or not isinstance(depth, int) or depth <= 0:
        raise NasforgeError(f"in_flight must be an integer > 0, got {in_flight!r}")
    if trial_timeout is not None and (isinstance(trial_timeout, bool) or not isinstance(trial_timeout, int | float)
                                      or not 0 < trial_timeout < math.inf):
        raise NasforgeError(f"trial timeout must be a number of seconds > 0, got {trial_timeout!r}")
    cons = constraints if isinstance(constraints, Constraints) else Constraints.of(
        constraints, precision, resolution, latency_fn)
    objective = ALIASES.get(objective, objective) if objective else objective  # the canonical cost key
    objs = Objectives.of(objectives, cons.latency_fn is not None)
    if objs and isinstance(strategy, str):
        from nasforge.strategies._base import check_objectives

        check_objectives(strategy, 1 + len(objs.keys))
    cap = max_trials if max_trials is not None else 100 * budget
    if resume and out_dir is None:
        raise NasforgeError("resume needs the run directory (out_dir)")
    label = strategy if isinstance(strategy, str) else None
    if isinstance(strategy, str):
        from nasforge.strategies import get_strategy

        strategy = get_strategy(strategy, space, seed=seed, **(strategy_options or {}))
    cfg: dict[str, Any] = {
        "format": "nasforge-run", "nasforge_version": __version__, "space": space.name,
        "strategy": label, "strategy_class": type(strategy).__name__, "strategy_options": strategy_options or {},
        "estimator": type(estimator).__name__, "budget": budget, "seed": seed, "workers": workers,
        "constraints": cons.texts(), "precision": cons.precision, "resolution": cons.resolution,
        "objective": objective, "max_trials": cap, "extra": config or {},
    }
    if objs:
        cfg["objectives"] = list(objs.keys)

    # the backend first: a bad backend, resource or Ray address fails before the run folder is written
    runner_backend = make_backend(estimator, workers, trial_timeout, backend, trial_resources, ray_address,
                                  max_retries)
    cfg["backend"] = backend if isinstance(backend, str) else type(backend).__name__
    cfg["in_flight"] = depth
    store: RunStore | None = None
    try:
        store = _open_store(out_dir, resume, cfg, budget, workers, cap, config)
        kept = store.config.get("in_flight") if store is not None and resume and in_flight is None else None
        if isinstance(kept, int) and kept > 0:
            depth = kept  # a resumed run keeps its schedule when its workers change
        loop = _Loop(space, strategy, estimator, budget, cons, depth, progress, objective, cap, store, objs)
        loop.backend = runner_backend
        return loop.run()
    finally:
        runner_backend.close()
        if store is not None:
            store.close()


def _open_store(out_dir: str | Path | None, resume: bool, cfg: dict[str, Any], budget: int, workers: int,
                cap: int, config: dict[str, Any] | None) -> RunStore | None:
    store: RunStore | None = None
    if out_dir is not None:
        if resume:
            store = RunStore.open(out_dir, write=True)  # holds the run folder's lock until closed
            _check_same_run(store.config, cfg, Path(out_dir))
            changes: dict[str, Any] = {}
            if store.config.get("budget") != budget or store.config.get("workers") != workers:
                changes.update(budget=budget, workers=workers, max_trials=cap)
            if config is not None and store.config.get("extra") != config:
                changes["extra"] = config  # e.g. the job's own record of its budget
            if changes:
                store.update_config(**changes)
        else:
            store = RunStore.create(out_dir, {**cfg, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return store


def _check_same_run(old: dict[str, Any], new: dict[str, Any], path: Path) -> None:
    for key in ("space", "strategy_class", "strategy_options", "seed", "constraints", "precision", "resolution",
                "objectives"):
        was = old.get(key)
        if key == "constraints" and isinstance(was, list):  # runs stored before the keys were canonical
            was = [str(c) for c in parse_constraints(was)]
        if was != new.get(key):
            raise NasforgeError(f"cannot resume {path}: {key} was {old.get(key)!r}, now {new.get(key)!r}")


class _Loop:
    def __init__(self, space: SearchSpace, strategy: Strategy, estimator: Estimator, budget: int,
                 cons: Constraints, in_flight: int, progress: Progress | None, objective: str | None,
                 cap: int, store: RunStore | None, objs: Objectives | None = None) -> None:
        self.space, self.strategy, self.estimator = space, strategy, estimator
        self.budget, self.cons, self.in_flight, self.progress = budget, cons, in_flight, progress
        self.objective, self.cap, self.store = objective, cap, store
        self.objs = objs or Objectives()
        self.trials: list[Trial] = []
        self.archs: list[Architecture] = []
        self.evals_asked = 0
        self.done = 0
        self.best: Trial | None = None
        self._last_snapshot = time.monotonic()
        self.backend: Backend | None = None  # where evaluations run (run_search makes it)

    # replay ------------------------------------------------------------------------------------------
    def replay(self) -> list[int]:
        """Feed the stored event log into the fresh strategy; returns the asked-not-told trial numbers."""
        assert self.store is not None
        stored = self.store.trials()
        told: set[int] = set()
        for step, (kind, number) in enumerate(self.store.events()):
            rec = stored[number]
            if kind == "ask":
                arch = self.strategy.ask()
                if number != len(self.archs) or str(arch) != rec.arch or tuple(arch.choices) != rec.choices:
                    raise NasforgeError(
                        f"cannot resume {self.store.path}: replayed ask (event {step}) gave {arch} but trial "
                        f"{number} recorded {rec.arch}; the strategy, its seed or options differ from the run's")
                self.archs.append(arch)
                self.trials.append(rec)
                if rec.status != "infeasible":
                    self.evals_asked += 1
            else:
                self.strategy.tell(self.archs[number], self.objs.attach(rec.result()))
                told.add(number)
                if rec.status != "infeasible":
                    self.done += 1
                self._update_best(rec)
        return [t.number for t in self.trials if t.number not in told]

    # the schedule ----------------------------------------------------------------------------------------
    def run(self) -> SearchResult:
        backend = self.backend or make_backend(self.estimator, self.in_flight)
        inflight: deque[tuple[int, Pending]] = deque()
        stopped = "budget"
        try:
            if self.store is not None:
                for number in self.replay():
                    inflight.append((number, backend.submit(self.archs[number])))
            exhausted = False
            while True:
                while (not exhausted and self.evals_asked < self.budget and len(inflight) < self.in_flight
                       and len(self.trials) < self.cap):
                    item = self._ask(backend)
                    if item is None:
                        exhausted, stopped = True, "strategy exhausted"
                    elif item[1] is not None:
                        inflight.append((item[0], item[1]))
                if not inflight:
                    if len(self.trials) >= self.cap and self.evals_asked < self.budget:
                        stopped = "max_trials"
                    break
                number, pending = inflight.popleft()
                res, wall = pending.result()  # a lost worker is the backend's business: here a failed Result
                self._tell(number, res, wall)
            if self.store is not None:
                self.store.save_strategy_state(self._state())
        finally:
            backend.close()
        pareto = pareto_trials(self.trials, self.objective) if self.objective else ()
        front = self.objs.summary(self.trials) if self.objs else None
        if front is not None and self.store is not None:
            self.store.save_front(front)
        return SearchResult(tuple(self.trials), self.best, pareto, self.objective,
                            None if self.store is None else self.store.path, stopped, front)

    def _ask(self, backend: Backend) -> tuple[int, Pending | None] | None:
        try:
            arch = self.strategy.ask()
        except StopIteration:
            return None
        number = len(self.trials)
        feasible, numbers, bad = True, dict[str, float](), list[str]()
        try:
            feasible, numbers, bad = self.cons.check(self.space, arch)
        except NasforgeError:
            raise
        except Exception as e:
            if self.cons.items:
                raise NasforgeError(f"cannot check constraints of {arch}: {type(e).__name__}: {e}") from e
        trial = Trial(number, str(arch), tuple(int(c) for c in arch.choices), "running", cost=numbers,
                      started_at=time.time())
        self.archs.append(arch)
        self.trials.append(trial)
        if not feasible:  # asked and told in one transaction: never left pending by a crash
            self._tell(number, Result(None, {}, numbers, 0.0, "infeasible", "; ".join(bad)), 0.0, asked=True)
            return number, None
        if self.store is not None:
            self.store.record_ask(number, trial.arch, trial.choices, numbers, trial.started_at)
        self.evals_asked += 1
        return number, backend.submit(arch)

    def _tell(self, number: int, res: Result, wall: float, asked: bool = False) -> None:
        old = self.trials[number]
        res = valid_result(res, wall)  # the one boundary: nothing the store cannot hold gets past it
        cost = {**old.cost, **res.cost}
        res = self.objs.attach(Result(res.reward, dict(res.metrics), cost, res.seconds, res.status, res.error))
        self.strategy.tell(self.archs[number], res)
        state = None
        now = time.monotonic()
        if self.store is not None and now - self._last_snapshot >= SNAPSHOT_SECONDS:
            state, self._last_snapshot = self._state(), now
        if self.store is not None:
            if asked:
                self.store.record_ask(number, old.arch, old.choices, old.cost, old.started_at,
                                      tell=(res, wall, state))
            else:
                self.store.record_tell(number, res, wall, state)
        trial = Trial(number, old.arch, old.choices, res.status, res.reward, dict(res.metrics), cost,
                      res.seconds, wall, old.started_at, time.time(), res.error)
        self.trials[number] = trial
        if res.status != "infeasible":
            self.done += 1
        self._update_best(trial)
        if self.progress is not None:
            self.progress(trial, self.best, self.done, self.budget)

    def _state(self) -> dict[str, Any]:
        """The strategy's snapshot; one that cannot be taken is noted, not fatal (resume replays events)."""
        try:
            return dict(self.strategy.state_dict())
        except Exception as e:
            return {"unavailable": f"{type(e).__name__}: {e}"}

    def _update_best(self, t: Trial) -> None:
        if t.ok and t.reward is not None and (self.best is None or t.reward > (self.best.reward or -math.inf)):
            self.best = t
