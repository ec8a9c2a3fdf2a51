"""The main job: a hardware-aware search end to end, and the files of its run directory.

``SearchConfig`` holds every knob (flags and ``--config`` YAML map onto its fields). ``run_job`` takes the options
that were given: a new run fills the others with ``SearchConfig``'s defaults, a resumed run with the stored run's
values (only ``RESUME_MAY_CHANGE`` may differ from them). It validates
everything before it touches the disk (unknown names, malformed constraints, a device no architecture of the
space can meet), runs the search, trains the best candidate once more for its test accuracy, and writes
``best/`` (``model.pt``, ``model.onnx`` checked with onnxruntime, ``summary.json``), ``pareto.png``,
``history.png`` and ``report.html`` next to the run store.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from nasforge._files import atomic_dir, write_atomic
from nasforge.errors import NasforgeError
from nasforge.jobs import _dense
from nasforge.jobs._config import BackendOptions, positive_ints
from nasforge.jobs._runs import check_run_dir, clean_temporaries, hold_run_dir, on_interrupt
from nasforge.report import write_report
from nasforge.report._search import BEST_DIR, SUMMARY
from nasforge.spaces import SearchSpace, get_space

DEFAULT_SPACE = "mobilenet"
DEFAULT_MO_STRATEGY = "mo-surrogate"  # the strategy of a search with --minimize and no --strategy
#: Options of the default space when the user gives none: a small MobileNetV2-style space for 8x8..32x32 images
#: (resolutions are chosen from the data, see ``default_resolutions``).
SMALL_MOBILENET: dict[str, Any] = {
    "stage_channels": [16, 24, 40, 64],
    "stage_strides": [1, 2, 2, 1],
    "depths": [[1, 2], [1, 2, 3], [1, 2, 3], [1, 2]],
    "kernels": [3, 5],
    "expands": [3, 6],
    "widths": [0.5, 0.75, 1.0],
    "stem_channels": 16,
    "first_channels": 8,
    "head_channels": 256,
}


@dataclass(kw_only=True)
class SearchConfig(BackendOptions):
    """Everything a search run needs; defaults are the main job (digits, stm32f746, evolution)."""

    JOB: ClassVar[str] = "search"
    #: Options a resumed run may change: the number of evaluations, how many run in parallel and where (the trials
    #: do not depend on it: the run keeps its ``in_flight``) and the final training of the best (after the search).
    #: Any other option given must equal the stored one.
    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = ("budget", "workers", "final_epochs", "backend", "ray_address",
                                                    "trial_resources", "trial_timeout")

    #: "" (not given): the task's default space (mobilenet; segmentation: lattice; detection: nasfpn)
    space: str = ""
    space_options: dict[str, Any] = field(default_factory=dict)
    strategy: str = "evolution"
    strategy_options: dict[str, Any] = field(default_factory=dict)
    estimator: str = "train"
    #: classification | segmentation | detection (``TASKS``); the space must serve it (``SearchSpace.tasks``)
    task: str = "classification"
    #: "" (not given): the task's built-in default (digits for classification, the multi-scale canvases otherwise)
    dataset: str = ""
    #: options of a dense dataset (multiscale: canvas, min_size, max_size, max_objects, counts; coco/masks:
    #: image_size)
    dataset_options: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None
    subset: int | None = None
    device: str | None = "stm32f746"
    precision: str = "int8"
    constraints: list[str] = field(default_factory=list)
    latency_model: str | None = None
    minimize: list[str] = field(default_factory=list)  # objectives besides the reward: cost keys or latency
    budget: int = 20
    epochs: int = 3
    final_epochs: int = 10
    batch_size: int = 64
    lr: float | None = None
    optimizer: str = "sgd"
    seed: int = 0
    workers: int = 1
    #: seconds an evaluation may take before it is stopped and recorded failed (None: no limit)
    trial_timeout: float | None = None

    def __post_init__(self) -> None:
        from nasforge.runner._constraints import canonical_constraints

        self.constraints = canonical_constraints(self.constraints)  # stored and printed in canonical keys
        if not self.space:
            self.space = _dense.default_space(self.task)
        if not self.dataset:
            self.dataset = _dense.default_dataset(self.task)
        if self.minimize:
            from nasforge.runner._objectives import objective_key

            items = [self.minimize] if isinstance(self.minimize, str) else list(self.minimize)
            self.minimize = list(dict.fromkeys(objective_key(str(k)) for k in items))
        if self.device in ("", "none"):  # `--device none`: no device limits
            self.device = None

    def validate(self) -> None:
        from nasforge.data import list_datasets
        from nasforge.data._loaders import IN_MEMORY
        from nasforge.spaces import list_spaces
        from nasforge.strategies import list_strategies

        if self.space not in list_spaces():
            raise NasforgeError(f"unknown space {self.space!r}; known: {', '.join(list_spaces())}")
        _dense.check_task_dataset(self.task, self.dataset)  # a known task, and a dataset with its targets
        if self.task == "classification" and self.dataset not in (*list_datasets(), IN_MEMORY):
            raise NasforgeError(f"unknown dataset {self.dataset!r}; known: {', '.join(list_datasets())}")
        if self.strategy not in list_strategies():
            raise NasforgeError(f"unknown strategy {self.strategy!r}; known: {', '.join(list_strategies())}")
        if self.estimator != "train":
            raise NasforgeError(f"unknown estimator {self.estimator!r} for a search on a dataset; allowed: train "
                                "(tabular benchmarks run with `nasforge benchmark`)")
        positive_ints(self, "budget", "epochs", "final_epochs", "batch_size", "workers")
        t = self.trial_timeout
        if t is not None and (isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t < math.inf):
            raise NasforgeError(f"trial_timeout must be a number of seconds > 0, got {t!r}")
        self.validate_backend()
        if self.minimize:
            from nasforge.strategies._base import check_objectives

            if "latency" in self.minimize and not self.latency_model:
                raise NasforgeError("--minimize latency needs --latency-model FILE (build one with "
                                    "`nasforge latency build` or `nasforge latency fit --save`)")
            check_objectives(self.strategy, 1 + len(self.minimize))

    def default_out(self) -> Path:
        return Path("runs") / time.strftime("search-%Y%m%d-%H%M%S")


@dataclass
class Prepared:
    """What ``prepare`` resolved: the objects of a validated config, nothing written yet."""

    config: SearchConfig
    space: SearchSpace
    space_options: dict[str, Any]
    constraints: list[str]
    device: Any
    dataset: Any
    estimator: Any
    out_dir: Path
    latency_fn: Callable[[Any], float] | None = None
    full_data: Any = None  #: the whole training split (the search may run on a subset); None: ``dataset``


def default_resolutions(native: int) -> list[int]:
    """Input resolutions for the small default space: the two multiples of 8 that bracket the data's own size
    (28 -> 24, 32), at least 16 and 24 (the network's total stride is 8)."""
    hi = max(24, -(-native // 8) * 8)
    return [hi - 8, hi]


def space_options(cfg: SearchConfig, native: int) -> dict[str, Any]:
    """The space options of a run: the user's, or for the default space without any the small preset."""
    if cfg.space == DEFAULT_SPACE and not cfg.space_options:
        return {**SMALL_MOBILENET, "resolutions": default_resolutions(native)}
    return dict(cfg.space_options)


def fitted_space(name: str, options: dict[str, Any], data_shape: Sequence[int], num_classes: int,
                 task: str = "classification") -> SearchSpace:
    """The space with the given options, fitted to the data (input channels, classes, resolution) wherever the
    options leave it open, for ``task`` (``SearchSpace.for_data``)."""
    return get_space(name, **options).for_data(data_shape, num_classes, keep=options, task=task)


def device_constraints(device: Any) -> list[str]:
    """The memory limits of a device profile as constraint strings (bytes at the run's precision)."""
    if device.kind == "mcu":
        return [f"peak_memory_bytes<={device.sram_bytes}B", f"weight_bytes<={device.flash_bytes}B"]
    return [f"weight_bytes<={device.ram_bytes}B"]


def prepare(cfg: SearchConfig, resume: bool = False, data: Any = None) -> Prepared:
    """Check the config and the run folder, then load the data; raise ``NasforgeError`` before anything is
    written (``resume``: the folder holds the search run to continue; ``data``: a ``Dataset`` given from Python,
    e.g. ``load_dataset((x, y))``, used instead of ``cfg.dataset``)."""
    from nasforge.estimators import TrainingEstimator
    from nasforge.hardware import get_device
    from nasforge.jobs._owndata import job_data, job_info
    from nasforge.runner import Constraints
    from nasforge.runner._constraints import check_satisfiable

    cfg.validate()
    out = check_run_dir(cfg.out or cfg.default_out(), SearchConfig.JOB, resume=resume)
    device = get_device(cfg.device) if cfg.device else None
    dense = None
    if cfg.task != "classification":
        if data is not None:
            raise NasforgeError(f"data given from Python is one class per image; task {cfg.task!r} reads masks or "
                                "boxes from --dataset multiscale, coco or masks")
        _dense.check_space_serves(cfg.space, cfg.space_options, cfg.task)  # before reading the data
        dense = _dense.load_data(cfg)  # boxes or masks: read before the space is fitted to them
    info: Any = job_info(cfg, data) if dense is None else dense
    opts = space_options(cfg, min(info.input_shape[1:]))
    space = fitted_space(cfg.space, opts, info.input_shape, info.num_classes, cfg.task)
    cons = [*(device_constraints(device) if device else []), *cfg.constraints]
    latency_fn = None
    if cfg.latency_model:
        from nasforge.hardware import load_latency_model

        if not Path(cfg.latency_model).is_file():
            raise NasforgeError(f"latency model {cfg.latency_model} does not exist "
                                "(expected a LUT .json/.yaml or a predictor .json)")
        latency_fn = load_latency_model(cfg.latency_model, space)
    elif any(c.strip().startswith("latency") for c in cons):
        raise NasforgeError("a latency constraint needs --latency-model FILE (build one with `nasforge latency build` "
                            "or `nasforge latency fit --save`)")
    parsed = Constraints.of(cons, cfg.precision, None, latency_fn)
    check_satisfiable(space, parsed, samples=500, seed=cfg.seed)
    if dense is not None:
        return Prepared(cfg, space, opts, cons, device, dense, _dense.estimator(space, dense, cfg), out, latency_fn)
    dataset, full = job_data(cfg, space, info, data)
    est = TrainingEstimator(space, dataset, epochs=cfg.epochs, batch_size=cfg.batch_size, optimizer=cfg.optimizer,
                            lr=cfg.lr, seed=cfg.seed, cost_precision=cfg.precision, channels_last=True)
    return Prepared(cfg, space, opts, cons, device, dataset, est, out, latency_fn, full)


Progress = Callable[..., None]


def run_job(options: SearchConfig | Mapping[str, Any], progress: Progress | None = None, resume: bool = False,
            status: Callable[[str], None] | None = None, data: Any = None,
            train_progress: Callable[[int, int, int, int], None] | None = None) -> dict[str, Any]:
    """Search, then train the best once more (test accuracy), export it (fp32 and int8), plot and write the report.

    ``progress`` sees each trial, ``train_progress`` each batch of the final training (epoch, epochs, step,
    steps), ``status`` a line at the start of each step (loading the data, final training, report).

    ``options`` holds the options given (see ``SearchConfig.given``): a new run takes ``SearchConfig``'s defaults
    for the others, ``resume=True`` the stored run's (so resuming without ``budget`` keeps the run's budget).
    ``data``: a ``Dataset`` from Python (``nasforge.data.load_dataset((x, y))`` or of a torch ``Dataset``) to
    search on instead of ``dataset``/``data_dir``.
    """
    from nasforge.jobs._owndata import with_data

    say = status or (lambda _msg: None)
    given = with_data(SearchConfig.given(options), data)
    if given.get("minimize") and "strategy" not in given and not resume:
        given = {**given, "strategy": DEFAULT_MO_STRATEGY}  # several objectives: a multi-objective default
    cfg = _resumed(given) if resume else SearchConfig.new(given)
    out = cfg.out or str(cfg.default_out())
    check_run_dir(out, SearchConfig.JOB, resume=resume)  # before anything is written, and again locked
    with hold_run_dir(out), on_interrupt(f"the run is kept in {out}: continue it with "
                                         f"`nasforge search --out {out} --resume`"):
        clean_temporaries(out)  # what a killed run left half-written (a .best.* folder, a temp file)
        return _run_job(replace(cfg, out=out), progress, resume, say, data, train_progress)


def _run_job(cfg: SearchConfig, progress: Progress | None, resume: bool, say: Callable[[str], None],
             data: Any = None, train_progress: Callable[[int, int, int, int], None] | None = None
             ) -> dict[str, Any]:
    from nasforge.runner import run_search

    say("loading the data")
    prep = prepare(cfg, resume=resume, data=data)
    result = run_search(prep.space, prep.config.strategy, prep.estimator, prep.config.budget,
                        prep.constraints, seed=prep.config.seed, out_dir=prep.out_dir,
                        workers=prep.config.workers, resume=resume, progress=progress,
                        **prep.config.backend_options(),
                        precision=prep.config.precision, objective="macs", latency_fn=prep.latency_fn,
                        objectives=prep.config.minimize or None,
                        strategy_options=prep.config.strategy_options or None,
                        trial_timeout=prep.config.trial_timeout,
                        config={"job": SearchConfig.JOB,
                                "options": {**prep.config.to_dict(), "space_options": prep.space_options}})
    summary: dict[str, Any] = {"run_dir": str(prep.out_dir), "trials": len(result.trials),
                               "data": prep.dataset.summary()}
    if result.front is not None:
        from nasforge.report._front import front_rows

        summary["objectives"] = result.front["objectives"]
        summary["front"] = front_rows(result.front, [t.to_dict() for t in result.trials])
        summary["hypervolume"] = (result.front["hypervolume"] or [0.0])[-1]
    if result.best is None:
        summary["best"] = None
    else:
        say(f"training the best architecture for {prep.config.final_epochs} epochs")
        summary["best"] = finalize(prep, result.best.arch, train_progress)
    say("writing plots and report")
    write_report(prep.out_dir)
    summary["report"] = str(prep.out_dir / "report.html")
    return summary


def stored_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """The search options recorded in a run store's config (also of runs written before the ``job`` key)."""
    extra = config.get("extra") or {}
    job = extra.get("job")
    return dict(job if isinstance(job, dict) else extra.get("options") or {})


def _resumed(given: Mapping[str, Any]) -> SearchConfig:
    """The stored run's config with the given options that may change on resume; a conflicting one is an error."""
    from nasforge.runner import RunStore

    out = given.get("out")
    if not out:
        raise NasforgeError("--resume needs --out to name the search run to continue")
    check_run_dir(out, SearchConfig.JOB, resume=True)
    with RunStore.open(out) as store:
        run = store.config
    stored = stored_options(run)
    # the runner records the budget and workers of the latest resume at the top level of the run's config
    stored.update({k: run[k] for k in ("budget", "workers") if k in run})
    return SearchConfig.resumed(stored, given, out)


def finalize(prep: Prepared, arch_text: str,
             train_progress: Callable[[int, int, int, int], None] | None = None) -> dict[str, Any]:
    """Train the best architecture for ``final_epochs``; write ``best/`` atomically; return its summary (with
    ``curve``: training loss and validation accuracy per epoch, the report's learning curve)."""
    import torch

    from nasforge.cost import profile
    from nasforge.estimators import TrainingEstimator
    from nasforge.jobs._export import export_onnx
    from nasforge.jobs._owndata import deploy_int8, final_data, preprocessing

    if prep.config.task != "classification":
        return _dense.finalize(prep, arch_text)
    space, cfg = prep.space, prep.config
    arch = space.parse(arch_text)
    data = final_data(cfg, space, prep.dataset, prep.full_data)  # the search may have run on a subset
    est = TrainingEstimator(space, data, epochs=cfg.final_epochs, batch_size=cfg.batch_size, optimizer=cfg.optimizer,
                            lr=cfg.lr, seed=cfg.seed, cost_precision=cfg.precision, channels_last=True)
    curve: list[dict[str, float]] = []
    res, model = est.final_evaluate(arch, on_step=train_progress,
                                    on_epoch=lambda epoch, figures: curve.append({"epoch": epoch, **figures}))
    cost = space.cost(arch, precision=cfg.precision)
    shape = tuple(space.input_shape(arch))
    layers = profile(space.build(arch, num_classes=prep.dataset.num_classes), shape, precision=cfg.precision)
    summary: dict[str, Any] = {
        "space": space.name, "arch": str(arch), "status": res.status, "error": res.error,
        "val_acc": res.metrics.get("val_acc"), "test_acc": res.metrics.get("test_acc"),
        "final_epochs": cfg.final_epochs, "train_seconds": round(res.seconds, 2),
        "train_images": len(data.train.x), "input_shape": list(shape), "num_classes": data.num_classes,
        "cost": {k: v for k, v in cost.to_dict(layers=False).items() if k not in ("unknown_ops",)},
        "layers": layers.to_dict()["layers"],
        "fits": prep.device.fits(cost) if prep.device is not None else None,
        "data": data.summary(),
        "preprocessing": preprocessing(data, shape).to_dict(),
        "curve": [{**row, "seconds": round(row["seconds"], 3)} for row in curve],
    }
    with atomic_dir(prep.out_dir / BEST_DIR) as tmp:
        if model is not None:
            torch.save({"state_dict": model.state_dict(), "arch": str(arch), "space": space.name,
                        "space_options": prep.space_options, "input_shape": list(shape),
                        "data_shape": list(prep.dataset.input_shape),
                        "num_classes": prep.dataset.num_classes,
                        "preprocessing": summary["preprocessing"]}, tmp / "model.pt")
            summary["onnx_max_abs_diff"] = export_onnx(model, shape, tmp / "model.onnx", check=True, atol=1e-4)
            summary["int8"] = deploy_int8(tmp, data, shape, space.cost(arch, precision="int8"), prep.device,
                                          summary["preprocessing"], cfg.seed)
        (tmp / SUMMARY).write_text(json.dumps(summary, indent=2, default=str))
    return {k: v for k, v in summary.items() if k != "layers"}


def load_best(run_dir: str | Path) -> tuple[Any, tuple[int, ...]]:
    """The trained best model of a finished search run (eval mode) and its input shape (C, H, W)."""
    import torch

    ckpt_path = Path(run_dir) / BEST_DIR / "model.pt"
    if not ckpt_path.is_file():
        raise NasforgeError(f"{ckpt_path} does not exist: is {run_dir} a finished `nasforge search` run?")
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    if "data_shape" in ckpt:
        space = fitted_space(ckpt["space"], ckpt["space_options"], ckpt["data_shape"], ckpt["num_classes"],
                             ckpt.get("task", "classification"))
    else:  # written before for_data: the options were the resolved ones
        space = get_space(ckpt["space"], **ckpt["space_options"])
    model = space.build(space.parse(ckpt["arch"]), num_classes=ckpt["num_classes"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), tuple(ckpt["input_shape"])


def ckpt_task(run_dir: str | Path) -> str:
    """The task a finished run's best model was trained for (classification for runs before tasks)."""
    import torch

    ckpt = torch.load(Path(run_dir) / BEST_DIR / "model.pt", map_location="cpu", weights_only=True)
    return str(ckpt.get("task", "classification"))


def export_run(run_dir: str | Path, fmt: str, out: str | Path | None = None, data: Any = None) -> Path:
    """Re-export the best model of a run: ``onnx`` (checked with onnxruntime, preprocessing in its metadata),
    ``onnx-int8`` (static int8 quantization calibrated on the run's training images, measured on its test split;
    ``data``: the run's ``Dataset`` when it was given from Python) or ``torchscript``."""
    from nasforge.jobs._export import FORMATS, export_onnx, export_torchscript
    from nasforge.jobs._quantize import set_metadata

    formats = (*FORMATS, "onnx-int8")
    if fmt not in formats:
        raise NasforgeError(f"unknown export format {fmt!r}; allowed: {', '.join(formats)}")
    model, shape = load_best(run_dir)
    best = Path(run_dir) / BEST_DIR
    # into the run's best/: hold the run's lock (a search still running may be replacing best/)
    with hold_run_dir(run_dir) if out is None else contextlib.nullcontext(Path(run_dir)):
        task = ckpt_task(run_dir) if fmt.startswith("onnx") else "classification"  # torchscript serves every task
        if fmt == "onnx-int8":
            if task != "classification":
                raise NasforgeError(f"onnx-int8 export is for classification runs; {run_dir} is a {task} run "
                                    "(export it as onnx)")
            return _export_int8(Path(run_dir), model, shape, out, data)
        if fmt == "onnx":
            path = Path(out) if out else best / "model.onnx"
            if task != "classification":
                _dense.export_dense_onnx(model, shape, path)
                return path
            export_onnx(model, shape, path, check=True)
            meta = (json.loads((best / SUMMARY).read_text()).get("preprocessing") if (best / SUMMARY).is_file()
                    else None)
            if meta:  # runs written before the preprocessing metadata have none to stamp
                set_metadata(path, meta)
            return path
        path = Path(out) if out else best / "model.torchscript.pt"
        return export_torchscript(model, shape, path)


def _export_int8(run: Path, model: Any, shape: tuple[int, ...], out: str | Path | None, data: Any) -> Path:
    """``best/model.int8.onnx`` (or ``out``) of a finished run, and its figures in ``best/summary.json``."""
    import tempfile

    from nasforge.hardware import get_device
    from nasforge.jobs._export import export_onnx
    from nasforge.jobs._owndata import deploy_int8, final_data, job_info, preprocessing
    from nasforge.runner import RunStore

    with RunStore.open(run) as store:
        stored = stored_options(store.config)
    cfg = SearchConfig(**{k: v for k, v in stored.items() if k in SearchConfig.names()})
    if data is None and cfg.dataset == "arrays":
        raise NasforgeError(f"{run} was searched on data given from Python; quantize it from Python: "
                            "export_run(run, 'onnx-int8', data=load_dataset(...))")
    info = job_info(cfg, data)
    space = fitted_space(cfg.space, cfg.space_options, info.input_shape, info.num_classes)
    ds = data if data is not None else final_data(cfg, space, _load(cfg, space, info), None)
    summary_path = run / BEST_DIR / SUMMARY
    summary = json.loads(summary_path.read_text())
    arch = space.parse(summary["arch"])
    device = get_device(cfg.device) if cfg.device else None
    with tempfile.TemporaryDirectory(prefix="nasforge-export-") as d:
        folder = Path(d)
        export_onnx(model, shape, folder / "model.onnx", check=True)
        if not summary.get("preprocessing"):  # a run written before the metadata: the data says it
            summary["preprocessing"] = preprocessing(ds, shape).to_dict()
        rep = deploy_int8(folder, ds, shape, space.cost(arch, precision="int8"), device, summary["preprocessing"],
                          cfg.seed)
        if "error" in rep:
            raise NasforgeError(rep["error"])
        path = Path(out) if out else run / BEST_DIR / "model.int8.onnx"
        write_atomic(path, (folder / "model.int8.onnx").read_bytes())
    if out is None:  # the run's own int8 model: its figures (and the preprocessing) go into the summary
        summary["int8"] = rep
        write_atomic(summary_path, json.dumps(summary, indent=2, default=str))
    return path


def _load(cfg: SearchConfig, space: SearchSpace, info: Any) -> Any:
    from nasforge.data import load_dataset
    from nasforge.jobs._owndata import load_size

    return load_dataset(cfg.dataset, data_dir=cfg.data_dir, split_seed=cfg.seed,
                        resize=load_size(cfg, space, info))
