"""``write_report(run_dir)``: rebuild the page of any job's run (search, one-shot, benchmark) from its files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from nasforge.errors import NasforgeError
from nasforge.report._html import write_html


def write_report(run_dir: str | Path) -> Path:
    """(Re)build ``report.html`` of a run (and a search run's plots); which page follows the job that wrote it."""
    from nasforge.report._benchmark import render_benchmark
    from nasforge.report._oneshot import render_oneshot
    from nasforge.report._search import write_search_report
    from nasforge.runner._store import CONFIG_NAME, is_run_dir, job_of

    run = Path(run_dir)
    if is_run_dir(run):
        return write_search_report(run)
    job = job_of(run)  # a one-shot or benchmark run: its config.yaml is a mapping naming the job
    summary = _summary(run / "result.json") if job in ("oneshot", "benchmark") else None
    if summary is not None:
        cfg = yaml.safe_load((run / CONFIG_NAME).read_text(encoding="utf-8"))
        if job == "oneshot":
            images = [p for p in (run / "probabilities.png", run / "history.png") if p.is_file()]
            return write_html(run / "report.html", render_oneshot(summary, cfg, images))
        return write_html(run / "report.html", render_benchmark(summary, cfg, run / "benchmark.png"))
    raise NasforgeError(f"{run} is not a nasforge run directory (no run store, and no config.yaml and result.json "
                        "of a one-shot or benchmark run)")


def _summary(path: Path) -> dict[str, Any] | None:
    """A run's ``result.json`` as a mapping, None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None
