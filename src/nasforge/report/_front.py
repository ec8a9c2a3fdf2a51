"""The multi-objective part of a search report: the front against each objective (dominated trials shown too), the
hypervolume over trials, and the front as a table. ``front`` is what the runner stores (``Objectives.summary``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from nasforge._files import save_figure
from nasforge.report._html import code, esc, fmt, table

LABELS = {"macs": "MACs", "peak_memory_bytes": "peak memory (bytes)", "params": "params",
          "weight_bytes": "weights (bytes)", "latency": "latency (ms)", "activation_bytes": "activations (bytes)"}


def plot_front(front: Mapping[str, Any], path: str | Path, metric_label: str = "reward") -> Path:
    """One panel per minimised objective (reward against it: dominated trials grey, the front red), and the
    hypervolume of the front after each trial."""
    path = Path(path)
    names: list[str] = list(front["objectives"])
    costs = names[1:]
    vectors: Mapping[str, Sequence[float]] = front["vectors"]
    on_front = {str(n) for n in front["front"]}
    fig = Figure(figsize=(5.2 * (len(costs) + 1), 4.2))
    axes = fig.subplots(1, len(costs) + 1, squeeze=False)[0]
    for j, (ax, key) in enumerate(zip(axes, costs, strict=False), start=1):
        dom = [(v[j], v[0]) for n, v in vectors.items() if n not in on_front]
        fr = sorted((v[j], v[0]) for n, v in vectors.items() if n in on_front)
        if dom:
            ax.scatter(*zip(*dom, strict=True), s=16, color="0.6", alpha=0.7, label="dominated")
        if fr:
            xs, ys = zip(*fr, strict=True)
            if len(costs) == 1:
                ax.step(xs, ys, where="post", color="tab:red", lw=1.2)
            ax.scatter(xs, ys, color="tab:red", zorder=3, label=f"front ({len(fr)})")
        ax.set_xlabel(LABELS.get(key, key))
        ax.set_ylabel(metric_label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    hv = front.get("hypervolume") or []
    ax = axes[-1]
    ax.plot(range(1, len(hv) + 1), hv, color="tab:green", drawstyle="steps-post")
    ax.set_xlabel("trial")
    ax.set_ylabel("hypervolume (normalised)")
    ax.set_title("hypervolume of the front", fontsize=9)
    ax.grid(alpha=0.3)
    fig.suptitle(f"{metric_label} vs {', '.join(costs)}: {len(on_front)} of {len(vectors)} evaluated on the front")
    return save_figure(fig, path, dpi=110, bbox_inches="tight")


def front_rows(front: Mapping[str, Any], trials: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The front's trials in front order: number, arch and each objective's value."""
    by = {int(t["number"]): t for t in trials}
    out = []
    for n in front["front"]:
        v = front["vectors"][str(n)]
        out.append({"number": int(n), "arch": by[int(n)]["arch"] if int(n) in by else "",
                    **dict(zip(front["objectives"], v, strict=True))})
    return out


def render_front(front: Mapping[str, Any], trials: Sequence[Mapping[str, Any]]) -> str:
    """The HTML section: the objectives, the final hypervolume and the front as a table."""
    names = list(front["objectives"])
    hv = front.get("hypervolume") or [0.0]
    rows = [[fmt(r["number"]), *(fmt(r[k]) for k in names), code(r["arch"])] for r in front_rows(front, trials)]
    senses = ", ".join(f"{s} {k}" for s, k in zip(front["senses"], names, strict=True))
    head = (f"<h2>Pareto front</h2><p>Objectives: {esc(senses)}; "
            f"{len(rows)} trials on the front; hypervolume {fmt(hv[-1] if hv else 0.0)} (normalised: min-max over "
            f"the run's evaluated trials, reference {fmt((front.get('normalisation') or {}).get('reference', ''))})."
            "</p>")
    return head + table(["#", *names, "arch"], rows, left=[len(names) + 1])
