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

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import torch

from nasforge._files import atomic_dir, write_atomic
from nasforge.errors import NasforgeError
from nasforge.jobs._config import JobOptions
from nasforge.jobs._oneshot_defaults import darts_arch_lr, dataset_defaults, space_defaults
from nasforge.jobs._runs import check_run_dir, config_text, hold_run_dir, on_interrupt
from nasforge.oneshot import Supernet, SupernetEstimator, darts, make_supernet, proxyless, retrain, spos
from nasforge.oneshot._latency import latency_range, measure_choice_latency, path_latency, table_from_lut
from nasforge.oneshot._memory import step_peak_memory
from nasforge.oneshot._registry import METHODS
from nasforge.oneshot._training import OneShotResult

DEVICES = ("cpu", "cuda")
Status = Callable[[str], None]


@dataclass(kw_only=True)
class OneShotConfig(JobOptions):
    """What a one-shot run was asked (written to ``config.yaml``); ``subset`` and ``val_subset`` cap the training
    and validation splits (DARTS-PT scores the validation data some 36 times). A one-shot run cannot be resumed
    (the supernet's training is not checkpointed): ``RESUME_MAY_CHANGE`` is empty."""

    JOB: ClassVar[str] = "oneshot"

    method: str
    space: str = "nb201"
    space_options: dict[str, Any] = field(default_factory=dict)
    supernet_options: dict[str, Any] = field(default_factory=dict)
    dataset: str = "digits"
    data_dir: str | None = None
    subset: int | None = None
    val_subset: int | None = None
    epochs: int = 10
    batch_size: int | None = None  # None: the dataset's default (jobs/_oneshot_defaults.py)
    lr: float | None = None  # None: the dataset's default
    arch_lr: float | None = None  # darts/proxyless; None: darts sized to the run's steps, proxyless its default
    temperature_end: float | None = None  # darts; None: the dataset's default
    retrain_epochs: int = 0
    threads: int | None = None  # torch intra-op threads while training; None: the dataset's default
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

    def validate(self) -> None:
        _check(self)

    def default_out(self) -> Path:
        return Path("runs") / f"oneshot-{self.method}-{self.seed}"


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
    if cfg.epochs < 1 or (cfg.batch_size is not None and cfg.batch_size < 1):
        raise NasforgeError(f"epochs={cfg.epochs} and batch size={cfg.batch_size} must be >= 1")
    if cfg.arch_lr is not None and (cfg.method == "spos" or not cfg.arch_lr >= 0):
        raise NasforgeError(f"--arch-lr {cfg.arch_lr} must be >= 0 and applies to darts and proxyless only")
    if cfg.temperature_end is not None and (cfg.method != "darts" or not 0 < cfg.temperature_end <= 1):
        raise NasforgeError(f"--temperature-end {cfg.temperature_end} must be in (0, 1] and applies to darts only")
    if cfg.threads is not None and (isinstance(cfg.threads, bool) or not isinstance(cfg.threads, int)
                                    or cfg.threads < 1):
        raise NasforgeError(f"--threads {cfg.threads!r} must be a number of threads >= 1")
    if isinstance(cfg.retrain_epochs, bool) or not isinstance(cfg.retrain_epochs, int) or cfg.retrain_epochs < 0:
        raise NasforgeError(f"--retrain-epochs {cfg.retrain_epochs!r} must be a number of epochs >= 0 (0 = none)")
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
    from nasforge.runner import Constraints
    from nasforge.runner._constraints import canonical_constraints

    cfg.constraints = canonical_constraints(cfg.constraints)  # checked before training; stored canonical
    Constraints.of(cfg.constraints)  # a latency constraint needs a latency model, which SPOS' search has not


def prepare_space(cfg: OneShotConfig, data_shape: Sequence[int], num_classes: int
                  ) -> tuple[Any, Supernet, tuple[int, ...]]:
    """The space fitted to the data (``SearchSpace.for_data``; the options the user set are kept), restricted to
    the supernet's width and resolution for staged spaces, the supernet and its input shape (C, H, W)."""
    from nasforge.spaces import get_space
    from nasforge.spaces._staged import StagedSpace

    opts = {**space_defaults(cfg.dataset, cfg.space, cfg.space_options), **cfg.space_options}
    space: Any = get_space(cfg.space, **opts).for_data(data_shape, num_classes, keep=cfg.space_options)
    sn = dict(cfg.supernet_options)
    if isinstance(space, StagedSpace):
        r = sn.get("resolution", min(space.resolutions))
        w = sn.get("width", max(space.widths))
        if len(space.resolutions) > 1 or len(space.widths) > 1:
            make_supernet(space, resolution=r, width=w)  # validates r and w against the space's choices
            space = space.with_inputs(resolutions=[r], widths=[w])
        sn.update(resolution=r, width=w)
    net = make_supernet(space, num_classes=num_classes, seed=cfg.seed, **sn)
    return space, net, tuple(net.input_shape())


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


def run_oneshot(options: OneShotConfig | Mapping[str, Any],
                progress: Callable[[int, dict[str, float]], None] | None = None,
                status: Status | None = None, data: Any = None) -> dict[str, Any]:
    """Validate the options and the output folder (before any data is loaded or any training starts), train the
    supernet with its method, derive, and write the run directory (assembled aside, renamed into place at the
    end); the summary. ``options`` is a config or the options given (the others take their defaults);
    ``data``: a ``Dataset`` from Python (``load_dataset((x, y))``) instead of ``dataset``/``data_dir``."""
    from nasforge.jobs._owndata import with_data

    if data is not None:
        options = with_data(OneShotConfig.given(options), data)
    cfg = OneShotConfig.of(options)
    cfg = replace(cfg, out=str(check_run_dir(cfg.out or cfg.default_out(), OneShotConfig.JOB, can_resume=False)))
    with hold_run_dir(str(cfg.out)), on_interrupt(f"nothing was written to {cfg.out} (a one-shot run cannot be "
                                                  "resumed: run it again)"):  # one writer, to the last file
        return _run_oneshot(cfg, progress, status, data)


def _run_oneshot(cfg: OneShotConfig, progress: Callable[[int, dict[str, float]], None] | None,
                 status: Status | None, data: Any = None) -> dict[str, Any]:
    from nasforge.data import load_dataset
    from nasforge.jobs._owndata import capped, job_info

    out = check_run_dir(cfg.out or cfg.default_out(), OneShotConfig.JOB, can_resume=False)
    info = job_info(cfg, data)
    space, net, shape = prepare_space(cfg, info.input_shape, info.num_classes)
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
    if data is None:
        ds = load_dataset(cfg.dataset, cfg.data_dir, split_seed=cfg.seed,
                          subset=(cfg.subset, cfg.val_subset, None), resize=shape[1])
    else:
        ds = capped(data, cfg.subset, cfg.seed).resized(shape[1])
        if cfg.val_subset is not None:
            ds = replace(ds, val=type(ds.val)(ds.val.x[:cfg.val_subset], ds.val.y[:cfg.val_subset]))
    ds = ds.with_channels(shape[0])
    dev = torch.device(cfg.device)
    net.to(dev)
    train = (ds.train.x.to(dev), ds.train.y.to(dev))
    val = (ds.val.x.to(dev), ds.val.y.to(dev))
    settings = _settings(cfg, len(train[0]))
    if status:
        status(f"{cfg.method} on {space.name} ({len(train[0])} train / {len(val[0])} val images, {shape}; "
               + ", ".join(f"{k} {v}" for k, v in settings.items()) + ")")
    threads = torch.get_num_threads()
    torch.set_num_threads(int(settings.get("threads", threads)))  # for training, scoring and the retrain
    try:
        res = _train(cfg, settings, net, train, val, table, base, progress)
        for w in res.warnings:
            if status:
                status(f"warning: {w}")
        with atomic_dir(out) as stage:
            return _derive_and_write(cfg, settings, net, res, train, val, space, shape, table, base, lat_source,
                                     calib, stage, status)
    finally:
        torch.set_num_threads(threads)

def _settings(cfg: OneShotConfig, train_images: int) -> dict[str, Any]:
    """The training settings the run uses: the ones given, the dataset's defaults for the others
    (``jobs/_oneshot_defaults.py``); the methods' own defaults where neither says."""
    d = dataset_defaults(cfg.dataset)
    bs = cfg.batch_size if cfg.batch_size is not None else int(d["batch_size"])
    out: dict[str, Any] = {"batch_size": bs}
    added = space_defaults(cfg.dataset, cfg.space, cfg.space_options)
    if added:
        out["space_options"] = added
    out["lr"] = float(cfg.lr if cfg.lr is not None else d["lr"][cfg.method])
    if cfg.arch_lr is not None:
        out["arch_lr"] = cfg.arch_lr
    elif cfg.method == "darts":
        out["arch_lr"] = darts_arch_lr(cfg.epochs, cfg.warmup_epochs, train_images, bs)
    if cfg.method == "darts":
        out["temperature_end"] = cfg.temperature_end if cfg.temperature_end is not None else d["temperature_end"]
    threads = cfg.threads if cfg.threads is not None else d["threads"]
    if threads is not None:
        out["threads"] = int(threads)
    return out


def _derive_and_write(cfg: OneShotConfig, settings: dict[str, Any], net: Supernet, res: OneShotResult, train: Any,
                      val: Any, space: Any, shape: tuple[int, ...], table: torch.Tensor | None, base: float,
                      lat_source: str, calib: dict[str, Any], stage: Path, status: Status | None = None
                      ) -> dict[str, Any]:
    """SPOS' search, the derived architecture's scores and cost, and the run's files, written into ``stage``.

    Accuracies (fractions) say what they measure: ``supernet_val_acc`` the DARTS supernet itself (mixed ops),
    ``inherited_val_acc`` the derived architecture with the supernet's weights (batch-norm recalibrated),
    ``retrain_val_acc`` the derived architecture trained alone from fresh weights (``--retrain-epochs``)."""
    extra: dict[str, Any] = {}
    search_trials: list[dict[str, Any]] = []
    est = SupernetEstimator(net, train, val, seed=cfg.seed)
    if cfg.method == "spos":
        from nasforge.runner import run_search
        from nasforge.strategies import get_strategy

        out = run_search(space, get_strategy(cfg.strategy, space, seed=cfg.seed), est, cfg.budget,
                         constraints=cfg.constraints, seed=cfg.seed, out_dir=stage / "search")
        if out.best is None:
            raise NasforgeError("the SPOS search found no architecture that meets the constraints")
        res.arch = space.parse(out.best.arch)
        search_trials = [t.to_dict() for t in out.trials]
        extra["search_trials"] = len(out.trials)
    r = est.evaluate(res.arch)
    if r.ok:
        extra["inherited_val_acc"] = r.reward
    if cfg.retrain_epochs:
        if status:
            status(f"retraining the derived architecture alone for {cfg.retrain_epochs} epochs")
        extra.update(retrain(net, res.arch, train, val, cfg.retrain_epochs, int(settings["batch_size"]),
                             seed=cfg.seed))
    bs = int(settings["batch_size"])
    xb, yb = train[0][:bs], train[1][:bs]
    mem = step_peak_memory(net, cfg.method, xb, yb, seed=cfg.seed)
    cost = space.cost(res.arch)
    summary: dict[str, Any] = {
        "method": cfg.method, "space": space.name, "arch": str(res.arch), "epochs": res.epochs,
        "seconds": res.seconds, **mem, **extra, "warnings": res.warnings, "settings": settings,
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
    return write_run(cfg, net, res, summary, search_trials, stage)


def _train(cfg: OneShotConfig, settings: dict[str, Any], net: Supernet, train: Any, val: Any,
           table: torch.Tensor | None, base: float,
           progress: Callable[[int, dict[str, float]], None] | None) -> OneShotResult:
    common: dict[str, Any] = {"epochs": cfg.epochs, "batch_size": int(settings["batch_size"]), "seed": cfg.seed,
                              "progress": progress}
    if "lr" in settings:
        common["lr"] = settings["lr"]
    arch: dict[str, Any] = {"arch_lr": settings["arch_lr"]} if "arch_lr" in settings else {}
    if cfg.method == "darts":
        return darts(net, train, val, order=cfg.order, max_skip=cfg.max_skip, warmup_epochs=cfg.warmup_epochs,
                     beta_decay=cfg.beta_decay, selection=cfg.selection,
                     temperature_end=settings["temperature_end"], **arch, **common)
    if cfg.method == "proxyless":
        return proxyless(net, train, val, latency_table=table, base_latency_ms=base,
                         latency_target_ms=cfg.latency_target_ms, beta=cfg.beta, warmup_epochs=cfg.warmup_epochs,
                         **arch, **common)
    return spos(net, train, **common)


def write_run(cfg: OneShotConfig, net: Supernet, res: OneShotResult, summary: dict[str, Any],
              trials: Sequence[dict[str, Any]], stage: Path) -> dict[str, Any]:
    """Write the run's files into ``stage`` (renamed to ``cfg.out`` by the caller); returns ``summary`` with
    ``run_dir`` and ``report`` added."""
    from nasforge.report import plot_history, plot_probabilities, write_report

    d = stage
    final = Path(str(cfg.out))
    if res.history:
        plot_probabilities(res.history, net.unit_names, net.unit_labels, d / "probabilities.png")
    if trials:
        plot_history(trials, d / "history.png", "val accuracy (inherited weights)")
    summary = {**summary, "run_dir": str(final), "report": str(final / "report.html")}
    write_atomic(d / "arch.txt", f"{summary['space']}:{summary['arch']}\n")
    write_atomic(d / "config.yaml", config_text(OneShotConfig.JOB, cfg.to_dict()))
    write_atomic(d / "profile.json", json.dumps(summary["cost"], indent=1))
    write_atomic(d / "result.json", json.dumps(summary, indent=1, default=str))
    write_report(d)  # the page, from the files just written
    return summary
