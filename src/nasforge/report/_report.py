"""``write_report(run_dir)``: rebuild the page of any job's run (search, one-shot, benchmark) from its files."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from nasforge.errors import NasforgeError
from nasforge.report._html import write_html


def write_report(run_dir: str | Path) -> Path:
    """(Re)build ``report.html`` of a run (and a search run's plots); which page follows the job that wrote it."""
    from nasforge.report._benchmark import render_benchmark
    from nasforge.report._oneshot import render_oneshot
    from nasforge.report._search import write_search_report
    from nasforge.runner._store import is_run_dir

    run = Path(run_dir)
    if is_run_dir(run):
        return write_search_report(run)
    config, result = run / "config.yaml", run / "result.json"
    job = None
    if config.is_file() and result.is_file():
        try:
            cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
            summary = json.loads(result.read_text(encoding="utf-8"))
        except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError):
            cfg, summary = None, None
        if isinstance(cfg, dict) and isinstance(summary, dict):
            job = cfg.get("job") or ("oneshot" if "method" in cfg else None)
    if job == "oneshot":
        images = [p for p in (run / "probabilities.png", run / "history.png") if p.is_file()]
        return write_html(run / "report.html", render_oneshot(summary, cfg, images))
    if job == "benchmark":
        return write_html(run / "report.html", render_benchmark(summary, cfg, run / "benchmark.png"))
    raise NasforgeError(f"{run} is not a nasforge run directory (no run store, and no config.yaml and result.json "
                        "of a one-shot or benchmark run)")
