"""The report of a search run: ``pareto.png``, ``history.png`` and ``report.html``, rebuilt from its store."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nasforge.errors import NasforgeError
from nasforge.report._html import code, config_block, esc, fmt, image, kv_table, page, table, write_html

BEST_DIR = "best"
SUMMARY = "summary.json"


def write_search_report(run_dir: str | Path) -> Path:
    """(Re)build ``pareto.png``, ``history.png`` and ``report.html`` of a search run from its store and ``best/``."""
    from nasforge.report._plots import plot_history, plot_pareto
    from nasforge.runner import RunStore
    from nasforge.runner._store import is_run_dir

    run = Path(run_dir)
    if not is_run_dir(run):
        raise NasforgeError(f"{run} is not a nasforge run directory (no trials.sqlite of a run)")
    with RunStore.open(run) as store:
        trials = [t.to_dict() for t in store.trials()]
        config = store.config
        front = store.front()  # a multi-objective run: its front and hypervolume history
    extra = config.get("extra") or {}
    stored = extra.get("job")
    job: dict[str, Any] = stored if isinstance(stored, dict) else dict(extra.get("options") or {})
    label = "validation accuracy" if job.get("estimator", "train") == "train" else "reward"
    images = [plot_pareto(trials, run / "pareto.png", ("macs", "peak_memory_bytes"), label),
              plot_history(trials, run / "history.png", label)]
    if front is not None:
        from nasforge.report._front import plot_front

        images.insert(0, plot_front(front, run / "front.png", label))
    best = None
    summary_path = run / BEST_DIR / SUMMARY
    if summary_path.is_file():
        best = json.loads(summary_path.read_text())
        fits = best.get("fits")
        if fits and isinstance(fits.get("checks"), list):
            best["fits"] = {c["resource"]: {"value": c["need_bytes"], "limit": c["limit_bytes"], "ok": c["ok"]}
                            for c in fits["checks"]}
    return write_html(run / "report.html", render_report(job or config, trials, best, images, front))


def render_report(config: Mapping[str, Any], trials: Sequence[Mapping[str, Any]], best: Mapping[str, Any] | None,
                  images: Sequence[Path], front: Mapping[str, Any] | None = None) -> str:
    """The search run's page. ``best`` holds ``arch``, metrics, ``cost`` totals, ``layers`` and ``fits``; ``front``
    (a multi-objective run) the stored front and hypervolume history."""
    n_ok = sum(1 for t in trials if t.get("status") == "ok")
    n_inf = sum(1 for t in trials if t.get("status") == "infeasible")
    n_fail = sum(1 for t in trials if t.get("status") == "failed")
    parts = [f"<p>{len(trials)} trials: {n_ok} evaluated, {n_inf} infeasible (skipped before training), "
             f"{n_fail} failed.</p>", "<h2>Best architecture</h2>"]
    if best:
        name = f"{best.get('space', '')}:{best['arch']}"
        parts.append(f"<p>{code(name)}</p>")
        parts.append(kv_table({k: v for k, v in best.items()
                               if k not in ("arch", "space", "layers", "fits", "cost", "int8", "preprocessing",
                                            "data")}))
        parts.extend(int8_section(best.get("int8")))
        if best.get("cost"):
            parts.append("<h3>Cost</h3>" + kv_table(best["cost"]))
        fits = best.get("fits")
        if fits:
            rows = [[esc(k), fmt(v.get("value")), fmt(v.get("limit")),
                     f"<span class='{'ok' if v.get('ok') else 'bad'}'>{'fits' if v.get('ok') else 'exceeds'}</span>"]
                    for k, v in fits.items() if isinstance(v, Mapping)]
            parts.append("<h3>Device limits</h3>" + table(["limit", "value", "limit", "verdict"], rows, left=[0]))
        layers = best.get("layers") or []
        if layers:
            rows = [[esc(r["name"]), esc(r["op"]), "x".join(map(str, r["in_shape"])),
                     "x".join(map(str, r["out_shape"])), fmt(r["params"]), fmt(r["macs"])] for r in layers]
            parts.append("<h3>Per-layer cost</h3>" + table(["layer", "op", "in", "out", "params", "MACs"], rows,
                                                           left=[0, 1]))
    else:
        parts.append("<p>No architecture was evaluated successfully.</p>")
    if front is not None:
        from nasforge.report._front import render_front

        parts.append(render_front(front, trials))
    parts.append("<h2>Plots</h2>")
    parts.extend(image(p) for p in images)
    top = sorted((t for t in trials if t.get("status") == "ok" and t.get("reward") is not None),
                 key=lambda t: -float(t["reward"]))[:20]
    rows = [[fmt(t.get("number", "")), fmt(float(t["reward"])), fmt((t.get("cost") or {}).get("macs", "")),
             fmt((t.get("cost") or {}).get("peak_memory_bytes", "")), code(t["arch"])] for t in top]
    parts.append("<h2>Top trials</h2>" + table(["#", "reward", "MACs", "peak bytes", "arch"], rows, left=[4]))
    parts.append(failed_trials(trials))
    parts.append(config_block(config))
    return page("nasforge search report", parts)


def failed_trials(trials: Sequence[Mapping[str, Any]], limit: int = 50) -> str:
    """The failed trials with their errors (estimator raised, NaN, timed out, worker killed), first ``limit``."""
    failed = [t for t in trials if t.get("status") == "failed"]
    if not failed:
        return ""
    rows = [[fmt(t.get("number", "")), esc(str(t.get("error") or "")), code(str(t.get("arch", "")))]
            for t in failed[:limit]]
    more = f"<p>... and {len(failed) - limit} more.</p>" if len(failed) > limit else ""
    return f"<h2>Failed trials ({len(failed)})</h2>" + table(["#", "error", "arch"], rows, left=[1, 2]) + more


def int8_section(int8: Mapping[str, Any] | None) -> list[str]:
    """The int8 model's figures (``best/summary.json``'s ``int8``): accuracy beside fp32, bytes, device verdict."""
    if not int8:
        return []
    if "error" in int8:
        return ["<h3>Int8 model</h3>", f"<p class='bad'>{esc(int8['error'])}</p>"]
    parts = ["<h3>Int8 model (best/model.int8.onnx, ONNX Runtime)</h3>"]
    if int8.get("drop_over_1_point"):
        parts.append(f"<p class='bad'>int8 loses {100 * float(int8['accuracy_drop']):.1f} points of test accuracy "
                     "against fp32 (more than 1 point).</p>")
    fits = int8.get("fits") or {}
    rows = {"test accuracy int8": int8.get("test_acc"), "test accuracy fp32 (onnx)": int8.get("test_acc_fp32_onnx"),
            "stored bytes (weights, biases, scales)": int8.get("weight_bytes"),
            "analytic int8 weight bytes": int8.get("analytic_weight_bytes"),
            "quantization": int8.get("format")}
    for c in fits.get("checks") or []:
        rows[f"{c['resource']}: {c['holds']}"] = (f"{fmt(c['need_bytes'])} of {fmt(c['limit_bytes'])} B: "
                                                   + ("fits" if c["ok"] else "exceeds"))
    parts.append(kv_table(rows))
    return parts
