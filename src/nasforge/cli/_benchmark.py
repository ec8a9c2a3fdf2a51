"""``nasforge benchmark``: compare strategies on a tabular benchmark over many seeds and query budgets."""

from __future__ import annotations

import json
import math
import sys
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import typer

from nasforge.cli._app import app
from nasforge.errors import NasforgeError


def parse_scale(text: str) -> float:
    """A positive number or a fraction like ``12/200``."""
    try:
        v = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise NasforgeError(f"bad --time-scale {text!r}; expected a number > 0 or a fraction like 12/200") from None
    if not v > 0 or not math.isfinite(v):
        raise NasforgeError(f"bad --time-scale {text!r}; expected a number > 0 or a fraction like 12/200")
    return v


@app.command("benchmark")
def benchmark(
    table: Annotated[Path, typer.Option("--table", help="CSV table, one row per architecture")],
    arch_col: Annotated[str, typer.Option("--arch-col", help="column of architecture strings")],
    reward_col: Annotated[str, typer.Option("--reward-col", help="column the search maximises")],
    final_col: Annotated[str | None, typer.Option(
        "--final-col", help="column reported for the best-reward arch (default: the reward column)")] = None,
    space: Annotated[str, typer.Option("--space", help="registered search space the strings belong to")] = "nb201",
    percent: Annotated[bool | None, typer.Option(
        "--percent/--no-percent", help="reward/final columns are percent (divided by 100) / used as they are; "
        "default: percent when a column's values lie in [0, 100] with some above 1")] = None,
    time_col: Annotated[str | None, typer.Option("--time-col", help="column of seconds per query")] = None,
    time_scale: Annotated[str, typer.Option("--time-scale", help="factor on the time column, e.g. 12/200")] = "1",
    time_budget: Annotated[float | None, typer.Option(
        "--time-budget", help="simulated seconds per run (needs --time-col)")] = None,
    strategies: Annotated[str, typer.Option(
        "--strategies", help="comma-separated registered strategies, plus optuna-tpe / optuna-gp references")
    ] = "random,evolution,local",
    budgets: Annotated[str, typer.Option("--budgets", help="comma-separated query budgets")] = "25,50,100,200",
    seeds: Annotated[int, typer.Option("--seeds", help="number of seeds (0..N-1) per strategy")] = 100,
    workers: Annotated[int, typer.Option("--workers", help="processes (parallel over seeds)")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="write mean +/- std vs budget here")] = None,
) -> None:
    """For each strategy and budget: mean, std and n of the final metric of the best-reward architecture."""
    from nasforge.estimators import TabularEstimator
    from nasforge.jobs._benchmark import format_table, parse_budgets, plot, run_benchmark
    from nasforge.spaces import get_space

    budget_list = parse_budgets(budgets)
    if seeds < 1:
        raise NasforgeError(f"--seeds must be >= 1, got {seeds}")
    if workers < 1:
        raise NasforgeError(f"--workers must be >= 1, got {workers}")
    if time_budget is not None and time_col is None:
        raise NasforgeError("--time-budget needs --time-col (the column of seconds per query)")
    if time_budget is not None and not time_budget > 0:
        raise NasforgeError(f"--time-budget must be > 0 seconds, got {time_budget}")
    names = list(dict.fromkeys(s.strip() for s in strategies.split(",") if s.strip()))  # unique, in order
    if not names:
        raise NasforgeError("--strategies is empty; e.g. random,evolution,local")
    sp = get_space(space)
    est = TabularEstimator(table, arch_col, reward_col, final_col=final_col, time_col=time_col,
                           time_scale=parse_scale(time_scale), space=sp, percent=percent)

    show = not as_json and sys.stderr.isatty()

    def tick(_: object) -> None:
        if show:
            print(".", end="", file=sys.stderr, flush=True)

    res = run_benchmark(sp, est, names, budget_list, seeds, time_budget=time_budget, workers=workers, progress=tick)
    if show:
        print(file=sys.stderr)
    if plot_path is not None:
        plot(res, str(plot_path))
    if as_json:
        typer.echo(json.dumps(res.to_dict(), indent=1))
    else:
        typer.echo(format_table(res))
        if plot_path is not None:
            typer.echo(f"plot: {plot_path}")
