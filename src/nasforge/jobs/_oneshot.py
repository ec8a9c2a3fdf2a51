"""A one-shot run end to end (what ``nasforge oneshot`` calls): validate, train, derive, write the run directory.

The run directory holds ``arch.txt`` (``space:arch``), ``result.json`` (the summary), ``config.yaml``,
``profile.json`` (the derived architecture's analytic cost), ``probabilities.png`` (every unit's candidate
probabilities per epoch, DARTS and ProxylessNAS) or ``history.png`` (SPOS' search), ``report.html``, and
for SPOS the search's own run directory ``search/``.

Staged spaces (``mobilenet``) have one supernet per width and resolution: when the space offers several,
the run restricts it to the supernet's (``--supernet-option resolution=..,width=..``; default the smallest
resolution and the largest width), so every architecture searched and derived is one the supernet runs.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from nasforge.errors import NasforgeError
from nasforge.oneshot import (
    METHODS,
    OneShotResult,
    Supernet,
    SupernetEstimator,
    darts,
    latency_range,
    make_supernet,
    measure_choice_latency,
    path_latency,
    proxyless,
    spos,
    step_peak_memory,
    table_from_lut,
)

DEVICES = ("cpu", "cuda")
Status = Callable[[str], None]


@dataclass
class OneShotConfig:
    """What a one-shot run was asked (written to ``config.yaml``); ``subset`` and ``val_subset`` cap the training
    and validation splits (DARTS-PT scores the validation data some 36 times)."""

    method: str
    space: str = "nb201"
    space_options: dict[str, Any] = field(default_factory=dict)
    supernet_options: dict[str, Any] = field(default_factory=dict)
    dataset: str = "digits"
    data_dir: str | None = None
    subset: int | None = None
    val_subset: int | None = None
    epochs: int = 10
    batch_size: int = 64
    lr: float | None = None
    seed: int = 0
    order: int = 1
    max_skip: int | None = None
    warmup_epochs: int = 0
    beta_decay: float = 0.0
    selection: str = "alpha"
    latency_target_ms: float | None = None
    latency_model: str | None = None
    beta: float = 0.6
    budget: int = 20
    strategy: str = "evolution"
    constraints: list[str] = field(default_factory=list)
    device: str = "cpu"
    out: str = "runs/oneshot"


def _check(cfg: OneShotConfig) -> None:
    if cfg.method not in METHODS:
        raise NasforgeError(f"unknown one-shot method {cfg.method!r}; allowed: {', '.join(METHODS)}")
    if cfg.device not in DEVICES:
        raise NasforgeError(f"unknown torch device {cfg.device!r}; allowed: {', '.join(DEVICES)}")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise NasforgeError("--device-torch cuda asked for but CUDA is not available here; use cpu")
    for flag, n in (("--subset", cfg.subset), ("--val-subset", cfg.val_subset)):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise NasforgeError(f"{flag} {n!r} must be a positive number of images (or left out for all)")
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise NasforgeError(f"epochs={cfg.epochs} and batch size={cfg.batch_size} must be >= 1")
    if cfg.method != "proxyless" and (cfg.latency_target_ms is not None or cfg.latency_model is not None):
        raise NasforgeError(f"--latency-target/--latency-model apply to proxyless only; {cfg.method} has no "
                            "latency loss")
    if cfg.latency_target_ms is not None and not cfg.latency_target_ms > 0:
        raise NasforgeError(f"latency target {cfg.latency_target_ms} ms must be > 0")
    if cfg.selection not in ("alpha", "pt"):
        raise NasforgeError(f"unknown selection {cfg.selection!r}; allowed: alpha, pt")
    if not 0 <= cfg.warmup_epochs < cfg.epochs:
        raise NasforgeError(f"warmup epochs={cfg.warmup_epochs} must be in 0..{cfg.epochs - 1} (epochs={cfg.epochs})")
    if cfg.method == "spos" and cfg.budget < 1:
        raise NasforgeError(f"spos budget={cfg.budget} must be >= 1")
    from nasforge.runner import Constraints, canonical_constraints

    cfg.constraints = canonical_constraints(cfg.constraints)  # checked before training; stored canonical
    Constraints.of(cfg.constraints)  # a latency constraint needs a latency model, which SPOS' search has not


def prepare_space(cfg: OneShotConfig, num_classes: int, channels: int) -> tuple[Any, Supernet, tuple[int, ...]]:
    """The space (restricted to the supernet's width and resolution for staged spaces), the supernet and its
    input shape (C, H, W)."""
    from nasforge.spaces import get_space
    from nasforge.spaces._staged import StagedSpace

    opts = {"num_classes": num_classes, **cfg.space_options}
    sn = dict(cfg.supernet_options)
    space: Any = get_space(cfg.space, **opts)
    if isinstance(space, StagedSpace):
        if cfg.space == "mobilenet" and "in_channels" not in cfg.space_options:
            space = get_space(cfg.space, **{**opts, "in_channels": channels})
        r = sn.get("resolution", min(space.resolutions))
        w = sn.get("width", max(space.widths))
        if cfg.space == "mobilenet" and (len(space.resolutions) > 1 or len(space.widths) > 1):
            make_supernet(space, resolution=r, width=w)  # validates r and w against the space's choices
            space = get_space(cfg.space, **{**opts, "in_channels": space.in_channels, "resolutions": [r],
                                             "widths": [w]})
        sn.update(resolution=r, width=w)
    net = make_supernet(space, num_classes=num_classes, seed=cfg.seed, **sn)
    if isinstance(space, StagedSpace):
        shape: tuple[int, ...] = (space.in_channels, int(sn["resolution"]), int(sn["resolution"]))
    else:
        shape = (3, space.resolution, space.resolution)
    return space, net, shape


def latency_model(cfg: OneShotConfig, net: Supernet, shape: tuple[int, ...], status: Status | None = None,
                  info: dict[str, Any] | None = None) -> tuple[torch.Tensor, float, str]:
    """(per-unit latency table in ms, base ms, its source): a loaded lookup table or host measurements
    (whose calibration figures go into ``info``)."""
    if cfg.latency_model is not None:
        from nasforge.hardware import LatencyTable

        lut = LatencyTable.load(cfg.latency_model)
        table, base = table_from_lut(net, lut, shape)
        return table, base, f"lookup table {cfg.latency_model} ({lut.device})"
    if status:
        status("measuring every candidate's latency on the host (batch 1)")
    table, base = measure_choice_latency(net, shape, seed=cfg.seed, info=info)
    return table, base, "host-measured (torch, CPU, batch 1)"


def run_oneshot(cfg: OneShotConfig, progress: Callable[[int, dict[str, float]], None] | None = None,
                status: Status | None = None) -> dict[str, Any]:
    """Validate ``cfg``, train the supernet with its method, derive and write the run directory; the summary."""
    from nasforge.data import dataset_info, load_dataset

    _check(cfg)
    info = dataset_info(cfg.dataset)
    space, net, shape = prepare_space(cfg, info.num_classes, info.input_shape[0])
    table: torch.Tensor | None = None
    base, lat_source = 0.0, ""
    calib: dict[str, Any] = {}
    if cfg.method == "proxyless":
        if cfg.latency_target_ms is not None or cfg.latency_model is not None:
            table, base, lat_source = latency_model(cfg, net, shape, status, calib)
        if table is not None and cfg.latency_target_ms is not None:
            lo, _ = latency_range(table, net.unit_sizes(), base)
            if cfg.latency_target_ms < lo:
                raise NasforgeError(f"latency target {cfg.latency_target_ms:g} ms is unreachable: the smallest "
                                    f"reachable is {lo:.4g} ms (base {base:.4g} + sum of per-decision minima "
                                    f"{lo - base:.4g}, {lat_source})")
    ds = load_dataset(cfg.dataset, cfg.data_dir, split_seed=cfg.seed, subset=(cfg.subset, cfg.val_subset, None),
                      resize=shape[1])
    ds = ds.with_channels(shape[0])
    dev = torch.device(cfg.device)
    net.to(dev)
    train = (ds.train.x.to(dev), ds.train.y.to(dev))
    val = (ds.val.x.to(dev), ds.val.y.to(dev))
    if status:
        status(f"{cfg.method} on {space.name} ({len(train[0])} train / {len(val[0])} val images, {shape})")
    res = _train(cfg, net, train, val, table, base, progress)
    extra: dict[str, Any] = {}
    search_trials: list[dict[str, Any]] = []
    est = SupernetEstimator(net, train, val, seed=cfg.seed)
    if cfg.method == "spos":
        from nasforge.runner import run_search
        from nasforge.strategies import get_strategy

        out = run_search(space, get_strategy(cfg.strategy, space, seed=cfg.seed), est, cfg.budget,
                         constraints=cfg.constraints, seed=cfg.seed, out_dir=Path(cfg.out) / "search")
        if out.best is None:
            raise NasforgeError("the SPOS search found no architecture that meets the constraints")
        res.arch = space.parse(out.best.arch)
        search_trials = [t.to_dict() for t in out.trials]
        extra["search_trials"] = len(out.trials)
    r = est.evaluate(res.arch)
    if r.ok:
        extra["val_acc"] = r.reward
    xb, yb = train[0][: cfg.batch_size], train[1][: cfg.batch_size]
    mem = step_peak_memory(net, cfg.method, xb, yb, seed=cfg.seed)
    cost = space.cost(res.arch)
    summary: dict[str, Any] = {
        "method": cfg.method, "space": space.name, "arch": str(res.arch), "epochs": res.epochs,
        "seconds": res.seconds, **mem, **extra,
        "cost": {"params": cost.params, "macs": cost.macs, "peak_memory_bytes": cost.peak_memory_bytes,
                 "weight_bytes": cost.weight_bytes, "precision": cost.precision},
        "derived_per_epoch": res.derived,
        **{k: v for k, v in res.info.items() if not k.endswith("_ms") and k != "pt_log"},
    }
    if table is not None:
        summary["expected_latency"] = res.info.get("expected_latency_ms")
        summary["predicted_latency"] = path_latency(net, table, res.arch, base)
        summary["latency_target"] = cfg.latency_target_ms
        summary["latency_model"] = lat_source
        if cfg.latency_model is None:  # host-measured table: time the derived network on the host too
            from nasforge.hardware import measure_latencies

            (st,) = measure_latencies([net.to_standalone(res.arch)], (1, *shape))  # minimum over >= 1 s
            summary["measured_latency"] = st.min_ms
            summary["latency_calibration"] = calib
    return write_run(cfg, net, res, summary, search_trials)


def _train(cfg: OneShotConfig, net: Supernet, train: Any, val: Any, table: torch.Tensor | None, base: float,
           progress: Callable[[int, dict[str, float]], None] | None) -> OneShotResult:
    common: dict[str, Any] = {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "seed": cfg.seed,
                              "progress": progress}
    if cfg.lr is not None:
        common["lr"] = cfg.lr
    if cfg.method == "darts":
        return darts(net, train, val, order=cfg.order, max_skip=cfg.max_skip, warmup_epochs=cfg.warmup_epochs,
                     beta_decay=cfg.beta_decay, selection=cfg.selection, **common)
    if cfg.method == "proxyless":
        return proxyless(net, train, val, latency_table=table, base_latency_ms=base,
                         latency_target_ms=cfg.latency_target_ms, beta=cfg.beta, warmup_epochs=cfg.warmup_epochs,
                         **common)
    return spos(net, train, **common)


def plot_probabilities(history: Sequence[Sequence[Sequence[float]]], names: Sequence[str],
                       labels: Sequence[Sequence[str]], path: str | Path, ncols: int = 4) -> Path:
    """One panel per unit (decision or edge): each candidate's probability over the epochs, one line each."""
    from matplotlib.figure import Figure
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
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=90, bbox_inches="tight")
    tmp.replace(path)
    return path


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_run(cfg: OneShotConfig, net: Supernet, res: OneShotResult, summary: dict[str, Any],
              trials: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Write the run directory; returns ``summary`` with ``run_dir`` and ``report`` added."""
    from nasforge.report._html import write_html

    d = Path(cfg.out)
    d.mkdir(parents=True, exist_ok=True)
    images = []
    if res.history:
        images.append(plot_probabilities(res.history, net.unit_names, net.unit_labels, d / "probabilities.png"))
    if trials:
        from nasforge.report._plots import plot_history

        images.append(plot_history(trials, d / "history.png", "val accuracy (inherited weights)"))
    summary = {**summary, "run_dir": str(d), "report": str(d / "report.html")}
    _atomic_text(d / "arch.txt", f"{summary['space']}:{summary['arch']}\n")
    _atomic_text(d / "config.yaml", yaml.safe_dump(asdict(cfg), sort_keys=False))
    _atomic_text(d / "profile.json", json.dumps(summary["cost"], indent=1))
    _atomic_text(d / "result.json", json.dumps(summary, indent=1, default=str))
    write_html(d / "report.html", render(summary, asdict(cfg), images))
    return summary


def render(summary: dict[str, Any], config: dict[str, Any], images: Sequence[Path]) -> str:
    """The one-shot run's self-contained HTML page."""
    import base64

    def row(k: str, v: Any) -> str:
        return f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"

    keys = [k for k in summary if k not in ("arch", "space", "cost", "derived_per_epoch", "run_dir", "report")]
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>nasforge one-shot run</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}td{padding:2px 10px}"
             "img{max-width:100%}</style></head><body>",
             f"<h1>nasforge one-shot run: {html.escape(summary['method'])}</h1>",
             f"<p><code>{html.escape(summary['space'])}:{html.escape(summary['arch'])}</code></p>",
             "<table>" + "".join(row(k, summary[k]) for k in keys) + "</table>",
             "<h2>Cost of the derived architecture</h2><table>"
             + "".join(row(k, v) for k, v in summary["cost"].items()) + "</table>", "<h2>Plots</h2>"]
    for p in images:
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        parts.append(f'<img alt="{html.escape(p.name)}" src="data:image/png;base64,{data}">')
    if summary.get("derived_per_epoch"):
        parts.append("<h2>Derived architecture per epoch</h2><ol>"
                     + "".join(f"<li><code>{html.escape(a)}</code></li>" for a in summary["derived_per_epoch"])
                     + "</ol>")
    parts.append("<h2>Config</h2><pre>" + html.escape(yaml.safe_dump(config, sort_keys=False)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
