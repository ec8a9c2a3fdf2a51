"""``nasforge oneshot darts|proxyless|spos``: train a supernet once and write the derived architecture's run dir."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nasforge.cli._app import app
from nasforge.cli._options import parse_options, progress_bar, stderr_console

if TYPE_CHECKING:
    from rich.console import Console


@app.command("oneshot")
def oneshot(
    method: Annotated[str, typer.Argument(help="darts | proxyless | spos")],
    space: Annotated[str | None, typer.Option(help="search space: nb201 | darts | mobilenet | config",
                                              show_default="nb201")] = None,
    space_option: Annotated[list[str] | None, typer.Option("--space-option", "-o", help="space option k=v",
                                                           show_default="the space's")] = None,
    supernet_option: Annotated[list[str] | None, typer.Option(
        help="supernet option k=v (mobilenet: resolution, width)",
        show_default="the supernet's")] = None,
    dataset: Annotated[str | None, typer.Option(
        help="digits | fashion-mnist | cifar10 | imagefolder | npz", show_default="digits")] = None,
    data_dir: Annotated[str | None, typer.Option(
        help="folder of the dataset's files (imagefolder: one sub-folder per class; npz: the .npz file)",
        show_default="the dataset's usual place")] = None,
    subset: Annotated[int | None, typer.Option(help="cap the training split at N images",
                                               show_default="all")] = None,
    val_subset: Annotated[int | None, typer.Option(
        help="cap the validation split at N images (alpha steps, DARTS-PT selection, scoring)",
        show_default="all")] = None,
    epochs: Annotated[int | None, typer.Option(help="supernet training epochs",
                                               show_default="10")] = None,
    batch_size: Annotated[int | None, typer.Option(show_default="the dataset's")] = None,
    lr: Annotated[float | None, typer.Option(help="weight learning rate",
                                             show_default="the dataset's")] = None,
    arch_lr: Annotated[float | None, typer.Option(
        help="darts/proxyless: architecture (alpha) learning rate",
        show_default="darts: sized to the run's steps; proxyless: its own")] = None,
    temperature_end: Annotated[float | None, typer.Option(
        help="darts: final softmax temperature of the mixed op, annealed from 1",
        show_default="the dataset's")] = None,
    threads: Annotated[int | None, typer.Option(
        help="torch intra-op threads while training",
        show_default="the dataset's; digits 1")] = None,
    retrain_epochs: Annotated[int | None, typer.Option(
        help="train the derived architecture alone this many epochs and report retrain_val_acc",
        show_default="0")] = None,
    seed: Annotated[int | None, typer.Option(show_default="0")] = None,
    order: Annotated[int | None, typer.Option(help="darts: 1 (first order) or 2 (finite-difference second order)",
                                              show_default="1")
                     ] = None,
    max_skip: Annotated[int | None, typer.Option(
        help="darts: stop early once the derived arch has more skip connections (DARTS+)",
        show_default="no limit")] = None,
    warmup_epochs: Annotated[int | None, typer.Option(help="darts/proxyless: weight-only epochs before alpha moves",
                                                      show_default="0")
                             ] = None,
    beta_decay: Annotated[float | None, typer.Option(help="darts: beta-DARTS regularisation strength (0 = off)",
                                                     show_default="0.0")
                          ] = None,
    selection: Annotated[str | None, typer.Option(
        help="darts: derive by alpha argmax or pt (DARTS-PT perturbation selection)",
        show_default="alpha")] = None,
    latency_target: Annotated[float | None, typer.Option(help="proxyless: latency target in ms",
                                                         show_default="none")] = None,
    latency_model: Annotated[Path | None, typer.Option(
        help="proxyless: latency lookup table file (JSON/YAML, nasforge or OFA format)",
        show_default="measured on this host")] = None,
    beta: Annotated[float | None, typer.Option(help="proxyless: exponent of (E[lat]/target)",
                                               show_default="0.6")] = None,
    budget: Annotated[int | None, typer.Option(help="spos: architectures the search scores with inherited weights",
                                               show_default="20")
                      ] = None,
    strategy: Annotated[str | None, typer.Option(help="spos: search strategy",
                                                 show_default="evolution")] = None,
    constraint: Annotated[list[str] | None, typer.Option(help="spos: constraint, e.g. 'macs<=50e6'",
                                                         show_default="none")] = None,
    device_torch: Annotated[str | None, typer.Option("--device-torch", help="cpu | cuda",
                                                     show_default="cpu")] = None,
    out: Annotated[Path | None, typer.Option(help="run directory",
                                             show_default="runs/oneshot-<method>-<seed>")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file with any of these options",
                                                show_default="none")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """One-shot search: DARTS, ProxylessNAS (latency loss) or SPOS (weight-sharing search); writes a run dir."""
    from nasforge.jobs._oneshot import OneShotConfig, run_oneshot

    flags = {"method": method, "space": space, "space_options": parse_options(space_option, "--space-option") or None,
             "supernet_options": parse_options(supernet_option, "--supernet-option") or None, "dataset": dataset,
             "data_dir": data_dir, "subset": subset, "val_subset": val_subset, "epochs": epochs,
             "batch_size": batch_size, "lr": lr, "arch_lr": arch_lr, "temperature_end": temperature_end,
             "retrain_epochs": retrain_epochs, "threads": threads, "seed": seed, "order": order, "max_skip": max_skip,
             "warmup_epochs": warmup_epochs, "beta_decay": beta_decay, "selection": selection,
             "latency_target_ms": latency_target,
             "latency_model": None if latency_model is None else str(latency_model), "beta": beta, "budget": budget,
             "strategy": strategy, "constraints": list(constraint) if constraint else None, "device": device_torch,
             "out": None if out is None else str(out)}
    cfg = OneShotConfig.new(OneShotConfig.merge_given(config, flags))
    console = stderr_console(as_json)
    # under --json (or into a pipe) no live bar: a plain stderr line per epoch and at most one per 10 s within
    # an epoch, so a long run shows it is alive without flooding a log; status lines (and warnings) too
    plain = as_json or not console.is_terminal

    def status(message: str) -> None:
        if as_json:
            typer.echo(message, err=True)
        else:
            console.log(message)

    last = [0.0]
    with progress_bar(method, console) as bar:
        def progress(epoch: int, info: dict[str, float]) -> None:
            step, steps = int(info.get("step", 1)), int(info.get("steps", 1))
            text = "  ".join(f"{k} {v:.4g}" for k, v in info.items() if k not in ("step", "steps"))
            if not plain:
                bar.update(epoch - 1 + step / steps, cfg.epochs, f"step {step}/{steps}  {text}")
            elif step == steps or time.monotonic() - last[0] >= 10:
                last[0] = time.monotonic()
                typer.echo(f"{method} epoch {epoch}/{cfg.epochs} step {step}/{steps}  {text}", err=True)

        summary = run_oneshot(cfg, progress=progress, status=status)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    console.quiet = False
    _print(console, summary)


def _print(console: Console, s: dict[str, Any]) -> None:
    console.print(f"[bold]derived[/bold] {s['space']}:{s['arch']}")
    c = s["cost"]
    line = f"  MACs {c['macs']:,}  params {c['params']:,}  {s['epochs']} epochs in {s['seconds']:.1f} s"
    if "expected_latency" in s:
        line += f"  E[lat] {s['expected_latency']:.3f} ms  predicted {s['predicted_latency']:.3f} ms"
        if "measured_latency" in s:
            line += f"  measured {s['measured_latency']:.3f} ms"
    console.print(line)
    for key, what in (("supernet_val_acc", "supernet (mixed ops)"),
                      ("inherited_val_acc", "derived arch, inherited weights (BN recalibrated)"),
                      ("retrain_val_acc", "derived arch retrained alone")):
        if key in s:
            console.print(f"  val acc {s[key]:.3f} ({100 * s[key]:.1f} %): {what}")
    for w in s.get("warnings", []):
        console.print(f"  [yellow]warning[/yellow]: {w}")
    console.print(f"  peak memory of one step: {s['peak_memory_bytes']:,} B ({s['peak_memory_kind']})")
    console.print(f"run directory: {s['run_dir']}  report: {s['report']}")
