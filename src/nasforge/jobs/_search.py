"""The main job: a hardware-aware search end to end, and the files of its run directory.

``JobConfig`` holds every knob (flags and ``--config`` YAML map onto its fields). ``run_job`` takes the options
that were given: a new run fills the others with ``JobConfig``'s defaults, a resumed run with the stored run's
values (only ``RESUME_MAY_CHANGE`` may differ from them). It validates
everything before it touches the disk (unknown names, malformed constraints, a device no architecture of the
space can meet), runs the search, trains the best candidate once more for its test accuracy, and writes
``best/`` (``model.pt``, ``model.onnx`` checked with onnxruntime, ``summary.json``), ``pareto.png``,
``history.png`` and ``report.html`` next to the run store.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nasforge.errors import NasforgeError
from nasforge.report import BEST_DIR, SUMMARY, write_report
from nasforge.spaces import SearchSpace, get_space

#: Space options the job uses when the user gives none: a small MobileNetV2-style space for 8x8..32x32 images
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


@dataclass
class JobConfig:
    """Everything a search run needs; defaults are the main job (digits, stm32f746, evolution)."""

    space: str = "mobilenet"
    space_options: dict[str, Any] = field(default_factory=dict)
    strategy: str = "evolution"
    strategy_options: dict[str, Any] = field(default_factory=dict)
    estimator: str = "train"
    dataset: str = "digits"
    data_dir: str | None = None
    subset: int | None = None
    device: str | None = "stm32f746"
    precision: str = "int8"
    constraints: list[str] = field(default_factory=list)
    latency_model: str | None = None
    budget: int = 20
    epochs: int = 3
    final_epochs: int = 10
    batch_size: int = 64
    lr: float | None = None
    optimizer: str = "sgd"
    seed: int = 0
    workers: int = 1
    out: str | None = None

    def __post_init__(self) -> None:
        from nasforge.runner import canonical_constraints

        self.constraints = canonical_constraints(self.constraints)  # stored and printed in canonical keys

    @staticmethod
    def from_yaml(path: str | Path) -> dict[str, Any]:
        """The mapping of a config file, checked against the known keys (one clear line if not)."""
        p = Path(path)
        if not p.is_file():
            raise NasforgeError(f"config file {p} does not exist")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise NasforgeError(f"config file {p} is not valid YAML: {str(e).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise NasforgeError(f"config file {p} must hold a mapping of options, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(JobConfig)}
        for k in data:
            if k not in known:
                raise NasforgeError(f"config file {p}: unknown key {k!r}; allowed: {', '.join(sorted(known))}")
        return data

    @staticmethod
    def given(options: JobConfig | Mapping[str, Any]) -> dict[str, Any]:
        """The options that were given: a mapping's keys (checked against the fields), or the fields of a
        ``JobConfig`` that differ from the defaults (pass a mapping to give a default value explicitly)."""
        if isinstance(options, JobConfig):
            default = JobConfig()
            return {f.name: getattr(options, f.name) for f in dataclasses.fields(JobConfig)
                    if getattr(options, f.name) != getattr(default, f.name)}
        known = {f.name for f in dataclasses.fields(JobConfig)}
        for k in options:
            if k not in known:
                raise NasforgeError(f"unknown search option {k!r}; allowed: {', '.join(sorted(known))}")
        return dict(options)

    def merged(self, changes: Mapping[str, Any]) -> JobConfig:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Prepared:
    """What ``prepare`` resolved: the objects of a validated config, nothing written yet."""

    config: JobConfig
    space: SearchSpace
    space_options: dict[str, Any]
    constraints: list[str]
    device: Any
    dataset: Any
    estimator: Any
    out_dir: Path
    latency_fn: Callable[[Any], float] | None = None


def default_resolutions(native: int) -> list[int]:
    """Input resolutions for the small default space: the two multiples of 8 that bracket the data's own size
    (28 -> 24, 32), at least 16 and 24 (the network's total stride is 8)."""
    hi = max(24, -(-native // 8) * 8)
    return [hi - 8, hi]


def _space_options(cfg: JobConfig, channels: int, num_classes: int, native: int) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if cfg.space == "mobilenet" and not cfg.space_options:
        opts = {**SMALL_MOBILENET, "resolutions": default_resolutions(native)}
    opts.update(cfg.space_options)
    if cfg.space in ("mobilenet", "config"):
        opts.setdefault("in_channels", channels)
    if cfg.space != "config":
        opts.setdefault("num_classes", num_classes)
    return opts


def device_constraints(device: Any) -> list[str]:
    """The memory limits of a device profile as constraint strings (bytes at the run's precision)."""
    if device.kind == "mcu":
        return [f"peak_memory_bytes<={device.sram_bytes}B", f"weight_bytes<={device.flash_bytes}B"]
    return [f"weight_bytes<={device.ram_bytes}B"]


def prepare(cfg: JobConfig) -> Prepared:
    """Validate every name and number and load the data; raise ``NasforgeError`` before anything is written."""
    from nasforge.data import dataset_info, list_datasets, load_dataset
    from nasforge.estimators import TrainingEstimator
    from nasforge.hardware import get_device
    from nasforge.runner import Constraints, check_new_run_dir, check_satisfiable
    from nasforge.strategies import list_strategies

    if cfg.dataset not in list_datasets():
        raise NasforgeError(f"unknown dataset {cfg.dataset!r}; known: {', '.join(list_datasets())}")
    if cfg.strategy not in list_strategies():
        raise NasforgeError(f"unknown strategy {cfg.strategy!r}; known: {', '.join(list_strategies())}")
    if cfg.estimator != "train":
        raise NasforgeError(f"unknown estimator {cfg.estimator!r} for a search on a dataset; allowed: train "
                            "(tabular benchmarks run with `nasforge benchmark`)")
    for name in ("budget", "epochs", "final_epochs", "batch_size", "workers"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise NasforgeError(f"{name} must be a positive integer, got {v!r}")
    device = get_device(cfg.device) if cfg.device else None
    info = dataset_info(cfg.dataset)
    opts = _space_options(cfg, info.input_shape[0], info.num_classes, min(info.input_shape[1:]))
    space = get_space(cfg.space, **opts)
    cons = [*(device_constraints(device) if device else []), *cfg.constraints]
    latency_fn = None
    if cfg.latency_model:
        from nasforge.hardware import load_latency_model

        if not Path(cfg.latency_model).is_file():
            raise NasforgeError(f"latency model {cfg.latency_model} does not exist "
                                "(expected a LUT .json/.yaml or a predictor .pkl)")
        latency_fn = load_latency_model(cfg.latency_model, space)
    elif any(c.strip().startswith("latency") for c in cons):
        raise NasforgeError("a latency constraint needs --latency-model FILE (build one with `nasforge latency build` "
                            "or `nasforge latency fit --save`)")
    parsed = Constraints.of(cons, cfg.precision, None, latency_fn)
    check_satisfiable(space, parsed, samples=500, seed=cfg.seed)
    out = check_new_run_dir(cfg.out or Path("runs") / time.strftime("search-%Y%m%d-%H%M%S"))
    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir, split_seed=cfg.seed, subset=cfg.subset)
    est = TrainingEstimator(space, dataset, epochs=cfg.epochs, batch_size=cfg.batch_size, optimizer=cfg.optimizer,
                            lr=cfg.lr, seed=cfg.seed, cost_precision=cfg.precision, channels_last=True)
    return Prepared(cfg, space, opts, cons, device, dataset, est, out, latency_fn)


Progress = Callable[..., None]


def run_job(cfg: JobConfig | Mapping[str, Any], progress: Progress | None = None, resume: bool = False,
            status: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Search, then train the best once more (test accuracy), export it, plot and write the report.

    ``cfg`` holds the options given (see ``JobConfig.given``): a new run takes ``JobConfig``'s defaults for the
    others, ``resume=True`` the stored run's, so resuming without ``budget`` keeps the run's budget.
    """
    from nasforge.runner import run_search

    say = status or (lambda _msg: None)
    if resume:
        prep = _prepare_resume(JobConfig.given(cfg))
    else:
        prep = prepare(cfg if isinstance(cfg, JobConfig) else JobConfig(**JobConfig.given(cfg)))
    result = run_search(prep.space, prep.config.strategy, prep.estimator, prep.config.budget,
                        prep.constraints, seed=prep.config.seed, out_dir=prep.out_dir,
                        workers=prep.config.workers, resume=resume, progress=progress,
                        precision=prep.config.precision, objective="macs", latency_fn=prep.latency_fn,
                        strategy_options=prep.config.strategy_options or None,
                        config={"job": {**prep.config.to_dict(), "space_options": prep.space_options}})
    summary: dict[str, Any] = {"run_dir": str(prep.out_dir), "trials": len(result.trials)}
    if result.best is None:
        summary["best"] = None
    else:
        say(f"training the best architecture for {prep.config.final_epochs} epochs")
        summary["best"] = finalize(prep, result.best.arch)
    say("writing plots and report")
    write_report(prep.out_dir)
    summary["report"] = str(prep.out_dir / "report.html")
    return summary


#: Options a resumed run may change: the number of evaluations, how many run in parallel (the trials do not depend
#: on it) and the final training of the best (after the search). Any other option given must equal the stored one.
RESUME_MAY_CHANGE = ("budget", "workers", "final_epochs")


def _prepare_resume(given: Mapping[str, Any]) -> Prepared:
    """The stored run's config with the given options that may change on resume; a conflicting one is an error."""
    from nasforge.runner import RunStore, is_run_dir

    out = given.get("out")
    if not out or not is_run_dir(out):
        raise NasforgeError(f"--resume needs --out to name an existing nasforge run, got {out!r}")
    with RunStore.open(out) as store:
        run = store.config
    job = dict((run.get("extra") or {}).get("job") or {})
    if not job:
        raise NasforgeError(f"{out} was not written by `nasforge search`; cannot resume it here")
    known = {f.name for f in dataclasses.fields(JobConfig)}
    old = JobConfig(**{k: v for k, v in job.items() if k in known})
    # the runner records the budget and workers of the latest resume at the top level of the run's config
    old = dataclasses.replace(old, budget=run.get("budget", old.budget), workers=run.get("workers", old.workers))
    for key, value in given.items():
        if key == "out" or key in RESUME_MAY_CHANGE:
            continue
        stored = getattr(old, key)
        if key in ("space_options", "strategy_options") and isinstance(value, dict) and isinstance(stored, dict):
            same = all(k in stored and stored[k] == v for k, v in value.items())  # stored holds resolved options
        elif key == "constraints":
            from nasforge.runner import canonical_constraints

            same = stored == canonical_constraints(value)
        else:
            same = stored == value
        if not same:
            raise NasforgeError(f"cannot resume {out}: {key} was {stored!r}, now {value!r}; on resume only "
                                f"{', '.join(RESUME_MAY_CHANGE)} may change")
    new = dataclasses.replace(old, **{k: given[k] for k in RESUME_MAY_CHANGE if k in given})
    prep = prepare(dataclasses.replace(new, out=None))
    prep.config = new
    prep.out_dir = Path(out)
    return prep


def finalize(prep: Prepared, arch_text: str) -> dict[str, Any]:
    """Train the best architecture for ``final_epochs``; write ``best/`` atomically; return its summary."""
    import torch

    from nasforge.cost import profile
    from nasforge.data import load_dataset
    from nasforge.estimators import TrainingEstimator
    from nasforge.jobs._export import export_onnx

    space, cfg = prep.space, prep.config
    arch = space.parse(arch_text)
    data = prep.dataset
    if cfg.subset is not None:  # the search ran on a subset; the final pick trains on the whole training split
        data = load_dataset(cfg.dataset, data_dir=cfg.data_dir, split_seed=cfg.seed)
    est = TrainingEstimator(space, data, epochs=cfg.final_epochs, batch_size=cfg.batch_size, optimizer=cfg.optimizer,
                            lr=cfg.lr, seed=cfg.seed, cost_precision=cfg.precision, channels_last=True)
    res, model = est.final_evaluate(arch)
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
    }
    tmp = Path(tempfile.mkdtemp(prefix=".best.", dir=prep.out_dir))
    try:
        if model is not None:
            torch.save({"state_dict": model.state_dict(), "arch": str(arch), "space": space.name,
                        "space_options": prep.space_options, "input_shape": list(shape),
                        "num_classes": prep.dataset.num_classes}, tmp / "model.pt")
            summary["onnx_max_abs_diff"] = export_onnx(model, shape, tmp / "model.onnx", check=True, atol=1e-4)
        (tmp / SUMMARY).write_text(json.dumps(summary, indent=2, default=str))
        final = prep.out_dir / BEST_DIR
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {k: v for k, v in summary.items() if k != "layers"}


def export_run(run_dir: str | Path, fmt: str, out: str | Path | None = None) -> Path:
    """Re-export the best model of a run (``onnx`` checked with onnxruntime, or ``torchscript``)."""
    import torch

    from nasforge.jobs._export import FORMATS, export_onnx, export_torchscript

    if fmt not in FORMATS:
        raise NasforgeError(f"unknown export format {fmt!r}; allowed: {', '.join(FORMATS)}")
    ckpt_path = Path(run_dir) / BEST_DIR / "model.pt"
    if not ckpt_path.is_file():
        raise NasforgeError(f"{ckpt_path} does not exist: is {run_dir} a finished `nasforge search` run?")
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    space = get_space(ckpt["space"], **ckpt["space_options"])
    arch = space.parse(ckpt["arch"])
    model = space.build(arch, num_classes=ckpt["num_classes"])
    model.load_state_dict(ckpt["state_dict"])
    shape = tuple(ckpt["input_shape"])
    if fmt == "onnx":
        path = Path(out) if out else ckpt_path.with_name("model.onnx")
        export_onnx(model, shape, path, check=True)
        return path
    path = Path(out) if out else ckpt_path.with_name("model.torchscript.pt")
    return export_torchscript(model, shape, path)
