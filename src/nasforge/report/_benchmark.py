"""The page of a benchmark run: mean +/- std per strategy and budget, the oracle, the plot, the config."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasforge.report._html import config_block, esc, fmt, image, kv_table, page, table


def render_benchmark(summary: Mapping[str, Any], config: Mapping[str, Any], plot: Path) -> str:
    """``summary`` is ``BenchmarkResult.to_dict()``: per strategy and budget the mean, std and n of the final
    metric of the best-reward architecture."""
    strategies: Mapping[str, Mapping[str, Mapping[str, Any]]] = summary["strategies"]
    budgets = list(next(iter(strategies.values()))) if strategies else []

    def cell(s: Mapping[str, Any]) -> str:
        return "-" if not s.get("n") else f"{fmt(s['mean'])} +/- {fmt(s['std'])} ({s['n']})"

    rows = [[esc(name), *(cell(row[b]) for b in budgets), fmt(summary.get("overhead_ms", {}).get(name, ""))]
            for name, row in strategies.items()]
    col = (summary.get("settings") or {}).get("minimize_col")
    title = (f"Hypervolume of the front (reward vs {esc(col)}) over the true front's" if col
             else "Final metric of the best-reward architecture")
    parts = [f"<h2>{title}</h2>",
             table(["strategy", *budgets, "ms/query"], rows, left=[0]), "<h2>Oracle</h2>",
             kv_table(summary.get("oracle") or {}), "<h2>Plot</h2>", image(plot), config_block(config)]
    return page("nasforge benchmark", parts)
