"""Plots of runs: Pareto fronts of accuracy vs cost, best-so-far history, one-shot probabilities, benchmarks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter

from nasforge._files import save_figure
from nasforge.runner._constraints import pareto_front

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
    save_figure(fig, path, dpi=110, bbox_inches="tight")


def plot_pareto(trials: Sequence[Mapping[str, Any]], path: str | Path,
                cost_keys: Sequence[str] = ("macs", "peak_memory_bytes"), metric_label: str = "accuracy",
                limits: Mapping[str, float] | None = None) -> Path:
    """Reward against each cost key; feasible trials in colour with their front drawn, others grey; a limit on a
    key (device memory, a constraint) is a dashed vertical line."""
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
        if limits and key in limits and limits[key] > 0:
            ax.axvline(limits[key], color="tab:orange", ls="--", lw=1.5, label=f"limit {limits[key]:,.0f}")
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
    """Each trial's reward and the best so far, by trial number (the store's, 0-based)."""
    path = Path(path)
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    xs, ys, best_x, best_y = [], [], [], []
    best = float("-inf")
    for k, t in enumerate(trials):
        i = int(t.get("number", k))
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
    ax.set_xlabel("trial (0-based, as in the store)")
    ax.set_ylabel(metric_label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    _save(fig, path)
    return path


def plot_learning_curve(curve: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """The final training, epoch by epoch: training loss (left axis) and validation accuracy (right axis)."""
    from matplotlib.ticker import MaxNLocator

    path = Path(path)
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    epochs = [int(r["epoch"]) for r in curve]
    ax.plot(epochs, [float(r["train_loss"]) for r in curve], marker=".", color="tab:blue", label="training loss")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("training loss", color="tab:blue")
    ax.grid(alpha=0.3)
    acc = [(e, float(r["val_acc"])) for e, r in zip(epochs, curve, strict=True) if r.get("val_acc") is not None]
    if acc:
        ax2 = ax.twinx()
        ax2.plot([a[0] for a in acc], [a[1] for a in acc], marker=".", color="tab:red", label="validation accuracy")
        ax2.set_ylabel("validation accuracy", color="tab:red")
    ax.set_title("final training of the best architecture")
    _save(fig, path)
    return path


def plot_probabilities(history: Sequence[Sequence[Sequence[float]]], names: Sequence[str],
                       labels: Sequence[Sequence[str]], path: str | Path, ncols: int = 4) -> Path:
    """One panel per unit (decision or edge): each candidate's probability over the epochs, one line each."""
    from matplotlib.ticker import MaxNLocator

    path = Path(path)
    k = len(names)
    nrows = (k + ncols - 1) // ncols
    fig = Figure(figsize=(3.4 * ncols, 2.4 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    epochs = list(range(1, len(history) + 1))
    for u in range(nrows * ncols):
        ax = axes[u // ncols][u % ncols]
        if u >= k:
            ax.set_axis_off()
            continue
        for i, lab in enumerate(labels[u]):
            ax.plot(epochs, [h[u][i] for h in history], marker="." if len(epochs) < 20 else None, label=lab)
        ax.set_title(names[u], fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if u % ncols == 0:
            ax.set_ylabel("probability", fontsize=7)
        if u == 0 or labels[u] != labels[u - 1]:
            ax.legend(fontsize=6, loc="upper left")
    fig.suptitle("candidate probabilities per epoch")
    fig.subplots_adjust(hspace=0.5)
    return save_figure(fig, path, dpi=90, bbox_inches="tight")


def plot_benchmark(summary: Mapping[str, Any], path: str | Path) -> Path:
    """A benchmark's mean +/- std of the final metric vs query budget, one line per strategy, the oracle dashed.
    ``summary`` is ``BenchmarkResult.to_dict()``: ``strategies`` (budget -> mean, std, n), ``oracle``, ``settings``."""
    import numpy as np

    path = Path(path)
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    for name, row in summary["strategies"].items():
        pts = [(int(k), s) for k, s in row.items() if k.isdigit() and s["n"]]
        if not pts:
            continue
        x = [p[0] for p in pts]
        m = np.array([p[1]["mean"] for p in pts])
        sd = np.array([p[1]["std"] for p in pts])
        ax.plot(x, m, marker="o", label=name)
        ax.fill_between(x, m - sd, m + sd, alpha=0.15)
    oracle, settings = summary["oracle"], summary["settings"]
    if "best_final" in oracle:
        ax.axhline(oracle["best_final"], color="k", ls="--", lw=1, label="oracle (best final)")
    ax.set_xscale("log")
    ax.set_xlabel("queries")
    if settings.get("minimize_col"):  # the multi-objective protocol
        ax.set_ylabel(f"hypervolume / true front's (final vs {settings['minimize_col']})")
    else:
        col = settings.get("final_col") or settings.get("reward_col")
        ax.set_ylabel(f"final ({col}, fraction) of best-reward arch")
    ax.set_title(f"{settings['space']}: mean +/- std over {settings['seeds']} seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)
