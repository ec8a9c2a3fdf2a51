"""Bayesian optimisation through Optuna's samplers (TPE or GP), one categorical parameter per decision.

Optuna's ``study.ask()``/``study.tell()`` drive it, so several asks may be in flight (TPE then uses
the constant liar). State is saved as the seed plus the ask/tell log and restored by replay.
"""

from __future__ import annotations

import warnings
from collections import deque

import optuna

from nasforge.errors import NasforgeError
from nasforge.spaces import Architecture, Result, SearchSpace
from nasforge.strategies._base import register_strategy
from nasforge.strategies._replay import ReplayLog
from nasforge.strategies._util import check_positive, reward_of

SAMPLERS = ("tpe", "gp", "random")


@register_strategy("bo")
class BayesianOptimisation(ReplayLog):
    """Optuna BO. ``sampler``: ``tpe`` (multivariate TPE, the default), ``gp`` (GPSampler) or ``random``;
    ``startup`` random trials before the model (Optuna's default 10)."""

    kind = "bo"

    def __init__(self, space: SearchSpace, seed: int = 0, sampler: str = "tpe", startup: int = 10) -> None:
        if sampler not in SAMPLERS:
            raise NasforgeError(f"unknown bo sampler {sampler!r}; known: {', '.join(SAMPLERS)}")
        self.space = space
        self.sampler_name = sampler
        self.startup = check_positive("startup", startup, minimum=0)
        decs = space.decisions()
        self._names = [f"{i}:{d.name}" for i, d in enumerate(decs)]
        self._ranges = [list(range(d.n)) for d in decs]
        self._reset(seed)

    def _reset(self, seed: int) -> None:
        self.seed = int(seed)
        self._events = []
        sampler: optuna.samplers.BaseSampler
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if self.sampler_name == "tpe":
                sampler = optuna.samplers.TPESampler(seed=self.seed, multivariate=True, constant_liar=True,
                                                     n_startup_trials=self.startup)
            elif self.sampler_name == "gp":
                sampler = optuna.samplers.GPSampler(seed=self.seed, n_startup_trials=self.startup)
            else:
                sampler = optuna.samplers.RandomSampler(seed=self.seed)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self._pending: dict[tuple[int, ...], deque[optuna.trial.Trial]] = {}

    def ask(self) -> Architecture:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            trial = self.study.ask()
            choices = [int(trial.suggest_categorical(n, r)) for n, r in zip(self._names, self._ranges, strict=True)]
        arch = self.space.decode(choices)
        self._pending.setdefault(arch.choices, deque()).append(trial)
        self._log_ask(arch)
        return arch

    def tell(self, arch: Architecture, result: Result) -> None:
        self._log_tell(arch, result)
        r = reward_of(result)
        queue = self._pending.get(arch.choices)
        if queue:
            trial = queue.popleft()
            if not queue:
                del self._pending[arch.choices]
            if r is None:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(trial, r)
            return
        if r is None:
            return  # a failure of an architecture never asked teaches the sampler nothing
        dists: dict[str, optuna.distributions.BaseDistribution] = {
            n: optuna.distributions.CategoricalDistribution(rng)
            for n, rng in zip(self._names, self._ranges, strict=True)}
        params = {n: int(c) for n, c in zip(self._names, arch.choices, strict=True)}
        self.study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=r))
