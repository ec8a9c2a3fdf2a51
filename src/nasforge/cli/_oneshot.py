"""``nasforge oneshot darts|proxyless|spos``: train a supernet once and write the derived architecture's run dir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nasforge.cli._app import app
from nasforge.cli._search import parse_options


@app.command("oneshot")
def oneshot(
    method: Annotated[str, typer.Argument(help="darts | proxyless | spos")],
    space: Annotated[str, typer.Option(help="search space: nb201 | darts | mobilenet | config")] = "nb201",
    space_option: Annotated[list[str] | None, typer.Option("--space-option", "-o", help="space option k=v")] = None,
    supernet_option: Annotated[list[str] | None, typer.Option(
        help="supernet option k=v (mobilenet: resolution, width)")] = None,
    dataset: Annotated[str, typer.Option(help="digits | fashion-mnist | cifar10")] = "digits",
    data_dir: Annotated[str | None, typer.Option(help="folder of the dataset's files")] = None,
    subset: Annotated[int | None, typer.Option(help="cap the training split at N images")] = None,
    val_subset: Annotated[int | None, typer.Option(
        help="cap the validation split at N images (alpha steps, DARTS-PT selection, scoring)")] = None,
    epochs: Annotated[int, typer.Option(help="supernet training epochs")] = 10,
    batch_size: Annotated[int, typer.Option()] = 64,
    lr: Annotated[float | None, typer.Option(help="weight learning rate (method default)")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    order: Annotated[int, typer.Option(help="darts: 1 (first order) or 2 (finite-difference second order)")] = 1,
    max_skip: Annotated[int | None, typer.Option(
        help="darts: stop early once the derived arch has more skip connections (DARTS+)")] = None,
    warmup_epochs: Annotated[int, typer.Option(help="darts/proxyless: weight-only epochs before alpha moves")] = 0,
    beta_decay: Annotated[float, typer.Option(help="darts: beta-DARTS regularisation strength (0 = off)")] = 0.0,
    selection: Annotated[str, typer.Option(
        help="darts: derive by alpha argmax or pt (DARTS-PT perturbation selection)")] = "alpha",
    latency_target: Annotated[float | None, typer.Option(help="proxyless: latency target in ms")] = None,
    latency_model: Annotated[Path | None, typer.Option(
        help="proxyless: latency lookup table file (JSON/YAML, nasforge or OFA format); default host-measured")] = None,
    beta: Annotated[float, typer.Option(help="proxyless: exponent of (E[lat]/target)")] = 0.6,
    budget: Annotated[int, typer.Option(help="spos: architectures the search scores with inherited weights")] = 20,
    strategy: Annotated[str, typer.Option(help="spos: search strategy")] = "evolution",
    constraint: Annotated[list[str] | None, typer.Option(help="spos: constraint, e.g. 'macs<=50e6'")] = None,
    device_torch: Annotated[str, typer.Option("--device-torch", help="cpu | cuda")] = "cpu",
    out: Annotated[Path | None, typer.Option(help="run directory (default runs/oneshot-<method>-<seed>)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """One-shot search: DARTS, ProxylessNAS (latency loss) or SPOS (weight-sharing search); writes a run dir."""
    from nasforge.jobs._oneshot import OneShotConfig, run_oneshot

    cfg = OneShotConfig(
        method=method, space=space, space_options=parse_options(space_option, "--space-option"),
        supernet_options=parse_options(supernet_option, "--supernet-option"), dataset=dataset, data_dir=data_dir,
        subset=subset, val_subset=val_subset, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, order=order,
        max_skip=max_skip, warmup_epochs=warmup_epochs, beta_decay=beta_decay, selection=selection,
        latency_target_ms=latency_target, latency_model=None if latency_model is None else str(latency_model),
        beta=beta, budget=budget, strategy=strategy, constraints=list(constraint or []), device=device_torch,
        out=str(out) if out is not None else f"runs/oneshot-{method}-{seed}")
    console = Console(stderr=True, quiet=as_json)
    bar = Progress(TextColumn(f"[bold]{method}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                   TimeElapsedColumn(), console=console, transient=False)

    def progress(epoch: int, info: dict[str, float]) -> None:
        if not bar.tasks:
            bar.add_task(method, total=epochs, info="")
        text = "  ".join(f"{k} {v:.4g}" for k, v in info.items())
        bar.update(bar.tasks[0].id, completed=epoch, info=text)

    with bar:
        summary = run_oneshot(cfg, progress=progress, status=lambda m: console.log(m))
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
    if "val_acc" in s:
        line += f"  val acc {s['val_acc']:.3f} ({100 * s['val_acc']:.1f} %)"
    console.print(line)
    console.print(f"  peak memory of one step: {s['peak_memory_bytes']:,} B ({s['peak_memory_kind']})")
    console.print(f"run directory: {s['run_dir']}  report: {s['report']}")
