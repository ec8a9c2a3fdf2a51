"""The report of a search run: ``pareto.png``, ``history.png`` and ``report.html``, rebuilt from its store."""

from __future__ import annotations

import json
from pathlib import Path

from nasforge.errors import NasforgeError

BEST_DIR = "best"
SUMMARY = "summary.json"


def write_report(run_dir: str | Path) -> Path:
    """(Re)build ``pareto.png``, ``history.png`` and ``report.html`` of a run from its store and ``best/``."""
    from nasforge.report._html import render_report, write_html
    from nasforge.report._plots import plot_history, plot_pareto
    from nasforge.runner import RunStore, is_run_dir

    run = Path(run_dir)
    if not is_run_dir(run):
        raise NasforgeError(f"{run} is not a nasforge run directory (no trials.sqlite of a run)")
    with RunStore.open(run) as store:
        trials = [t.to_dict() for t in store.trials()]
        config = store.config
    job = (config.get("extra") or {}).get("job") or {}
    label = "validation accuracy" if job.get("estimator", "train") == "train" else "reward"
    images = [plot_pareto(trials, run / "pareto.png", ("macs", "peak_memory_bytes"), label),
              plot_history(trials, run / "history.png", label)]
    best = None
    summary_path = run / BEST_DIR / SUMMARY
    if summary_path.is_file():
        best = json.loads(summary_path.read_text())
        fits = best.get("fits")
        if fits and isinstance(fits.get("checks"), list):
            best["fits"] = {c["resource"]: {"value": c["need_bytes"], "limit": c["limit_bytes"], "ok": c["ok"]}
                            for c in fits["checks"]}
    return write_html(run / "report.html", render_report(job or config, trials, best, images))

