"""``nasforge profile MODEL``: per-layer cost table and totals of a zoo model or of one architecture of a space.

All through ``nasforge.profile``: a zoo model is costed analytically from its spec (exact, no module built).
``SPACE:ARCH`` takes the totals from the space's analytic ``cost(arch)`` and the per-layer rows from its network
spec (no torch: the command starts in a fraction of a second). ``--trace`` traces the built module instead (for
``SPACE:ARCH``: the rows, with a warning on stderr where they disagree with the analytic totals).
"""

from __future__ import annotations

import json
from typing import Any

import typer

from nasforge.cli._app import app
from nasforge.cost import Cost
from nasforge.cost._cost import bytes_per_element
from nasforge.errors import NasforgeError

PRECISIONS = ("fp32", "int8")


def _check_resolution(resolution: int | None) -> None:
    if resolution is not None and resolution <= 0:
        raise NasforgeError(f"resolution {resolution} must be a positive integer (pixels of the square input side)")


def _cost(model: str, resolution: int | None, precision: str, traced: bool) -> tuple[Cost, int]:
    from nasforge import profile, zoo

    if ":" in model:
        c = profile(model, None if resolution is None else (resolution,), precision, trace=traced)
        return c, int(c.input_shape[-1])
    if model not in zoo.list_models():
        from nasforge.spaces import list_spaces

        raise NasforgeError(f"unknown model {model!r}; known: {', '.join(zoo.list_models())}; "
                            f"or SPACE:ARCH with SPACE one of {', '.join(list_spaces())}")
    r = 224 if resolution is None else resolution
    if traced:
        spec = zoo.create(model, 1000, r)
        return profile(spec.build(), spec.input_shape, precision), r
    return profile(model, (r,), precision), r


def profile_model(model: str, resolution: int | None = None, precision: str = "fp32",
                  device: str | None = None, traced: bool = False) -> dict[str, Any]:
    """The JSON object of ``nasforge profile``: totals, per-layer rows, and with ``device`` a ``fits`` verdict."""
    _check_resolution(resolution)
    if precision not in PRECISIONS:
        bytes_per_element(precision)  # names the known precisions when it is not one at all
        raise NasforgeError(f"precision {precision!r} is not allowed here; allowed: {', '.join(PRECISIONS)}")
    dev = None
    if device is not None:
        from nasforge.hardware import get_device

        dev = get_device(device)
    cost, r = _cost(model, resolution, precision, traced)
    out: dict[str, Any] = {"model": model, "resolution": r, **cost.to_dict()}
    out["layers"] = [{k: row[k] for k in ("name", "op", "in_shape", "out_shape", "params", "macs", "other_ops",
                                          "live_activations", "live_bytes")}
                     for row in out["layers"]]
    if dev is not None:
        out["fits"] = dev.fits(cost)
    return out


def _si(n: float) -> str:
    for unit, f in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= f:
            return f"{n / f:.2f} {unit}"
    return str(int(n))


def _bytes(n: int) -> str:
    for unit, f in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= f:
            return f"{n / f:.2f} {unit}"
    return f"{n} B"


def _shape(s: list[int]) -> str:
    return "x".join(map(str, s)) if s else "-"


def _print(d: dict[str, Any], show_layers: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
        console = Console(width=200)
    if show_layers:
        peak = d["peak_activations"]
        rows = [(r["name"], r["op"], _shape(r["in_shape"]), _shape(r["out_shape"]), f"{r['params']:,}",
                 f"{r['macs']:,}", _bytes(r["live_bytes"]) + (" <- peak" if r["live_activations"] == peak else ""))
                for r in d["layers"]]
        table = Table(title=f"{d['model']} at {d['resolution']}x{d['resolution']}, {d['precision']}; live mem: "
                            "activations alive while the layer runs")
        for i, (col, justify) in enumerate([("layer", "left"), ("op", "left"), ("in", "left"), ("out", "left"),
                                            ("params", "right"), ("MACs", "right"), ("live mem", "right")]):
            width = max([len(col), *(len(r[i]) for r in rows)])
            table.add_column(col, justify=justify, no_wrap=True, min_width=width if i else min(width, 50))  # type: ignore[arg-type]
        for row in rows:
            table.add_row(*row)
        console.print(table)
    console.print(f"model        {d['model']}  (input {_shape(d['input_shape'])}, output {_shape(d['output_shape'])})")
    console.print(f"params       {d['params']:,} ({_si(d['params'])})")
    console.print(f"MACs         {d['macs']:,} ({_si(d['macs'])}); other ops {d['other_ops']:,}")
    console.print(f"activations  {d['activations']:,} elements ({_bytes(d['activation_bytes'])})")
    console.print(f"peak memory  {_bytes(d['peak_memory_bytes'])} ({d['peak_activations']:,} elements, "
                  f"{d['precision']})")
    console.print(f"weights      {_bytes(d['weight_bytes'])} ({d['precision']})")
    if d["unknown_ops"]:
        console.print(f"unknown ops  {', '.join(d['unknown_ops'])} (counted as zero)")
    fits = d.get("fits")
    if fits is not None:
        verdict = "[green]fits[/green]" if fits["fits"] else "[red]does not fit[/red]"
        console.print(f"device       {fits['device']} ({fits['kind']}): {verdict}")
        for c in fits["checks"]:
            mark = "ok" if c["ok"] else "OVER"
            console.print(f"  {c['resource']:6s} {c['holds']}: {_bytes(c['need_bytes'])} of "
                          f"{_bytes(c['limit_bytes'])} ({100 * c['used']:.1f}%) {mark}")


@app.command("profile")
def profile_cmd(
    model: str = typer.Argument(..., help="A zoo model name (see `nasforge zoo`) or SPACE:ARCH."),
    resolution: int | None = typer.Option(None, "--resolution", "-r",
                                          help="Input side in pixels.",
                                          show_default="224 for zoo models, the architecture's own for SPACE:ARCH"),
    precision: str = typer.Option("fp32", "--precision", "-p", help="fp32 or int8: bytes per element."),
    device: str | None = typer.Option(None, "--device", "-d",
                                      help="Check the fit on a device: a name (stm32f746, iphone11, v100, host) "
                                           "or a YAML file.", show_default="none: no fit check"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    layers: bool = typer.Option(True, "--layers/--no-layers", help="Show the per-layer table."),
    traced: bool = typer.Option(False, "--trace", help="Trace the built module instead of the spec (torch)."),
) -> None:
    """Params, MACs, activation and peak memory, weight bytes of a network, layer by layer."""
    d = profile_model(model, resolution, precision, device, traced)
    if as_json:
        typer.echo(json.dumps(d))
    else:
        _print(d, layers)
