"""``nasforge benchmark``: compare strategies on a tabular benchmark over many seeds and query budgets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from nasforge.cli._app import app
from nasforge.cli._options import progress_bar, stderr_console


@app.command("benchmark")
def benchmark(
    table: Annotated[Path | None, typer.Option("--table", help="CSV table, one row per architecture",
                                               show_default="none (required unless in --config)")] = None,
    arch_col: Annotated[str | None, typer.Option("--arch-col", help="column of architecture strings",
                                                 show_default="none (required unless in --config)")] = None,
    reward_col: Annotated[str | None, typer.Option("--reward-col", help="column the search maximises",
                                                   show_default="none (required unless in --config)")] = None,
    final_col: Annotated[str | None, typer.Option(
        "--final-col", help="column reported for the best-reward arch",
        show_default="the reward column")] = None,
    space: Annotated[str | None, typer.Option("--space", help="registered search space the strings belong to",
                                              show_default="nb201")] = None,
    percent: Annotated[bool | None, typer.Option(
        "--percent/--no-percent", help="reward/final columns are percent (divided by 100) / used as they are",
        show_default="percent when a column's values lie in [0, 100] with some above 1")] = None,
    time_col: Annotated[str | None, typer.Option("--time-col", help="column of seconds per query",
                                                 show_default="none")] = None,
    time_scale: Annotated[str | None, typer.Option("--time-scale", help="factor on the time column, e.g. 12/200",
                                                   show_default="1")] = None,
    time_budget: Annotated[float | None, typer.Option(
        "--time-budget", help="simulated seconds per run (needs --time-col)",
        show_default="none (needs --time-col)")] = None,
    strategies: Annotated[str | None, typer.Option(
        "--strategies", help="comma-separated registered strategies, plus optuna-tpe / optuna-gp references "
        "(with --minimize-col: optuna-nsga2 / optuna-motpe)",
        show_default="random,evolution,local; with --minimize-col every multi-objective strategy, random, "
        "optuna-nsga2, optuna-motpe")] = None,
    minimize_col: Annotated[str | None, typer.Option(
        "--minimize-col", help="a cost column to minimise besides the reward: the multi-objective protocol "
        "(score = hypervolume of the run's front / the true front's, min-max normalised)",
        show_default="none: single objective")] = None,
    budgets: Annotated[str | None, typer.Option("--budgets", help="comma-separated query budgets",
                                                show_default="25,50,100,200")] = None,
    seeds: Annotated[int | None, typer.Option("--seeds", help="number of seeds (0..N-1) per strategy",
                                              show_default="100")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="processes (parallel over seeds)",
                                                show_default="1")] = None,
    backend: Annotated[str | None, typer.Option(help="where the seeds run: local | ray", show_default="local")
                       ] = None,
    ray_address: Annotated[str | None, typer.Option(
        help="HOST:PORT of a running Ray cluster", show_default="start a local Ray instance")] = None,
    trial_resources: Annotated[str | None, typer.Option(help="per run on Ray, e.g. cpu=1",
                                                        show_default="none: the backend's default")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="write mean +/- std vs budget here",
                                                   show_default="no plot")] = None,
    out: Annotated[Path | None, typer.Option(help="also write a run folder (config.yaml, result.json, "
                                                   "benchmark.png)",
                                             show_default="no run folder")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file with any of these options",
                                                show_default="none")] = None,
) -> None:
    """For each strategy and budget: mean, std and n of the final metric of the best-reward architecture."""
    from nasforge.jobs._benchmark import BenchmarkConfig, benchmark_job, format_table
    from nasforge.jobs._mo_benchmark import MOBenchmarkResult, format_mo_table

    flags = {"table": None if table is None else str(table), "arch_col": arch_col, "reward_col": reward_col,
             "final_col": final_col, "space": space, "percent": percent, "time_col": time_col,
             "time_scale": time_scale, "time_budget": time_budget, "strategies": strategies, "budgets": budgets,
             "minimize_col": minimize_col,
             "seeds": seeds, "workers": workers,
             "backend": backend, "ray_address": ray_address, "trial_resources": trial_resources,
             "plot": None if plot_path is None else str(plot_path),
             "out": None if out is None else str(out)}
    cfg = BenchmarkConfig.new(BenchmarkConfig.merge_given(config, flags))
    console = stderr_console(as_json)
    with progress_bar("benchmark", console) as bar:
        done = [0]

        def progress(trace: object, total: int) -> None:
            done[0] += 1
            bar.update(done[0], total)

        res = benchmark_job(cfg, progress=progress)
    if as_json:
        typer.echo(json.dumps(res.to_dict(), indent=1))
    elif isinstance(res, MOBenchmarkResult):
        typer.echo(format_mo_table(res))
    else:
        typer.echo(format_table(res))
        if cfg.plot is not None:
            typer.echo(f"plot: {cfg.plot}")
