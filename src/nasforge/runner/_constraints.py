"""Hard constraints on an architecture's analytic cost, checked before any evaluation, and Pareto fronts.

A constraint is a string ``KEY<=LIMIT`` (``<`` also allowed): ``macs<=50e6``, ``params<=1e6``,
``peak_memory<=320kB`` and ``weights<=1MB`` (bytes at the run's precision; suffixes B, kB, MB, GB = 1000^k,
KiB, MiB, GiB = 1024^k), ``activations<=2e5`` (elements) and ``latency<=5`` (ms; needs a latency model,
a callable ``latency_fn(arch) -> ms``). The cost numbers come from ``space.cost(arch, resolution, precision)``
which is analytic (no torch), so infeasible candidates cost microseconds, not a training run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nasforge.errors import NasforgeError
from nasforge.spaces import Architecture, SearchSpace

LatencyFn = Callable[[Architecture], float]

#: constraint key -> unit kind ("count", "bytes" or "ms")
KEYS: dict[str, str] = {
    "macs": "count",
    "params": "count",
    "activations": "count",
    "peak_memory": "bytes",
    "weights": "bytes",
    "latency": "ms",
}

_BYTE_UNITS: dict[str, float] = {
    "b": 1.0, "kb": 1e3, "mb": 1e6, "gb": 1e9,
    "kib": 1024.0, "mib": 1024.0**2, "gib": 1024.0**3,
}
_COUNT_UNITS: dict[str, float] = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}

ALLOWED_FORMS = (
    "KEY<=LIMIT with KEY one of macs, params, activations (counts, e.g. 'macs<=50e6', 'params<=1.5M'), "
    "peak_memory, weights (bytes, e.g. 'peak_memory<=320kB', 'weights<=1MiB'), latency (ms, e.g. 'latency<=5')"
)
_RE = re.compile(r"^\s*([A-Za-z_]+)\s*(<=|<)\s*([0-9.eE+\-]+)\s*([A-Za-z]*)\s*$")


@dataclass(frozen=True, slots=True)
class Constraint:
    """``key <= limit`` (or ``<`` when ``strict``), limit in base units (count, bytes or ms)."""

    key: str
    limit: float
    strict: bool = False
    text: str = ""

    def ok(self, value: float) -> bool:
        return value < self.limit if self.strict else value <= self.limit

    def __str__(self) -> str:
        return self.text or f"{self.key}{'<' if self.strict else '<='}{self.limit:g}"


def parse_constraint(text: str) -> Constraint:
    """Parse one constraint string; anything else raises ``NasforgeError`` listing the allowed forms."""
    m = _RE.match(text)
    if m is None:
        raise NasforgeError(f"bad constraint {text!r}; allowed: {ALLOWED_FORMS}")
    key, op, num, unit = m.group(1).lower(), m.group(2), m.group(3), m.group(4).lower()
    if key not in KEYS:
        raise NasforgeError(f"unknown constraint key {key!r} in {text!r}; allowed: {ALLOWED_FORMS}")
    try:
        value = float(num)
    except ValueError:
        raise NasforgeError(f"bad number {num!r} in constraint {text!r}; allowed: {ALLOWED_FORMS}") from None
    kind = KEYS[key]
    scales = _BYTE_UNITS if kind == "bytes" else _COUNT_UNITS if kind == "count" else {"": 1.0, "ms": 1.0}
    if kind == "bytes" and unit == "":
        scale = 1.0
    elif unit in scales:
        scale = scales[unit]
    else:
        raise NasforgeError(
            f"bad unit {m.group(4)!r} for {key} in constraint {text!r}; allowed units: "
            f"{', '.join(k for k in scales if k)}; allowed: {ALLOWED_FORMS}"
        )
    limit = value * scale
    if not math.isfinite(limit) or limit < 0:
        raise NasforgeError(f"constraint limit must be a finite number >= 0, got {text!r}; allowed: {ALLOWED_FORMS}")
    return Constraint(key, limit, op == "<", text.strip())


def parse_constraints(items: Sequence[str | Constraint] | str | None) -> tuple[Constraint, ...]:
    """Strings (or a comma-separated string) to constraints; ``Constraint`` values pass through."""
    if items is None:
        return ()
    if isinstance(items, str):
        items = [p for p in items.split(",") if p.strip()]
    return tuple(c if isinstance(c, Constraint) else parse_constraint(c) for c in items)


def cost_numbers(
    space: SearchSpace,
    arch: Architecture,
    *,
    resolution: int | None = None,
    precision: str = "fp32",
    latency_fn: LatencyFn | None = None,
) -> dict[str, float]:
    """The constraint keys' values of one architecture (analytic; ``latency`` only with a latency model)."""
    c = space.cost(arch, resolution=resolution, precision=precision)
    out: dict[str, float] = {
        "macs": float(c.macs),
        "params": float(c.params),
        "activations": float(c.activations),
        "peak_memory": float(c.peak_memory_bytes),
        "weights": float(c.weight_bytes),
    }
    if latency_fn is not None:
        out["latency"] = float(latency_fn(arch))
    return out


@dataclass(frozen=True)
class Constraints:
    """A set of constraints with what they need to be checked: precision, resolution, latency model."""

    items: tuple[Constraint, ...] = ()
    precision: str = "fp32"
    resolution: int | None = None
    latency_fn: LatencyFn | None = None

    def __post_init__(self) -> None:
        if any(c.key == "latency" for c in self.items) and self.latency_fn is None:
            raise NasforgeError("constraint on latency needs a latency model (latency_fn); none was given")

    @staticmethod
    def of(
        items: Sequence[str | Constraint] | str | None,
        precision: str = "fp32",
        resolution: int | None = None,
        latency_fn: LatencyFn | None = None,
    ) -> Constraints:
        return Constraints(parse_constraints(items), precision, resolution, latency_fn)

    def cost(self, space: SearchSpace, arch: Architecture) -> dict[str, float]:
        return cost_numbers(space, arch, resolution=self.resolution, precision=self.precision,
                            latency_fn=self.latency_fn)

    def violations(self, numbers: dict[str, float]) -> list[str]:
        """One readable line per broken constraint (empty when feasible)."""
        return [f"{c.key}={numbers[c.key]:g} breaks {c}" for c in self.items if not c.ok(numbers[c.key])]

    def check(self, space: SearchSpace, arch: Architecture) -> tuple[bool, dict[str, float], list[str]]:
        """(feasible, cost numbers, violations) of one architecture."""
        numbers = self.cost(space, arch)
        bad = self.violations(numbers)
        return not bad, numbers, bad

    def texts(self) -> list[str]:
        return [str(c) for c in self.items]


def check_satisfiable(
    space: SearchSpace, constraints: Constraints, samples: int = 200, seed: int = 0
) -> None:
    """Sample the space; if no sample meets every constraint, raise naming the smallest cost seen per key.

    Meant to run before any training, so that an impossible constraint fails in milliseconds.
    """
    if not constraints.items:
        return
    rng = np.random.default_rng(seed)
    smallest: dict[str, float] = {}
    for _ in range(samples):
        arch = space.sample(rng)
        numbers = constraints.cost(space, arch)
        if not constraints.violations(numbers):
            return
        for c in constraints.items:
            smallest[c.key] = min(smallest.get(c.key, math.inf), numbers[c.key])
    seen = ", ".join(f"{k}={v:g}" for k, v in smallest.items())
    raise NasforgeError(
        f"no architecture among {samples} samples of {space.name!r} meets {', '.join(constraints.texts())}; "
        f"smallest seen: {seen}"
    )


def pareto_front(points: Sequence[tuple[float, float]], maximize: tuple[bool, bool] = (True, False)) -> list[int]:
    """Indices of the non-dominated points, sorted by the second objective.

    Default: maximise the first value (reward), minimise the second (a cost). A point is dominated when
    another is at least as good in both and better in one; of exact duplicates the first index is kept.
    """
    s0 = 1.0 if maximize[0] else -1.0
    s1 = -1.0 if maximize[1] else 1.0
    # sort by cost ascending (as a minimisation), then by reward descending, then index (first kept)
    order = sorted(range(len(points)), key=lambda i: (s1 * points[i][1], -s0 * points[i][0], i))
    front: list[int] = []
    best = -math.inf
    for i in order:
        r = s0 * points[i][0]
        if math.isnan(r) or math.isnan(points[i][1]):
            continue
        if r > best:
            front.append(i)
            best = r
    return front

