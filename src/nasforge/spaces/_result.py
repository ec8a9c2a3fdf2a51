"""What an evaluation gave (``Result``) and its status names: the value strategies learn from.

It lives beside ``Architecture`` so that strategies (which see results) need not import the estimators
(which make them); ``nasforge.estimators`` re-exports both names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATUSES = ("ok", "failed", "infeasible", "pruned")


@dataclass(frozen=True)
class Result:
    """What an evaluation gave: the reward strategies maximise, other metrics, cost numbers, status.

    ``reward`` is None unless ``status == "ok"``; ``seconds`` is wall (or simulated) evaluation time.
    ``objectives``: in a multi-objective search, the values to minimise besides the reward (e.g. latency in ms),
    in the run's order of objectives; empty in a single-objective search.
    """

    reward: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    status: str = "ok"
    error: str | None = None
    objectives: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} not in {STATUSES}")

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.reward is not None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"reward": self.reward, "metrics": dict(self.metrics), "cost": dict(self.cost),
                             "seconds": self.seconds, "status": self.status, "error": self.error}
        if self.objectives:
            d["objectives"] = list(self.objectives)
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Result:
        return Result(d.get("reward"), dict(d.get("metrics") or {}), dict(d.get("cost") or {}),
                      float(d.get("seconds") or 0.0), d.get("status", "ok"), d.get("error"),
                      tuple(float(v) for v in d.get("objectives") or ()))

    @staticmethod
    def failure(error: str, seconds: float = 0.0, status: str = "failed") -> Result:
        return Result(None, {}, {}, seconds, status, error)
