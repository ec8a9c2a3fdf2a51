"""``nasforge zoo``: the classic networks' cost and published accuracy, as a table, JSON or a plot."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from nasforge.cli._app import app


@app.command("zoo")
def zoo(
    resolution: int = typer.Option(224, "--resolution", "-r", help="Input side in pixels (square images)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of objects instead of the table."),
    plot: Path | None = typer.Option(None, "--plot", help="Also write the accuracy-vs-MACs plot to this .png.",
                                     show_default="no plot"),
) -> None:
    """Params, MACs, peak memory (fp32), weight size and published top-1 of every zoo model."""
    from nasforge.zoo._summary import plot_accuracy_vs_macs, summary

    rows = summary(resolution)
    if plot is not None:
        plot_accuracy_vs_macs(rows, plot)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"nasforge zoo at {resolution}x{resolution}, 1000 classes, fp32")
    table.add_column("model", no_wrap=True, min_width=max(len(r["name"]) for r in rows))
    for col in ("params (M)", "MACs (M)", "peak mem (MB)", "weights (MB)", "top-1 (%)"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["name"], f"{r['params'] / 1e6:.2f}", f"{r['macs'] / 1e6:,.1f}",
                      f"{r['peak_memory_bytes'] / 1e6:.2f}", f"{r['weight_bytes'] / 1e6:.1f}",
                      f"{100 * r['top1']:.1f}")
    console = Console()
    console.print(table)
    console.print("top-1: published ImageNet accuracy at 224x224, in percent here (a fraction in --json; "
                  "sources: nasforge.zoo.model_info)")
    if plot is not None:
        console.print(f"plot written to {plot}")
