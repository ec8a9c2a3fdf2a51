"""``nasforge search`` (the main job), ``nasforge report RUN_DIR`` and ``nasforge export RUN_DIR``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from nasforge.cli._app import app
from nasforge.cli._options import parse_options, progress_bar, stderr_console


@app.command("search")
def search(
    space: Annotated[str | None, typer.Option(
        help="search space name", show_default="mobilenet; segmentation: lattice; detection: nasfpn")] = None,
    space_option: Annotated[list[str] | None, typer.Option("--space-option", "-o", help="space option k=v",
                                                           show_default="the space's; mobilenet: a small preset")
                            ] = None,
    strategy: Annotated[str | None, typer.Option(help="strategy", show_default="evolution")] = None,
    strategy_option: Annotated[list[str] | None, typer.Option(help="strategy option k=v",
                                                              show_default="the strategy's")] = None,
    estimator: Annotated[str | None, typer.Option(help="estimator: train", show_default="train")] = None,
    task: Annotated[str | None, typer.Option(help="classification | segmentation | detection",
                                             show_default="classification")] = None,
    dataset: Annotated[str | None, typer.Option(
        help="digits | fashion-mnist | cifar10 | imagefolder | npz; segmentation/detection: multiscale, "
             "multiscale-fashion, coco (detection), masks (segmentation)",
        show_default="digits; segmentation/detection: multiscale")] = None,
    data_dir: Annotated[str | None, typer.Option(
        help="folder of the dataset's files (imagefolder: one sub-folder per class; npz: the .npz file)",
        show_default="the dataset's usual place")] = None,
    dataset_option: Annotated[list[str] | None, typer.Option(
        help="dense dataset option k=v (multiscale: canvas, min_size, max_size, max_objects, counts=TRAIN,VAL,TEST; "
             "coco/masks: image_size)", show_default="the dataset's")] = None,
    subset: Annotated[int | None, typer.Option(help="cap the training split at N images",
                                               show_default="all")] = None,
    device: Annotated[str | None, typer.Option(
        help="device profile name or YAML file (none: no device limits)", show_default="stm32f746")] = None,
    precision: Annotated[str | None, typer.Option(help="precision of memory constraints: int8 | fp32",
                                                  show_default="int8")] = None,
    constraint: Annotated[list[str] | None, typer.Option(help="extra constraint, e.g. 'macs<=50e6'",
                                                         show_default="none: the device limits only")] = None,
    latency_model: Annotated[str | None, typer.Option(help="latency LUT (.json/.yaml) or predictor (.json) "
                                                           "for 'latency<=MS' constraints", show_default="none")
                             ] = None,
    minimize: Annotated[list[str] | None, typer.Option(
        help="an objective to minimise besides accuracy (repeatable): a cost key (macs, params, peak_memory, "
        "weights, ...) or latency (needs --latency-model); the search then finds the front "
        "(default strategy mo-surrogate)", show_default="none: accuracy only")] = None,
    budget: Annotated[int | None, typer.Option(help="architectures to train", show_default="20")] = None,
    epochs: Annotated[int | None, typer.Option(help="training epochs per candidate", show_default="3")] = None,
    final_epochs: Annotated[int | None, typer.Option(help="training epochs of the final pick",
                                                     show_default="10")] = None,
    batch_size: Annotated[int | None, typer.Option(show_default="64")] = None,
    lr: Annotated[float | None, typer.Option(help="learning rate", show_default="the optimizer's; sgd: 0.1")
                  ] = None,
    seed: Annotated[int | None, typer.Option(show_default="0")] = None,
    workers: Annotated[int | None, typer.Option(help="parallel evaluations", show_default="1")] = None,
    trial_timeout: Annotated[float | None, typer.Option(
        help="seconds one evaluation may take; a longer one is stopped, recorded failed", show_default="none")
                             ] = None,
    backend: Annotated[str | None, typer.Option(help="where evaluations run: local | ray", show_default="local")
                       ] = None,
    ray_address: Annotated[str | None, typer.Option(
        help="HOST:PORT of a running Ray cluster (`ray start --head`)", show_default="start a local Ray instance")
                           ] = None,
    trial_resources: Annotated[str | None, typer.Option(
        help="per trial: cpu=N (threads), gpu=N (Ray), memory=SIZE, e.g. cpu=1,gpu=0.5",
        show_default="none: the backend's default")] = None,
    in_flight: Annotated[int | None, typer.Option(
        help="evaluations asked ahead of the oldest result; the trials depend on it", show_default="workers")
                         ] = None,
    out: Annotated[str | None, typer.Option(help="run directory", show_default="runs/search-<time>")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file with any of these options", show_default="none")
                      ] = None,
    resume: Annotated[bool, typer.Option(help="continue the interrupted run in --out")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Hardware-aware search: find the most accurate network that fits the device (writes a run directory)."""
    from nasforge.jobs._search import SearchConfig, run_job

    # only the options given (flags over --config) are passed on: a new run fills the others with the defaults,
    # --resume with the stored run's values
    flags = {"space": space, "strategy": strategy, "estimator": estimator, "task": task, "dataset": dataset,
             "data_dir": data_dir, "subset": subset, "device": device, "precision": precision,
             "latency_model": latency_model,
             "budget": budget, "epochs": epochs, "final_epochs": final_epochs, "batch_size": batch_size, "lr": lr,
             "seed": seed, "workers": workers, "out": out, "trial_timeout": trial_timeout,
             "backend": backend, "ray_address": ray_address, "trial_resources": trial_resources,
             "in_flight": in_flight,
             "space_options": parse_options(space_option, "--space-option") or None,
             "dataset_options": parse_options(dataset_option, "--dataset-option") or None,
             "strategy_options": parse_options(strategy_option, "--strategy-option") or None,
             "constraints": list(constraint) if constraint else None,
             "minimize": list(minimize) if minimize else None}
    given = SearchConfig.merge_given(config, flags)
    console = stderr_console(as_json)
    with progress_bar("search", console) as bar:  # rows: loading the data, search, final training, report
        def progress(trial: Any, best: Any, done: int, total: int) -> None:
            # trial numbers are the store's (0-based); done/total counts trials
            bar.update(done, total, "" if best is None else f"best {best.reward:.4f} (trial #{best.number})",
                       label="search")

        def train_progress(epoch: int, epochs: int, step: int, steps: int) -> None:
            bar.update((epoch - 1) * steps + step, epochs * steps, f"epoch {epoch}/{epochs}")

        summary = run_job(given, progress=progress, resume=resume, status=bar.stage, train_progress=train_progress)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    best = summary.get("best")
    console.quiet = False
    if best and best.get("metric"):  # a dense task (segmentation, detection)
        console.print(f"[bold]best[/bold] {best['space']}:{best['arch']}")
        console.print(f"  val {best['metric_label']} {best['val_metric']:.4f}  test {best['test_metric']:.4f}  "
                      f"MACs {best['cost']['macs']:,}  params {best['cost']['params']:,}")
    elif best:
        fits = best.get("fits") or {}
        console.print(f"[bold]best[/bold] {best['space']}:{best['arch']}")
        console.print(f"  val acc {best['val_acc']:.4f}  test acc {best['test_acc']:.4f}  "
                      f"MACs {best['cost']['macs']:,}  params {best['cost']['params']:,}  "
                      f"peak {best['cost']['peak_memory_bytes']:,} B  weights {best['cost']['weight_bytes']:,} B "
                      f"({best['cost']['precision']})" + (f"  fits {fits.get('device')}: {fits.get('fits')}"
                                                          if fits else ""))
        _print_int8(console, best.get("int8") or {})
    else:
        console.print("no architecture was evaluated successfully")
    skipped = (summary.get("data") or {}).get("skipped_files")
    if skipped:
        console.print(f"{skipped} unreadable image file(s) skipped (named in the warnings above)")
    if summary.get("front") is not None:
        names = summary["objectives"]
        console.print(f"[bold]front[/bold] ({len(summary['front'])} trials, {', '.join(names)}; hypervolume "
                      f"{summary['hypervolume']:.4f}):")
        for row in summary["front"]:
            console.print(f"  #{row['number']:<4} " + "  ".join(f"{k} {row[k]:.4g}" for k in names)
                          + f"  {row['arch']}")
    console.print(f"run directory: {summary['run_dir']}  report: {summary['report']}")


def _print_int8(console: Any, int8: dict[str, Any]) -> None:
    """The int8 model's line of the summary: accuracy beside fp32, stored bytes, device verdict."""
    if "error" in int8:
        console.print(f"  int8: {int8['error']}")
        return
    if int8.get("test_acc") is None:
        return
    fits = int8.get("fits") or {}
    console.print(f"  int8 (best/model.int8.onnx): test acc {int8['test_acc']:.4f} (fp32 onnx "
                  f"{int8['test_acc_fp32_onnx']:.4f})  stored {int8['weight_bytes']:,} B (analytic int8 weights "
                  f"{int8['analytic_weight_bytes']:,} B)" + (f"  fits {fits.get('device')}: {fits.get('fits')}"
                                                            if fits else ""))
    if int8.get("drop_over_1_point"):
        console.print(f"  [bold red]int8 loses {100 * int8['accuracy_drop']:.1f} points of test accuracy[/]")


@app.command("report")
def report(run_dir: Annotated[Path, typer.Argument(help="a run directory")]) -> None:
    """Rebuild a run's plots and report.html from its store."""
    from nasforge.report import write_report

    with progress_bar("writing the report", stderr_console(False)) as bar:
        bar.stage("writing the report")
        path = write_report(run_dir)
    typer.echo(str(path))


@app.command("export")
def export(
    run_dir: Annotated[Path, typer.Argument(help="a finished search run directory")],
    fmt: Annotated[str, typer.Option("--format", help="onnx | onnx-int8 | torchscript")] = "onnx",
    out: Annotated[Path | None, typer.Option(help="output file", show_default="RUN_DIR/best/model.<format>")
                   ] = None,
) -> None:
    """Re-export the best model of a run (ONNX is checked against PyTorch with onnxruntime; onnx-int8 is
    quantized with calibration on the run's training images and measured on its test split)."""
    from nasforge.jobs._search import export_run

    typer.echo(str(export_run(run_dir, fmt, out)))
