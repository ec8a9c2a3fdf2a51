"""Objectives of a multi-objective search: the reward (maximised) and cost keys to minimise, the front, its hypervolume.

An objective is a constraint key (``runner._constraints.KEYS``: a ``Cost`` field name such as ``macs`` or
``peak_memory_bytes``, or ``latency`` from the run's latency model; the same aliases). The runner computes every
candidate's cost numbers before evaluating it (hard constraints first), and tells the strategy
``Result(..., objectives=(cost[k1], cost[k2], ...))``: with the reward, the vector it searches on.

The run's front is its ok trials non-dominated in (reward, costs). Its hypervolume history (the front of trials
0..k for every k) is measured in a normalised space: each objective min-max scaled over the run's ok trials (the
reward as ``max - reward``), reference point 1.1 in every objective (10 % beyond the worst seen, so the extreme
points count too). It is derived from the stored trials, so it is the same after a resume.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasforge.errors import NasforgeError
from nasforge.estimators import Result
from nasforge.pareto import hypervolume_history, nondominated, normalise
from nasforge.runner._constraints import ALIASES, KEYS
from nasforge.runner._store import Trial

REFERENCE = 1.1  # the reference point of a run's hypervolume, in normalised units (1 = the worst seen)


def objective_key(name: str) -> str:
    """The canonical key of an objective (``peak_memory`` -> ``peak_memory_bytes``); unknown names raise."""
    k = name.strip().lower()
    k = ALIASES.get(k, k)
    if k not in KEYS:
        raise NasforgeError(f"unknown objective {name!r}; allowed: {', '.join(KEYS)} "
                            f"(aliases: {', '.join(f'{a}={b}' for a, b in ALIASES.items())})")
    return k


@dataclass(frozen=True)
class Objectives:
    """The cost keys a search minimises besides maximising the reward (empty: a single-objective search)."""

    keys: tuple[str, ...] = ()

    @staticmethod
    def of(items: Sequence[str] | str | None, has_latency: bool) -> Objectives:
        if items is None:
            return Objectives()
        if isinstance(items, str):
            items = [p for p in items.split(",") if p.strip()]
        keys = tuple(dict.fromkeys(objective_key(k) for k in items))
        if "latency" in keys and not has_latency:
            raise NasforgeError("objective latency needs a latency model (--latency-model FILE, or latency_fn); "
                                "none was given")
        return Objectives(keys)

    def __bool__(self) -> bool:
        return bool(self.keys)

    def names(self) -> list[str]:
        return ["reward", *self.keys]

    def attach(self, result: Result) -> Result:
        """``result`` with its objective vector (the cost numbers of ``keys``); unchanged when not ok."""
        if not self.keys or not result.ok:
            return result
        vec = tuple(float(result.cost.get(k, math.nan)) for k in self.keys)
        return dataclasses.replace(result, objectives=vec)

    # -- the front and its hypervolume -------------------------------------------------------------
    def vectors(self, trials: Sequence[Trial]) -> np.ndarray:
        """(n, 1 + len(keys)) minimisation vectors ``(-reward, costs...)`` of every trial; NaN rows when not ok."""
        out = np.full((len(trials), 1 + len(self.keys)), np.nan)
        for i, t in enumerate(trials):
            if t.ok and all(isinstance(t.cost.get(k), int | float) for k in self.keys):
                out[i] = [-float(t.reward or 0.0), *(float(t.cost[k]) for k in self.keys)]
        return out

    def summary(self, trials: Sequence[Trial]) -> dict[str, Any]:
        """The front (trial numbers, by increasing first cost), every ok trial's vector, the hypervolume history
        and how it was normalised: what the store, ``--json`` and the report show."""
        v = self.vectors(trials)
        ok = np.all(np.isfinite(v), axis=1)
        idx = np.flatnonzero(ok)
        front: list[int] = []
        lo = hi = None
        hv: list[float] = [0.0] * len(trials)
        if len(idx):
            mask = nondominated(v[idx])
            front = sorted((int(trials[int(i)].number) for i in idx[mask]),
                           key=lambda n: (tuple(v[n, 1:]), -v[n, 0], n))
            lo, hi = v[idx].min(axis=0), v[idx].max(axis=0)
            scaled = normalise(np.where(ok[:, None], v, np.inf), lo, hi)
            hv = hypervolume_history(scaled, np.full(v.shape[1], REFERENCE))
        return {"objectives": self.names(), "senses": ["max"] + ["min"] * len(self.keys),
                "front": front,
                "vectors": {str(trials[int(i)].number): [-v[i, 0], *v[i, 1:].tolist()] for i in idx},
                "hypervolume": hv,
                "normalisation": None if lo is None or hi is None else {
                    "min": [-float(hi[0]), *lo[1:].tolist()], "max": [-float(lo[0]), *hi[1:].tolist()],
                    "reference": REFERENCE, "rule": "min-max over the run's ok trials (reward as max - reward), "
                                                    "reference 1.1 in each objective"}}
