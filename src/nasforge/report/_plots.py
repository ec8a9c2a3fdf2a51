"""Plots of a run: the accuracy-vs-cost Pareto fronts and the best-so-far history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter

from nasforge.runner import pareto_front

COST_LABELS = {"macs": "MACs", "peak_memory_bytes": "peak memory (bytes)", "params": "params",
               "weight_bytes": "weights (bytes)", "latency_ms": "latency (ms)"}


#: Names the same cost number was stored under in runs made before the constraint keys were the Cost field names.
ALIASES = {"peak_memory_bytes": "peak_memory", "weight_bytes": "weights"}


def cost_value(trial: Mapping[str, Any], key: str) -> float | None:
    """A trial's cost number by key (or its alias), None if absent."""
    cost = trial.get("cost") or {}
    v = cost.get(key, cost.get(ALIASES.get(key, key)))
    return None if v is None else float(v)


def _save(fig: Figure, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)


def plot_pareto(trials: Sequence[Mapping[str, Any]], path: str | Path,
                cost_keys: Sequence[str] = ("macs", "peak_memory_bytes"), metric_label: str = "accuracy") -> Path:
    """Reward against each cost key; feasible trials in colour with their front drawn, others grey."""
    path = Path(path)
    fig = Figure(figsize=(5.5 * len(cost_keys), 4.2))
    axes = fig.subplots(1, len(cost_keys), squeeze=False)
    ok = [t for t in trials if t.get("status") == "ok" and t.get("reward") is not None]
    infeasible = [t for t in trials if t.get("status") == "infeasible"]
    for ax, key in zip(axes[0], cost_keys, strict=True):
        pts = [(v, float(t["reward"])) for t in ok if (v := cost_value(t, key)) is not None]
        bad = [v for t in infeasible if (v := cost_value(t, key)) is not None]
        if bad:
            lo = min(p[1] for p in pts) if pts else 0.0
            ax.scatter(bad, [lo] * len(bad), marker="x", color="0.6", label="infeasible (not evaluated)")
        if pts:
            xs, ys = zip(*pts, strict=True)
            on_front = set(pareto_front(list(zip(ys, xs, strict=True))))
            mask = [i in on_front for i in range(len(xs))]
            ax.scatter(xs, ys, color="tab:blue", alpha=0.6, label="feasible")
            front = sorted((x, y) for x, y, m in zip(xs, ys, mask, strict=True) if m)
            fx, fy = zip(*front, strict=True)
            ax.step(fx, fy, where="post", color="tab:red", lw=1.5)
            ax.scatter(fx, fy, color="tab:red", zorder=3, label="Pareto front")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(EngFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(COST_LABELS.get(key, key) + " (log)")
        ax.set_ylabel(metric_label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"{metric_label} vs cost ({len(ok)} evaluated)")
    _save(fig, path)
    return path


def plot_history(trials: Sequence[Mapping[str, Any]], path: str | Path, metric_label: str = "accuracy") -> Path:
    """Each trial's reward and the best so far, in trial order."""
    path = Path(path)
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    xs, ys, best_x, best_y = [], [], [], []
    best = float("-inf")
    for i, t in enumerate(trials, start=1):
        r = t.get("reward")
        if t.get("status") == "ok" and r is not None:
            xs.append(i)
            ys.append(float(r))
            best = max(best, float(r))
        if best > float("-inf"):
            best_x.append(i)
            best_y.append(best)
    ax.scatter(xs, ys, s=14, color="tab:blue", alpha=0.6, label="trial")
    if best_x:
        ax.step(best_x, best_y, where="post", color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric_label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    _save(fig, path)
    return path
