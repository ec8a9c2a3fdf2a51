"""Benchmark harness: compare strategies on a tabular benchmark, many seeds, several query budgets.

Protocol (NAS-Bench-201 style): one run per (strategy, seed) up to the largest budget, in memory (no run
store) for speed. After ``b`` queries the result is the final metric of the architecture with the highest
reward among queries 1..b (ties: the first seen keeps it); repeated queries count. With a time budget, each
query costs its table time (already times ``time_scale``) and the run's time result is taken just before the
first query that would exceed the budget. Every budget is read off the same trajectory. Summary per
strategy and budget: mean, sample standard deviation (ddof=1) and n over seeds. Accuracies are fractions in
[0, 1]: a table in percent is converted where it is read (``TabularEstimator``; ``settings["units"]`` says how).

Besides the registered strategies, two references from Optuna can be named: ``optuna-tpe``
(``TPESampler(multivariate=True, seed=seed)``, other settings default) and ``optuna-gp``
(``GPSampler(seed=seed)``), each decision a ``CategoricalDistribution`` over its choice indices.

Why its own loop and not the runner's ``run_search`` (in memory, ``out_dir=None``): the protocol runs thousands
of (strategy, seed) runs of up to 200 queries (and up to ``MAX_TIME_QUERIES`` under a time budget), so the cost
per query matters. ``run_search`` costs every asked architecture analytically (``space.cost``, for constraints
and the Pareto front), builds a ``Trial`` and a merged ``Result`` per query and keeps them all; it has no way to
stop at a simulated time budget, nor to time the strategy's ask/tell apart from the evaluation (the
``ms/query`` column). Measured on the NB201 table (200 queries x 5 seeds, noisy shared 2-core machine):
random 99 vs 250 us/query, evolution 99 vs 580 us/query (this loop vs ``run_search``). Both loops ask and tell
a registered strategy the same way, so the trajectories are those of a search.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from nasforge._files import atomic_dir, write_atomic
from nasforge.errors import NasforgeError
from nasforge.estimators import Result, TabularEstimator
from nasforge.jobs._config import BackendOptions
from nasforge.jobs._runs import CONFIG_NAME, check_run_dir, config_text, hold_run_dir, on_interrupt
from nasforge.spaces import Architecture, SearchSpace

OPTUNA_REFERENCES = ("optuna-tpe", "optuna-gp")
MAX_TIME_QUERIES = 100_000  # a time-budget run stops here even if queries are (nearly) free


class OptunaReference:
    """An ask/tell adapter over an Optuna sampler (a reference to compare with, not a nasforge strategy)."""

    def __init__(self, space: SearchSpace, seed: int = 0, sampler: str = "tpe") -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if sampler == "tpe":
            s: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(multivariate=True, seed=seed)
        elif sampler == "gp":
            s = optuna.samplers.GPSampler(seed=seed)
        else:
            raise NasforgeError(f"unknown optuna sampler {sampler!r}; allowed: tpe, gp")
        self.space = space
        self.study = optuna.create_study(direction="maximize", sampler=s)
        self.dists: dict[str, optuna.distributions.BaseDistribution] = {
            d.name: optuna.distributions.CategoricalDistribution(tuple(range(d.n))) for d in space.decisions()}
        self.names = list(self.dists)
        self.open: dict[tuple[int, ...], list[Any]] = {}

    def ask(self) -> Architecture:
        trial = self.study.ask(self.dists)
        arch = self.space.decode([int(trial.params[n]) for n in self.names])
        self.open.setdefault(arch.choices, []).append(trial)
        return arch

    def tell(self, arch: Architecture, result: Result) -> None:
        import optuna

        trial = self.open[arch.choices].pop(0)
        if result.ok and result.reward is not None:
            self.study.tell(trial, float(result.reward))
        else:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError("the Optuna reference keeps its state in the Optuna study")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError("the Optuna reference keeps its state in the Optuna study")


def make_strategy(name: str, space: SearchSpace, seed: int, options: dict[str, Any] | None = None) -> Any:
    """A registered strategy by name, or one of the Optuna references."""
    if name in OPTUNA_REFERENCES:
        return OptunaReference(space, seed, sampler=name.split("-", 1)[1])
    from nasforge.strategies import get_strategy

    return get_strategy(name, space, seed=seed, **(options or {}))


@dataclass(frozen=True)
class RunTrace:
    """One (strategy, seed) run: best-so-far final after each query, and the time-budget outcome."""

    strategy: str
    seed: int
    finals: tuple[float, ...]          # finals[q-1] = final of the best-reward arch among queries 1..q
    time_final: float | None           # final under the time budget (None: no query fitted / no budget)
    time_queries: int                  # queries that fitted in the time budget
    overhead_s: float                  # seconds spent in ask + tell (strategy overhead)
    queries: int                       # queries made in total
    missing: int                       # asked architectures not in the table (counted as failed queries)


def run_one(space: SearchSpace, table: TabularEstimator, name: str, seed: int, max_queries: int,
            time_budget: float | None = None, options: dict[str, Any] | None = None) -> RunTrace:
    """Run one strategy with one seed on the table; see the module doc for the protocol."""
    strategy = make_strategy(name, space, seed, options)
    rows = table.rows if table.final_col is not None else {k: (r, r, t) for k, (r, _, t) in table.rows.items()}
    finals: list[float] = []
    best_reward, best_final = -math.inf, math.nan
    spent, time_final, time_queries, time_open = 0.0, None, 0, time_budget is not None
    overhead, missing, q = 0.0, 0, 0
    limit = max_queries if time_budget is None else max(max_queries, MAX_TIME_QUERIES)
    clock = time.perf_counter
    while q < limit and (q < max_queries or time_open):
        t0 = clock()
        arch = strategy.ask()
        t1 = clock()
        row = rows.get(str(arch))
        if row is None:
            missing += 1
            result = Result.failure(f"{arch} not in table")
        else:
            reward, final, secs = row
            result = Result(reward, {"final": final}, {}, secs)
            if time_open:
                if spent + secs > time_budget:  # type: ignore[operator]
                    time_open = False
                    time_final = None if math.isinf(best_reward) else best_final
                else:
                    spent += secs
                    time_queries += 1
            if reward > best_reward:
                best_reward, best_final = reward, final
        t2 = clock()
        strategy.tell(arch, result)
        overhead += (t1 - t0) + (clock() - t2)
        q += 1
        if q <= max_queries:
            finals.append(best_final)
    if time_open:  # hit the query cap before the budget: take what it has
        time_final = None if math.isinf(best_reward) else best_final
    return RunTrace(name, seed, tuple(finals), time_final, time_queries, overhead, q, missing)


@dataclass(frozen=True)
class Stat:
    mean: float
    std: float
    n: int

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-safe: mean and std are null when no seed gave a value (n = 0)."""
        if self.n == 0:
            return {"mean": None, "std": None, "n": 0}
        return {"mean": self.mean, "std": self.std, "n": self.n}


def stat(values: Sequence[float]) -> Stat:
    v = np.array([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if v.size == 0:
        return Stat(math.nan, math.nan, 0)
    return Stat(float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size))


@dataclass
class BenchmarkResult:
    """Per strategy: budget key ("25", ..., and "<T>s" for the time budget) -> Stat; the oracle; settings."""

    strategies: dict[str, dict[str, Stat]]
    oracle: dict[str, Any]
    settings: dict[str, Any]
    overhead_ms: dict[str, float] = field(default_factory=dict)
    time_queries: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    traces: list[RunTrace] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategies": {n: {k: s.to_dict() for k, s in by.items()} for n, by in self.strategies.items()},
            "oracle": self.oracle,
            "settings": self.settings,
            "overhead_ms": self.overhead_ms,
            "time_budget_queries": self.time_queries,
            "seconds": self.seconds,
        }


def oracle(table: TabularEstimator) -> dict[str, Any]:
    """Best final in the table, and the final of the best-reward architecture (first row on ties)."""
    best_r = max(table.rows.items(), key=lambda kv: kv[1][0])  # max keeps the first of equal rewards
    finals = [(k, v[1]) for k, v in table.rows.items() if not math.isnan(v[1])]
    out: dict[str, Any] = {"best_reward": best_r[1][0], "best_reward_arch": best_r[0],
                           "final_of_best_reward": best_r[1][1], "archs": len(table.rows)}
    if finals:
        k, f = max(finals, key=lambda kv: kv[1])
        out.update(best_final=f, best_final_arch=k)
    return out


def parse_budgets(text: str | Sequence[int]) -> list[int]:
    """'25,50,100' -> [25, 50, 100]; every budget an integer > 0."""
    items = [p.strip() for p in text.split(",")] if isinstance(text, str) else [str(x) for x in text]
    out: list[int] = []
    for p in items:
        try:
            b = int(p)
        except ValueError:
            raise NasforgeError(f"bad budget {p!r}; budgets are integers > 0, e.g. 25,50,100,200") from None
        if b <= 0:
            raise NasforgeError(f"budget {b} must be > 0; budgets are integers > 0, e.g. 25,50,100,200")
        out.append(b)
    if not out:
        raise NasforgeError("no budgets given; e.g. 25,50,100,200")
    return sorted(set(out))


# -- parallel over seeds ------------------------------------------------------------------------------------
_W: dict[str, Any] = {}


def _init(space: SearchSpace, table: TabularEstimator, threads: int) -> None:
    _W["space"], _W["table"] = space, table
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def _one(job: tuple[str, int, int, float | None, dict[str, Any] | None]) -> RunTrace:
    name, seed, max_q, tb, opts = job
    return run_one(_W["space"], _W["table"], name, seed, max_q, tb, opts)


def _one_shared(shared: tuple[SearchSpace, TabularEstimator],
                job: tuple[str, int, int, float | None, dict[str, Any] | None]) -> RunTrace:
    """One (strategy, seed) run in a Ray task: ``shared`` is the space and the table."""
    return run_one(shared[0], shared[1], *job)


def run_benchmark(
    space: SearchSpace,
    table: TabularEstimator,
    strategies: Sequence[str],
    budgets: Sequence[int],
    seeds: int | Sequence[int] = 100,
    time_budget: float | None = None,
    workers: int = 1,
    options: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[RunTrace], None] | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    trial_resources: str | Mapping[str, Any] | None = None,
) -> BenchmarkResult:
    """Run every strategy for every seed up to max(budgets) queries (and the time budget); summarise.
    ``backend="ray"`` spreads the (strategy, seed) runs over Ray tasks (``workers`` at once; the space and table
    go to the object store once); the result is the same on every backend."""
    budgets = parse_budgets(budgets)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise NasforgeError("seeds must be > 0")
    if time_budget is not None and not time_budget > 0:
        raise NasforgeError(f"time budget must be > 0 seconds, got {time_budget}")
    if workers < 1:
        raise NasforgeError(f"workers must be >= 1, got {workers}")
    if not strategies:
        raise NasforgeError("no strategies given")
    for name in strategies:  # fail fast on an unknown name or a bad option, before any run
        make_strategy(name, space, 0, (options or {}).get(name))
    max_q = max(budgets)
    jobs = [(n, s, max_q, time_budget, (options or {}).get(n)) for n in strategies for s in seed_list]
    traces: list[RunTrace] = []
    seconds: dict[str, float] = dict.fromkeys(strategies, 0.0)
    if backend == "ray":
        from nasforge.runner._backends import parse_resources
        from nasforge.runner._ray import ray_map

        t_start = time.perf_counter()
        for tr in ray_map(_one_shared, (space, table), jobs, workers, parse_resources(trial_resources),
                          ray_address):
            traces.append(tr)
            if progress is not None:
                progress(tr)
        seconds = {"all (wall)": time.perf_counter() - t_start}
    elif workers == 1:
        for job in jobs:
            t0 = time.perf_counter()
            tr = run_one(space, table, *job)
            seconds[tr.strategy] += time.perf_counter() - t0
            traces.append(tr)
            if progress is not None:
                progress(tr)
    else:
        t_start = time.perf_counter()
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init, initargs=(space, table, 1)) as pool:
            for tr in pool.map(_one, jobs, chunksize=max(1, len(seed_list) // (4 * workers))):
                traces.append(tr)
                if progress is not None:
                    progress(tr)
        seconds = {"all (wall)": time.perf_counter() - t_start}
    return summarise(traces, strategies, budgets, time_budget, table, space, seed_list, seconds)


def summarise(traces: Sequence[RunTrace], strategies: Sequence[str], budgets: Sequence[int],
              time_budget: float | None, table: TabularEstimator, space: SearchSpace, seeds: Sequence[int],
              seconds: dict[str, float]) -> BenchmarkResult:
    by: dict[str, dict[str, Stat]] = {}
    overhead: dict[str, float] = {}
    tq: dict[str, float] = {}
    for name in strategies:
        mine = [t for t in traces if t.strategy == name]
        row = {str(b): stat([t.finals[b - 1] for t in mine]) for b in budgets}
        if time_budget is not None:
            row[f"{time_budget:g}s"] = stat([t.time_final for t in mine if t.time_final is not None])
            tq[name] = float(np.mean([t.time_queries for t in mine]))
        by[name] = row
        overhead[name] = 1e3 * sum(t.overhead_s for t in mine) / max(1, sum(t.queries for t in mine))
    settings: dict[str, Any] = {
        "space": space.name, "table": table.path.name, "arch_col": table.arch_col, "reward_col": table.reward_col,
        "final_col": table.final_col, "units": dict(table.units), "time_col": table.time_col,
        "time_scale": table.time_scale,
        "time_budget": time_budget, "budgets": list(budgets), "seeds": len(seeds), "std": "sample (ddof=1)",
        "missing_queries": sum(t.missing for t in traces),
    }
    if any(n in OPTUNA_REFERENCES for n in strategies):
        import optuna

        settings["optuna"] = {"version": optuna.__version__,
                              "optuna-tpe": "TPESampler(multivariate=True, seed=seed), defaults otherwise",
                              "optuna-gp": "GPSampler(seed=seed), defaults otherwise"}
    return BenchmarkResult(by, oracle(table), settings, overhead, tq, seconds, list(traces))


def format_table(res: BenchmarkResult) -> str:
    """A plain-text table: one row per strategy, one column per budget, 'mean +/- std (n)' (fractions)."""
    keys = list(next(iter(res.strategies.values())).keys()) if res.strategies else []
    width = max([len(n) for n in res.strategies] + [8])
    lines = [" " * width + "  " + "".join(f"{k:>22}" for k in keys) + f"{'ms/query':>10}"]
    for name, row in res.strategies.items():
        cells = "".join(f"{f'{s.mean:.4f} +/- {s.std:.4f} ({s.n})':>22}" for s in row.values())
        lines.append(f"{name:<{width}}  {cells}{res.overhead_ms.get(name, math.nan):>10.3f}")
    o = res.oracle
    lines.append(f"oracle: best final {o.get('best_final', math.nan):.4f}; "
                 f"final of the best-reward arch {o['final_of_best_reward']:.4f} ({o['archs']} archs)")
    if res.time_queries:
        lines.append("queries within the time budget (mean): "
                     + ", ".join(f"{n} {q:.1f}" for n, q in res.time_queries.items()))
    return "\n".join(lines)


def plot(res: BenchmarkResult, path: str | Path) -> Path:
    """Mean +/- std of the final metric vs query budget, one line per strategy, oracle dashed."""
    from nasforge.report import plot_benchmark

    return plot_benchmark(res.to_dict(), path)


# -- the job: config, validation before any work, the optional run folder ------------------------------------
def parse_scale(text: str | float) -> float:
    """A positive number or a fraction like ``12/200``."""
    try:
        v = float(Fraction(str(text).strip()))
    except (ValueError, ZeroDivisionError):
        raise NasforgeError(f"bad --time-scale {text!r}; expected a number > 0 or a fraction like 12/200") from None
    if not v > 0 or not math.isfinite(v):
        raise NasforgeError(f"bad --time-scale {text!r}; expected a number > 0 or a fraction like 12/200")
    return v


def _names(value: str | Sequence[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return list(dict.fromkeys(s.strip() for s in items if s.strip()))  # unique, in order


@dataclass(kw_only=True)
class BenchmarkConfig(BackendOptions):
    """What ``nasforge benchmark`` runs: a table, its columns, the strategies, budgets and seeds. With ``out`` the
    run is also written to a folder (``config.yaml``, ``result.json``, ``benchmark.png``)."""

    JOB: ClassVar[str] = "benchmark"

    table: str
    arch_col: str
    reward_col: str
    final_col: str | None = None
    space: str = "nb201"
    percent: bool | None = None
    time_col: str | None = None
    time_scale: str | float = "1"
    time_budget: float | None = None
    strategies: str | list[str] | None = None  # default: DEFAULT_STRATEGIES, or with minimize_col every MO strategy
    minimize_col: str | None = None
    strategy_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    budgets: str | list[int] = "25,50,100,200"
    seeds: int = 100
    workers: int = 1
    plot: str | None = None

    def validate(self) -> None:
        parse_budgets(self.budgets)
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise NasforgeError(f"--seeds must be >= 1, got {self.seeds!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise NasforgeError(f"--workers must be >= 1, got {self.workers!r}")
        if self.time_budget is not None and self.time_col is None:
            raise NasforgeError("--time-budget needs --time-col (the column of seconds per query)")
        if self.time_budget is not None and not self.time_budget > 0:
            raise NasforgeError(f"--time-budget must be > 0 seconds, got {self.time_budget}")
        parse_scale(self.time_scale)
        if self.strategies is not None and not _names(self.strategies):
            raise NasforgeError("--strategies is empty; e.g. random,evolution,local")
        if self.minimize_col is not None and self.time_budget is not None:
            raise NasforgeError("--time-budget is not part of the multi-objective protocol (--minimize-col); "
                                "give one of them")
        self.validate_backend()
        if self.minimize_col is not None and self.backend != "local":
            raise NasforgeError("--minimize-col runs on the local backend only; drop --backend ray")


DEFAULT_STRATEGIES = "random,evolution,local"


def benchmark_job(options: BenchmarkConfig | Mapping[str, Any],
                  progress: Callable[[Any, int], None] | None = None) -> Any:
    """Validate the options (and ``out``, before the table is read), run the benchmark, write the plot and, with
    ``out``, the run folder. ``progress(trace, total_runs)`` after each (strategy, seed) run."""
    cfg = BenchmarkConfig.of(options)
    if cfg.out is None:
        return _benchmark_job(cfg, None, progress)
    check_run_dir(cfg.out, BenchmarkConfig.JOB, can_resume=False)  # before anything is written, and again locked
    with hold_run_dir(cfg.out), on_interrupt(f"nothing was written to {cfg.out} (run the benchmark again)"):
        return _benchmark_job(cfg, check_run_dir(cfg.out, BenchmarkConfig.JOB, can_resume=False), progress)


def _benchmark_job(cfg: BenchmarkConfig, out: Path | None,
                   progress: Callable[[Any, int], None] | None) -> Any:
    from nasforge.report import write_report
    from nasforge.spaces import get_space

    space = get_space(cfg.space)
    table = TabularEstimator(cfg.table, cfg.arch_col, cfg.reward_col, final_col=cfg.final_col, time_col=cfg.time_col,
                             time_scale=parse_scale(cfg.time_scale), space=space, percent=cfg.percent)
    if cfg.minimize_col is not None:
        from nasforge.jobs._mo_benchmark import mo_benchmark_job

        return mo_benchmark_job(cfg, out, space, table, progress)
    names = _names(cfg.strategies or DEFAULT_STRATEGIES)
    total = len(names) * cfg.seeds
    res = run_benchmark(space, table, names, parse_budgets(cfg.budgets), cfg.seeds, time_budget=cfg.time_budget,
                        workers=cfg.workers, options=cfg.strategy_options or None,
                        progress=None if progress is None else (lambda tr: progress(tr, total)),
                        backend=cfg.backend, ray_address=cfg.ray_address, trial_resources=cfg.trial_resources)
    if cfg.plot is not None:
        plot(res, cfg.plot)
    if out is not None:
        with atomic_dir(out) as stage:
            write_atomic(stage / CONFIG_NAME, config_text(BenchmarkConfig.JOB, cfg.to_dict()))
            write_atomic(stage / "result.json", json.dumps(res.to_dict(), indent=1))
            plot(res, stage / "benchmark.png")
            write_report(stage)
    return res
