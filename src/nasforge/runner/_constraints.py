"""Hard constraints on an architecture's analytic cost, checked before any evaluation, and Pareto fronts.

A constraint is a string ``KEY<=LIMIT`` (``<`` also allowed). The keys are the ``Cost`` field names:
``macs<=50e6``, ``params<=1.5M``, ``activations<=2e5`` and ``peak_activations``, ``other_ops`` (counts, with an
optional k/M/G = 1000^k), ``peak_memory_bytes<=320kB``, ``weight_bytes<=1MiB`` and ``activation_bytes``
(bytes at the run's precision, read by ``nasforge.units.parse_bytes``: kB = 1000, KiB = 1024), and
``latency<=5`` (ms; needs a latency model, a callable ``latency_fn(arch) -> ms``). The short forms
``peak_memory`` and ``weights`` are accepted as aliases; the canonical key is what is printed and stored.
The cost numbers come from ``space.cost(arch, resolution, precision)`` which is analytic (no torch), so
infeasible candidates cost microseconds, not a training run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nasforge.errors import NasforgeError
from nasforge.spaces import Architecture, SearchSpace
from nasforge.units import ALLOWED_BYTES, parse_bytes

LatencyFn = Callable[[Architecture], float]

#: canonical constraint key (a ``Cost`` field name, or ``latency``) -> unit kind ("count", "bytes" or "ms")
KEYS: dict[str, str] = {
    "macs": "count",
    "params": "count",
    "other_ops": "count",
    "activations": "count",
    "peak_activations": "count",
    "peak_memory_bytes": "bytes",
    "weight_bytes": "bytes",
    "activation_bytes": "bytes",
    "latency": "ms",
}
#: accepted short forms -> canonical key
ALIASES: dict[str, str] = {"peak_memory": "peak_memory_bytes", "weights": "weight_bytes", "latency_ms": "latency"}

_COUNT_UNITS: dict[str, float] = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}

ALLOWED_FORMS = (
    "KEY<=LIMIT with KEY one of macs, params, other_ops, activations, peak_activations (counts, e.g. 'macs<=50e6', "
    "'params<=1.5M'), peak_memory_bytes, weight_bytes, activation_bytes (bytes: B, kB/MB/GB = 1000^k, "
    "KiB/MiB/GiB = 1024^k, e.g. 'peak_memory_bytes<=320kB', 'weight_bytes<=1MiB'), latency (ms, e.g. 'latency<=5'); "
    "aliases: peak_memory = peak_memory_bytes, weights = weight_bytes"
)


def canonical_key(key: str) -> str:
    """The canonical spelling of a constraint key (``weights`` -> ``weight_bytes``); unknown keys raise."""
    k = key.strip().lower()
    k = ALIASES.get(k, k)
    if k not in KEYS:
        raise NasforgeError(f"unknown constraint key {key!r}; allowed: {ALLOWED_FORMS}")
    return k
_RE = re.compile(r"^\s*([A-Za-z_]+)\s*(<=|<)\s*([0-9.eE+\-]+)\s*([A-Za-z]*)\s*$")


@dataclass(frozen=True, slots=True)
class Constraint:
    """``key <= limit`` (or ``<`` when ``strict``), limit in base units (count, bytes or ms)."""

    key: str
    limit: float
    strict: bool = False
    text: str = ""

    def __post_init__(self) -> None:
        key = canonical_key(self.key)  # Constraint("weights", 1e6) is weight_bytes <= 1e6
        if key != self.key:
            text = self.text.strip()
            rest = "".join(text[len(self.key):].split()) if text.lower().startswith(self.key.lower()) else ""
            object.__setattr__(self, "key", key)
            object.__setattr__(self, "text", key + rest if rest else "")

    def ok(self, value: float) -> bool:
        return value < self.limit if self.strict else value <= self.limit

    def __str__(self) -> str:
        return self.text or f"{self.key}{'<' if self.strict else '<='}{self.limit:g}"


def parse_constraint(text: str) -> Constraint:
    """Parse one constraint string; anything else raises ``NasforgeError`` listing the allowed forms."""
    m = _RE.match(text)
    if m is None:
        raise NasforgeError(f"bad constraint {text!r}; allowed: {ALLOWED_FORMS}")
    op, num, unit = m.group(2), m.group(3), m.group(4)
    key = ALIASES.get(m.group(1).lower(), m.group(1).lower())
    if key not in KEYS:
        raise NasforgeError(f"unknown constraint key {m.group(1)!r} in {text!r}; allowed: {ALLOWED_FORMS}")
    kind = KEYS[key]
    if kind == "bytes":
        try:
            limit = float(parse_bytes(num + unit, key, allow_zero=True))
        except NasforgeError:
            raise NasforgeError(f"bad size {num + unit!r} for {key} in constraint {text!r}; "
                                f"allowed: {ALLOWED_BYTES}") from None
    else:
        try:
            value = float(num)
        except ValueError:
            raise NasforgeError(f"bad number {num!r} in constraint {text!r}; allowed: {ALLOWED_FORMS}") from None
        scales = _COUNT_UNITS if kind == "count" else {"": 1.0, "ms": 1.0}
        if unit.lower() not in scales:
            raise NasforgeError(
                f"bad unit {unit!r} for {key} in constraint {text!r}; allowed units: "
                f"{', '.join(k for k in scales if k)}; allowed: {ALLOWED_FORMS}"
            )
        limit = value * scales[unit.lower()]
    if not math.isfinite(limit) or limit < 0:
        raise NasforgeError(f"constraint limit must be a finite number >= 0, got {text!r}; allowed: {ALLOWED_FORMS}")
    return Constraint(key, limit, op == "<", f"{key}{op}{num}{unit}")


def parse_constraints(items: Sequence[str | Constraint] | str | None) -> tuple[Constraint, ...]:
    """Strings (or a comma-separated string) to constraints; ``Constraint`` values pass through."""
    if items is None:
        return ()
    if isinstance(items, str):
        items = [p for p in items.split(",") if p.strip()]
    return tuple(c if isinstance(c, Constraint) else parse_constraint(c) for c in items)


def canonical_constraints(items: Sequence[str | Constraint] | str | None) -> list[str]:
    """The constraints as their canonical strings (``weights<=1MB`` -> ``weight_bytes<=1MB``): what is stored."""
    return [str(c) for c in parse_constraints(items)]


def cost_numbers(
    space: SearchSpace,
    arch: Architecture,
    *,
    resolution: int | None = None,
    precision: str = "fp32",
    latency_fn: LatencyFn | None = None,
) -> dict[str, float]:
    """The constraint keys' values of one architecture, by canonical key (analytic; ``latency`` only with a
    latency model)."""
    c = space.cost(arch, resolution=resolution, precision=precision)
    out: dict[str, float] = {k: float(getattr(c, k)) for k in KEYS if k != "latency"}
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

