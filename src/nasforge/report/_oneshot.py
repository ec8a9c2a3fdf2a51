"""The page of a one-shot run: the derived architecture, its cost, the plots, the config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nasforge.report._html import code, config_block, image, kv_table, page


def render_oneshot(summary: Mapping[str, Any], config: Mapping[str, Any], images: Sequence[Path]) -> str:
    """The one-shot run's self-contained HTML page."""
    skip = ("arch", "space", "cost", "derived_per_epoch", "run_dir", "report")
    name = f"{summary['space']}:{summary['arch']}"
    parts = [f"<p>{code(name)}</p>",
             kv_table({k: v for k, v in summary.items() if k not in skip}),
             "<h2>Cost of the derived architecture</h2>" + kv_table(summary["cost"]), "<h2>Plots</h2>",
             *(image(p) for p in images)]
    if summary.get("derived_per_epoch"):
        parts.append("<h2>Derived architecture per epoch</h2><ol>"
                     + "".join(f"<li>{code(a)}</li>" for a in summary["derived_per_epoch"]) + "</ol>")
    parts.append(config_block(config))
    return page(f"nasforge one-shot run: {summary['method']}", parts)
