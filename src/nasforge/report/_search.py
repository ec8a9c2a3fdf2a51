"""The report of a search run, a dashboard rebuilt from its store: plots first, then the counts, the best network,
every trial (status, time) and the config.

To add to it: write a plot function ``(SearchRun) -> Path | None`` and append it to ``PLOTS`` (it is drawn into
the run folder and shown in the plot grid), or a section ``(SearchRun, plots) -> str`` (HTML, "" for nothing) and
insert it in ``SECTIONS`` where it belongs. Sections read only ``SearchRun``; add a field there if one needs more.

Trial numbers are the store's: 0-based in ask order (``#0`` is the first asked), the same in the progress bar's
"best" text, the trials table, the history plot and ``trials.sqlite``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasforge.errors import NasforgeError
from nasforge.report._dense import dense_parts, metric_label
from nasforge.report._html import code, config_block, esc, fmt, image, kv_table, page, table, write_html

BEST_DIR = "best"
SUMMARY = "summary.json"
STATUSES = ("ok", "infeasible", "failed", "pruned", "running")
MAX_TRIAL_ROWS = 500  # the trials table lists at most this many (the best first beyond it)


@dataclass
class SearchRun:
    """What the report's plots and sections read.

    ``options``: the job's options (``config.yaml``'s ``extra.options``); ``trials``: ``Trial.to_dict()`` in store
    order; ``best``: ``best/summary.json`` (None before the final training); ``limits``: constraint key -> limit
    (device limits included, bytes at the run's precision); ``metric``: the label of the reward; ``front``: the
    front of a multi-objective run (``RunStore.front()``).
    """

    run: Path
    options: dict[str, Any]
    trials: list[dict[str, Any]]
    best: dict[str, Any] | None
    limits: dict[str, float] = field(default_factory=dict)
    metric: str = "reward"
    front: dict[str, Any] | None = None  # a multi-objective run: its stored front and hypervolume history

    def count(self, status: str) -> int:
        return sum(1 for t in self.trials if t.get("status") == status)

    def ok_trials(self) -> list[dict[str, Any]]:
        return [t for t in self.trials if t.get("status") == "ok" and t.get("reward") is not None]


def write_search_report(run_dir: str | Path) -> Path:
    """(Re)build the plots and ``report.html`` of a search run from its store and ``best/``."""
    from nasforge.runner import RunStore
    from nasforge.runner._constraints import parse_constraints
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
    limits: dict[str, float] = {}
    for c in parse_constraints([str(t) for t in config.get("constraints") or []]):
        limits[c.key] = min(c.limit, limits.get(c.key, c.limit))
    summary_path = run / BEST_DIR / SUMMARY
    best = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    metric = metric_label(job) or ("validation accuracy" if job.get("estimator", "train") == "train" else "reward")
    data = SearchRun(run, job or dict(config), trials, best, limits, metric, front)
    images = [p for plot in PLOTS if (p := plot(data)) is not None]
    return write_html(run / "report.html", page("nasforge search report",
                                                [s(data, images) for s in SECTIONS]))


# -- plots ------------------------------------------------------------------------------------------------------
def _front_plot(data: SearchRun) -> Path | None:
    if data.front is None:
        return None
    from nasforge.report._front import plot_front

    return plot_front(data.front, data.run / "front.png", data.metric)


def _pareto(data: SearchRun) -> Path:
    from nasforge.report._plots import plot_pareto

    keys = ["macs", "peak_memory_bytes", *(k for k in ("weight_bytes", "latency") if k in data.limits)]
    return plot_pareto(data.trials, data.run / "pareto.png", keys, data.metric, data.limits)


def _history(data: SearchRun) -> Path:
    from nasforge.report._plots import plot_history

    return plot_history(data.trials, data.run / "history.png", data.metric)


def _learning_curve(data: SearchRun) -> Path | None:
    from nasforge.report._plots import plot_learning_curve

    curve = (data.best or {}).get("curve")
    if not curve:
        return None
    return plot_learning_curve(curve, data.run / "learning_curve.png")


PLOTS: list[Callable[[SearchRun], Path | None]] = [_front_plot, _pareto, _history, _learning_curve]


# -- sections ---------------------------------------------------------------------------------------------------
def _overview(data: SearchRun, images: Sequence[Path]) -> str:
    """One line of counts and times, and the headline figures of the best network."""
    n = len(data.trials)
    counts = ", ".join(f"<b>{data.count(s)}</b> {s}" for s in STATUSES if data.count(s) or s in ("ok", "failed",
                                                                                                  "infeasible"))
    search_s = sum(float(t.get("wall_seconds") or t.get("seconds") or 0.0) for t in data.trials)
    parts = [f"<p>{n} trials: {counts} (infeasible: over a limit, skipped before training). "
             f"Search time {search_s:,.1f} s (sum of trial times).</p>"]
    best = data.best
    if best:
        cards = {"architecture": f"{best.get('space', '')}:{best.get('arch', '')}"}
        for key in ("val_acc", "test_acc", "val_metric", "test_metric"):
            if best.get(key) is not None:
                cards[key] = best[key]
        int8 = best.get("int8")
        if isinstance(int8, Mapping) and int8.get("test_acc") is not None:
            cards["test_acc int8 (onnxruntime)"] = int8["test_acc"]
        cost = best.get("cost") or {}
        for key in ("macs", "peak_memory_bytes", "weight_bytes"):
            if key in cost:
                cards[key] = cost[key]
        fits = best.get("fits")
        if isinstance(fits, Mapping) and "fits" in fits:
            cards["device"] = f"{fits.get('device')}: {'fits' if fits['fits'] else 'does not fit'}"
        if best.get("train_seconds") is not None:
            cards["final training"] = f"{best.get('final_epochs')} epochs, {best['train_seconds']:,.1f} s"
        parts.append(kv_table(cards))
    return "".join(parts)


def _plots(data: SearchRun, images: Sequence[Path]) -> str:
    cells = "".join(f"<div>{image(p)}</div>" for p in images)
    note = (" Dashed lines: the run's limits (device and constraints)." if data.limits else "")
    return f"<h2>Plots</h2><p>Trial numbers are 0-based, as in the store.{note}</p><div class='grid'>{cells}</div>"


def _best(data: SearchRun, images: Sequence[Path]) -> str:
    best = data.best
    if not best:
        return "<h2>Best architecture</h2><p>No architecture was evaluated successfully.</p>"
    parts = ["<h2>Best architecture</h2>", f"<p>{code(str(best.get('space', '')) + ':' + str(best['arch']))}</p>",
             kv_table({k: v for k, v in best.items() if k not in ("arch", "space", "layers", "fits", "cost", "curve")
                       and not isinstance(v, Mapping | list)}),  # int8, preprocessing, data: their own sections
             *int8_section(best.get("int8"))]
    if best.get("cost"):
        parts.append("<h3>Cost</h3>" + kv_table(best["cost"]))
    fits = best.get("fits")
    if isinstance(fits, Mapping) and isinstance(fits.get("checks"), list):
        rows = [[esc(c["resource"]), esc(c.get("holds", "")), fmt(c["need_bytes"]), fmt(c["limit_bytes"]),
                 f"<span class='{'ok' if c['ok'] else 'bad'}'>{'fits' if c['ok'] else 'exceeds'}</span>"]
                for c in fits["checks"]]
        parts.append(f"<h3>Device limits ({esc(fits.get('device', ''))})</h3>"
                     + table(["resource", "holds", "bytes", "limit", "verdict"], rows, left=[0, 1]))
    layers = best.get("layers") or []
    if layers:
        peak = max((r.get("live_activations", 0) for r in layers), default=0)
        rows = [[esc(r["name"]), esc(r["op"]), "x".join(map(str, r["in_shape"])), "x".join(map(str, r["out_shape"])),
                 fmt(r["params"]), fmt(r["macs"]),
                 fmt(r["live_bytes"]) + (" &larr; peak" if peak and r.get("live_activations") == peak else "")
                 if "live_bytes" in r else ""] for r in layers]
        parts.append("<h3>Per-layer cost</h3><details><summary>" + f"{len(layers)} layers (live bytes: activations "
                     "alive while the layer runs)</summary>"
                     + table(["layer", "op", "in", "out", "params", "MACs", "live bytes"], rows, left=[0, 1])
                     + "</details>")
    return "".join(parts)


def _dense(data: SearchRun, images: Sequence[Path]) -> str:
    """A dense task's metric, per-class figures, predicted canvases and chosen topology (``report._dense``)."""
    return "".join(dense_parts(data.run, data.best))


def _trials(data: SearchRun, images: Sequence[Path]) -> str:
    trials = data.trials
    shown = trials
    if len(trials) > MAX_TRIAL_ROWS:
        shown = sorted(trials, key=lambda t: -(t["reward"] if t.get("reward") is not None else float("-inf")))
        shown = sorted(shown[:MAX_TRIAL_ROWS], key=lambda t: t.get("number", 0))
    rows = []
    for t in shown:
        cost = t.get("cost") or {}
        status = str(t.get("status", ""))
        cls = {"ok": "ok", "failed": "bad", "infeasible": "muted", "pruned": "muted"}.get(status, "")
        note = t.get("error") or ""
        seconds = t.get("wall_seconds") if t.get("wall_seconds") is not None else t.get("seconds")
        rows.append([fmt(t.get("number", "")), f"<span class='{cls}'>{esc(status)}</span>",
                     fmt(float(t["reward"])) if t.get("reward") is not None else "",
                     fmt(cost.get("macs", "")), fmt(cost.get("peak_memory_bytes", cost.get("peak_memory", ""))),
                     fmt(cost.get("weight_bytes", cost.get("weights", ""))),
                     fmt(round(float(seconds), 2)) if seconds is not None else "", code(t["arch"]),
                     esc(str(note)[:160])])
    head = f"<h2>Trials</h2><p>{len(trials)} trials in ask order (# = the store's 0-based number)"
    head += f"; the {MAX_TRIAL_ROWS} best shown.</p>" if len(shown) < len(trials) else ".</p>"
    return head + table(["#", "status", data.metric, "MACs", "peak bytes", "weight bytes", "time (s)", "arch",
                         "note"], rows, left=[1, 7, 8])


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


def _front(data: SearchRun, images: Sequence[Path]) -> str:
    if data.front is None:
        return ""
    from nasforge.report._front import render_front

    return render_front(data.front, data.trials)


def _failed(data: SearchRun, images: Sequence[Path]) -> str:
    return failed_trials(data.trials)


def _config(data: SearchRun, images: Sequence[Path]) -> str:
    return config_block(data.options)


SECTIONS: list[Callable[[SearchRun, Sequence[Path]], str]] = [_overview, _plots, _best, _dense, _front, _trials,
                                                               _failed, _config]
