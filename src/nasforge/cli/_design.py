"""``nasforge design tinynas | edf``: choose or compare search spaces before searching them."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from nasforge.cli._app import app
from nasforge.cli._options import OptionArg, parse_options
from nasforge.errors import NasforgeError

design_app = typer.Typer(help="Design spaces: TinyNAS space choice, RegNet error EDF.", no_args_is_help=True)
app.add_typer(design_app, name="design")


def _floats(text: str | None, what: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise NasforgeError(f"bad {what} {text!r}; expected comma-separated numbers") from None


@design_app.command("tinynas")
def tinynas_cmd(
    device: Annotated[str, typer.Option("--device", help="device name (e.g. stm32f746) or a device YAML")],
    space: Annotated[str, typer.Option("--space", help="space with width and resolution decisions")] = "mobilenet",
    samples: Annotated[int, typer.Option("--samples", help="architectures sampled per candidate")] = 1000,
    widths: Annotated[str | None, typer.Option("--widths", help="e.g. 0.2,0.3,0.5", show_default="the space's")
                      ] = None,
    resolutions: Annotated[str | None, typer.Option("--resolutions", help="e.g. 48,96,160",
                                                    show_default="the space's")] = None,
    precision: Annotated[str, typer.Option("--precision", help="bytes per element of weights and "
                                           "activations")] = "int8",
    # 0.5 = design's DEFAULT_MIN_SHARE (a test checks); importing it here would load numpy at start-up
    min_share: Annotated[float, typer.Option("--min-share", help="only choose candidates where at least this "
                                             "share of samples fits (0..1; 0 = highest mean MACs of any "
                                             "fitting)")] = 0.5,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    option: OptionArg = None,
    plot: Annotated[str | None, typer.Option("--plot", help="write the MACs CDF plot (PNG) here",
                                             show_default="no plot")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Per candidate (width x resolution): share of sampled models that fit the device, their mean MACs; the
    choice is the candidate whose fitting models have the highest mean MACs, among those where at least
    --min-share of samples fit. The space's width multiplier scales the head too (mobilenet: head_scale=true,
    as MCUNet; -o head_scale=false keeps the fixed head)."""
    from nasforge.design import plot_tinynas, tinynas
    from nasforge.hardware import get_device

    dev = get_device(device)
    ws = _floats(widths, "--widths")
    rs_f = _floats(resolutions, "--resolutions")
    rs = None if rs_f is None else [int(r) for r in rs_f]
    res = tinynas(space, dev, ws, rs, samples, seed, precision, parse_options(option), min_share)
    if plot:
        plot_tinynas(res, plot)
    if as_json:
        typer.echo(json.dumps(res.to_dict()))
        return
    opts = ", ".join(f"{k}={v}" for k, v in res.options.items())
    typer.echo(f"{res.space} ({opts or 'default options'}) on {res.device} at {res.precision}, "
               f"{samples} samples per candidate")
    typer.echo(f"{'space':<12} {'fit':>7} {'mean MACs':>12}")
    for c in res.candidates:
        mean = f"{c.mean_macs / 1e6:10.2f} M" if c.mean_macs is not None else f"{'-':>12}"
        mark = "  <- chosen" if c is res.chosen else ("  (fit < min share)" if c.fitting and not res.eligible(c)
                                                     else "")
        typer.echo(f"{c.label:<12} {c.share:7.1%} {mean}{mark}")
    ch = res.chosen
    typer.echo(f"chosen: {ch.label} (width {ch.width:g}, resolution {ch.resolution}) on {res.device}: "
               f"{ch.share:.1%} of samples fit, mean {(ch.mean_macs or 0.0) / 1e6:.2f} M MACs "
               f"(highest mean among candidates with >= {res.min_share:.0%} fitting)")


@design_app.command("edf")
def edf_cmd(
    space: Annotated[list[str], typer.Option("--space", help="NAME or NAME:-VALUE,-VALUE (choice values removed); "
                                             "repeatable")],
    table: Annotated[list[str], typer.Option("--table", help="CSV of results: one for all spaces or one per "
                                             "space")],
    arch_col: Annotated[str, typer.Option("--arch-col", help="column of architecture strings")],
    reward_col: Annotated[str, typer.Option("--reward-col", help="column of the metric (e.g. accuracy)")],
    n: Annotated[int, typer.Option("-n", help="architectures sampled per space")] = 500,
    error_from: Annotated[str, typer.Option("--error-from", help="accuracy (a fraction; error = 1 - reward) or "
                                            "error (the reward is the error)")] = "accuracy",
    percent: Annotated[bool | None, typer.Option(
        "--percent/--no-percent", help="the reward column is percent (divided by 100) / used as it is",
        show_default="percent when its values lie in [0, 100] with some above 1")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    option: OptionArg = None,
    plot: Annotated[str | None, typer.Option("--plot", help="write the EDF plot (PNG) here",
                                             show_default="no plot")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """RegNet's error EDF: sample n architectures per space, look them up, compare the distributions."""
    from nasforge.design import edf, plot_edf
    from nasforge.design._edf import SpaceSpec, parse_space_spec
    from nasforge.estimators import Estimator, TabularEstimator

    if len(table) not in (1, len(space)):
        raise NasforgeError(f"give one --table for all spaces or one per --space ({len(space)}), got {len(table)}")
    opts = parse_options(option)
    specs = [parse_space_spec(s, opts) for s in space]
    tables = table if len(table) == len(specs) else table * len(specs)
    path_of = {id(s): t for s, t in zip(specs, tables, strict=True)}
    cache: dict[tuple[str, str], TabularEstimator] = {}

    def estimator_of(s: SpaceSpec) -> Estimator:
        path = path_of[id(s)]
        key = (path, s.space.name)
        if key not in cache:
            cache[key] = TabularEstimator(path, arch_col, reward_col, space=s.space, percent=percent)
        return cache[key]

    curves = edf(specs, estimator_of, n, seed, error_from)
    if plot:
        plot_edf(curves, plot, "error (fraction)")
    rows = [c.to_dict() for c in curves]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    typer.echo(f"{'space':<36} {'n':>5} {'min':>8} {'p25':>8} {'median':>8} {'mean':>8}")
    for r in rows:
        typer.echo(f"{r['space']:<36} {r['n']:>5} {r['min']:8.3f} {r['p25']:8.3f} {r['median']:8.3f} {r['mean']:8.3f}")
