"""The dense tasks' part of a search report: the metric, per-class figures, the validation canvases with predictions
drawn (``best/predictions.png``) and the chosen topology drawn as a graph (``best/topology.png``), plus the drawing
of a space's ``graph(arch)`` description (nodes with a ``level``, edges with a ``kind``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasforge._files import save_figure
from nasforge.report._html import esc, fmt, image, table

EDGE_COLOURS = {"input": "#0969da", "unconnected": "#bf8700", "output": "#1a7f37", "down": "#cf222e",
                "up": "#1a7f37", "stay": "#6e7781"}


def metric_label(job: Mapping[str, Any]) -> str | None:
    """The reward's name for a dense run (None for classification)."""
    return {"segmentation": "validation mean IoU", "detection": "validation mAP@0.5"}.get(
        str(job.get("task", "classification")))


def dense_parts(run: Path, best: Mapping[str, Any] | None) -> list[str]:
    """HTML parts for a dense run's best architecture (nothing for classification runs)."""
    if not best or not best.get("metric"):
        return []
    label = best.get("metric_label", best["metric"])
    parts = [f"<h3>{esc(label)}</h3>"]
    val, test = best.get("val") or {}, best.get("test") or {}
    keys = [k for k in val if k in test] or list(val)
    parts.append(table(["figure", "validation", "test"], [[esc(k), fmt(val.get(k)), fmt(test.get(k, ""))]
                                                         for k in keys], left=[0]))
    per_val, per_test = best.get("val_per_class") or {}, best.get("per_class") or {}
    names = [n for n in best.get("classes", []) if n in per_val or n in per_test]
    if names:
        what = "IoU" if best.get("task") == "segmentation" else "AP@0.5"
        parts.append(f"<h3>Per class ({esc(what)})</h3>")
        parts.append(table(["class", "validation", "test"],
                           [[esc(n), fmt(per_val.get(n, "")), fmt(per_test.get(n, ""))] for n in names], left=[0]))
    for name, title in (("predictions.png", "Validation canvases: truth (top), prediction (bottom)"),
                        ("topology.png", "The chosen topology")):
        path = run / "best" / name
        if path.is_file():
            parts.append(f"<h3>{esc(title)}</h3>" + image(path))
    return parts


def _level(text: Any) -> float:
    """A node's level as a number for the y axis: ``P4`` -> 4, ``1/16`` -> 4 (log2 of the factor)."""
    s = str(text)
    m = re.fullmatch(r"P(\d+)", s)
    if m:
        return float(m.group(1))
    m = re.fullmatch(r"1/(\d+)", s)
    if m:
        return float(int(m.group(1)).bit_length() - 1)
    return 0.0


def draw_graph(graph: Mapping[str, Any], path: Path, title: str = "") -> Path:
    """Draw a topology: nodes left to right in the order given, at the height of their level (finer at the top),
    edges coloured by kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nodes = list(graph.get("nodes", []))
    pos = {n["id"]: (float(i), -_level(n.get("level"))) for i, n in enumerate(nodes)}
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(nodes)), 3.6))
    kinds_seen: dict[str, str] = {}
    for e in graph.get("edges", []):
        a, b = pos.get(e["from"]), pos.get(e["to"])
        if a is None or b is None:
            continue
        colour = EDGE_COLOURS.get(str(e.get("kind")), "#57606a")
        line = ax.annotate("", xy=b, xytext=a, arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.2,
                                                             "connectionstyle": "arc3,rad=0.15"})
        kinds_seen.setdefault(str(e.get("kind")), colour)
        del line
    for n in nodes:
        x, y = pos[n["id"]]
        ax.scatter([x], [y], s=260, color="#f6f8fa", edgecolors="#24292f", zorder=3)
        ax.text(x, y, str(n["id"]), ha="center", va="center", fontsize=6, zorder=4)
        ax.text(x, y - 0.32, str(n.get("kind", "")), ha="center", va="top", fontsize=5, color="#57606a")
    levels = sorted({pos[n["id"]][1] for n in nodes})
    ax.set_yticks(levels)
    ax.set_yticklabels([next(str(n.get("level")) for n in nodes if pos[n["id"]][1] == y) for y in levels])
    ax.set_xticks([])
    ax.set_ylim(min(levels, default=0) - 0.8, max(levels, default=0) + 0.6)
    for k, c in kinds_seen.items():
        ax.plot([], [], color=c, label=k)
    if kinds_seen:
        ax.legend(fontsize=6, loc="upper right", frameon=False)
    ax.set_title(title, fontsize=8)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    save_figure(fig, path, dpi=110, format="png")
    plt.close(fig)
    return path
