"""The multi-objective benchmark protocol (``nasforge benchmark ... --minimize-col COL``).

A table gives each architecture a reward (maximised), a final metric (reported) and a cost column (minimised).
One run per (strategy, seed) up to the largest budget; strategies are told ``Result(reward,
objectives=(cost,))``. After ``b`` queries the run's front is the queried architectures that are non-dominated in
(reward, cost); its score is the hypervolume of those architectures' (final, cost) points divided by the
hypervolume of the true (final, cost) front of the whole table. Both objectives are min-max normalised over the
whole table (final turned into ``max - final`` so both are minimised) and the reference point is the worst corner
(1, 1). Summary per strategy and budget: mean, sample std (ddof=1) and n over seeds, of these scores in [0, 1].

Besides the registered multi-objective strategies (and ``random``, which ignores the objectives), two references
from Optuna: ``optuna-nsga2`` (``NSGAIISampler(seed=seed)``, defaults otherwise: population 50) and
``optuna-motpe`` (``TPESampler(multivariate=True, seed=seed)``), on the directions (maximise, minimise).
"""

from __future__ import annotations

import csv
import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.errors import NasforgeError
from nasforge.estimators import Result, TabularEstimator
from nasforge.pareto import hypervolume, nondominated, normalise
from nasforge.spaces import Architecture, SearchSpace

OPTUNA_MO_REFERENCES = ("optuna-nsga2", "optuna-motpe")


def default_mo_strategies() -> list[str]:
    """What runs when ``--minimize-col`` is given without ``--strategies``: every multi-objective strategy,
    ``random`` and the Optuna references."""
    from nasforge.strategies import list_strategies

    return [*list_strategies(multi_objective=True), "random", *OPTUNA_MO_REFERENCES]


class OptunaMOReference:
    """Ask/tell over an Optuna multi-objective sampler (a reference, not a nasforge strategy)."""

    def __init__(self, space: SearchSpace, seed: int = 0, sampler: str = "nsga2") -> None:
        import warnings

        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if sampler == "nsga2":
                s: optuna.samplers.BaseSampler = optuna.samplers.NSGAIISampler(seed=seed)
            elif sampler == "motpe":
                s = optuna.samplers.TPESampler(multivariate=True, seed=seed)
            else:
                raise NasforgeError(f"unknown optuna multi-objective sampler {sampler!r}; allowed: nsga2, motpe")
        self.space = space
        self.study = optuna.create_study(directions=["maximize", "minimize"], sampler=s)
        self.dists: dict[str, optuna.distributions.BaseDistribution] = {
            d.name: optuna.distributions.CategoricalDistribution(tuple(range(d.n))) for d in space.decisions()}
        self.names = list(self.dists)
        self.open: dict[tuple[int, ...], list[Any]] = {}

    def ask(self) -> Architecture:
        import warnings

        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            trial = self.study.ask(self.dists)
        arch = self.space.decode([int(trial.params[n]) for n in self.names])
        self.open.setdefault(arch.choices, []).append(trial)
        return arch

    def tell(self, arch: Architecture, result: Result) -> None:
        import optuna

        trial = self.open[arch.choices].pop(0)
        if result.ok and result.reward is not None and result.objectives:
            self.study.tell(trial, [float(result.reward), float(result.objectives[0])])
        else:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)


def make_mo_strategy(name: str, space: SearchSpace, seed: int, options: dict[str, Any] | None = None) -> Any:
    if name in OPTUNA_MO_REFERENCES:
        return OptunaMOReference(space, seed, sampler=name.split("-", 1)[1])
    from nasforge.strategies import get_strategy
    from nasforge.strategies._base import check_objectives

    if name != "random":
        check_objectives(name, 2)
    return get_strategy(name, space, seed=seed, **(options or {}))


def read_cost_column(table: TabularEstimator, col: str, space: SearchSpace | None) -> dict[str, float]:
    """Column ``col`` of the table by canonical arch string (every value finite)."""
    with table.path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        if col not in header:
            raise NasforgeError(f"--minimize-col {col!r} not in table {table.path.name}; columns: {', '.join(header)}")
        ia, ic = header.index(table.arch_col), header.index(col)
        out: dict[str, float] = {}
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            text = row[ia].strip() if space is None else str(space.parse(row[ia].strip()))
            try:
                v = float(row[ic])
            except (ValueError, IndexError):
                raise NasforgeError(f"table {table.path.name} line {line}: column {col!r} is not numeric") from None
            if not math.isfinite(v):
                raise NasforgeError(f"table {table.path.name} line {line}: column {col!r} is {v} (must be finite)")
            out[text] = v
    return out


@dataclass(frozen=True)
class Problem:
    """The table seen as a two-objective problem: rows arch -> (reward, final, cost), the normalisation, true HV."""

    rows: dict[str, tuple[float, float, float]]
    lo: tuple[float, float]  # of (-final, cost)
    hi: tuple[float, float]
    true_hv: float

    @staticmethod
    def of(table: TabularEstimator, costs: dict[str, float]) -> Problem:
        rows = {}
        for k, (r, f, _t) in table.rows.items():
            final = r if math.isnan(f) else f
            rows[k] = (r, final, costs[k])
        pts = np.array([(-f, c) for _, f, c in rows.values()])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        true = hypervolume(normalise(pts, lo, hi), (1.0, 1.0))
        return Problem(rows, (float(lo[0]), float(lo[1])), (float(hi[0]), float(hi[1])), true)

    def score(self, queried: Sequence[tuple[float, float, float]]) -> float:
        """HV of the (final, cost) points of the queried archs non-dominated in (reward, cost), over the true HV."""
        if not queried:
            return 0.0
        q = np.array(queried)
        mask = nondominated(np.column_stack([-q[:, 0], q[:, 2]]))
        pts = normalise(np.column_stack([-q[mask, 1], q[mask, 2]]), self.lo, self.hi)
        return hypervolume(pts, (1.0, 1.0)) / self.true_hv if self.true_hv > 0 else 0.0


@dataclass(frozen=True)
class MOTrace:
    strategy: str
    seed: int
    scores: dict[int, float]   # budget -> normalised HV score
    overhead_s: float
    queries: int
    missing: int


def run_one_mo(space: SearchSpace, problem: Problem, name: str, seed: int, budgets: Sequence[int],
               options: dict[str, Any] | None = None) -> MOTrace:
    strategy = make_mo_strategy(name, space, seed, options)
    queried: list[tuple[float, float, float]] = []
    scores: dict[int, float] = {}
    overhead, missing = 0.0, 0
    want = sorted(set(budgets))
    clock = time.perf_counter
    for q in range(1, want[-1] + 1):
        t0 = clock()
        arch = strategy.ask()
        t1 = clock()
        row = problem.rows.get(str(arch))
        if row is None:
            missing += 1
            result = Result.failure(f"{arch} not in table")
        else:
            queried.append(row)
            result = Result(row[0], {"final": row[1]}, {}, 0.0, objectives=(row[2],))
        t2 = clock()
        strategy.tell(arch, result)
        overhead += (t1 - t0) + (clock() - t2)
        if q in want:
            scores[q] = problem.score(queried)
    return MOTrace(name, seed, scores, overhead, want[-1], missing)


_W: dict[str, Any] = {}


def _init(space: SearchSpace, problem: Problem) -> None:
    _W["space"], _W["problem"] = space, problem
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def _one(job: tuple[str, int, list[int], dict[str, Any] | None]) -> MOTrace:
    name, seed, budgets, opts = job
    return run_one_mo(_W["space"], _W["problem"], name, seed, budgets, opts)


@dataclass
class MOBenchmarkResult:
    strategies: dict[str, dict[str, Any]]  # name -> budget -> Stat
    true_hv: float
    settings: dict[str, Any]
    overhead_ms: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    traces: list[MOTrace] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"strategies": {n: {k: s.to_dict() for k, s in by.items()} for n, by in self.strategies.items()},
                "true_hv": self.true_hv, "settings": self.settings, "overhead_ms": self.overhead_ms,
                "seconds": self.seconds}


def run_mo_benchmark(space: SearchSpace, table: TabularEstimator, cost_col: str, strategies: Sequence[str],
                     budgets: Sequence[int], seeds: int | Sequence[int] = 30, workers: int = 1,
                     options: dict[str, dict[str, Any]] | None = None,
                     progress: Callable[[MOTrace], None] | None = None) -> MOBenchmarkResult:
    """Every strategy for every seed up to max(budgets) queries on (reward, ``cost_col``); normalised HV scores."""
    from nasforge.jobs._benchmark import parse_budgets, stat

    budgets = parse_budgets(budgets)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise NasforgeError("seeds must be > 0")
    if not strategies:
        raise NasforgeError("no strategies given")
    for name in strategies:  # fail fast, before any run
        make_mo_strategy(name, space, 0, (options or {}).get(name))
    problem = Problem.of(table, read_cost_column(table, cost_col, space))
    jobs = [(n, s, list(budgets), (options or {}).get(n)) for n in strategies for s in seed_list]
    traces: list[MOTrace] = []
    seconds: dict[str, float] = dict.fromkeys(strategies, 0.0)
    if workers == 1:
        for n, s, b, o in jobs:
            t0 = time.perf_counter()
            tr = run_one_mo(space, problem, n, s, b, o)
            seconds[n] += time.perf_counter() - t0
            traces.append(tr)
            if progress is not None:
                progress(tr)
    else:
        t_start = time.perf_counter()
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init, initargs=(space, problem)) as pool:
            for tr in pool.map(_one, jobs, chunksize=1):
                traces.append(tr)
                if progress is not None:
                    progress(tr)
        seconds = {"all (wall)": time.perf_counter() - t_start}
    by = {n: {str(b): stat([t.scores[b] for t in traces if t.strategy == n]) for b in budgets} for n in strategies}
    overhead = {n: 1e3 * sum(t.overhead_s for t in traces if t.strategy == n)
                / max(1, sum(t.queries for t in traces if t.strategy == n)) for n in strategies}
    settings: dict[str, Any] = {
        "space": space.name, "table": table.path.name, "arch_col": table.arch_col, "reward_col": table.reward_col,
        "final_col": table.final_col, "minimize_col": cost_col, "units": dict(table.units), "budgets": budgets,
        "seeds": len(seed_list), "std": "sample (ddof=1)", "reference": "worst corner (1, 1) after min-max "
        "normalisation of (final, cost) over the table", "missing_queries": sum(t.missing for t in traces),
    }
    if any(n in OPTUNA_MO_REFERENCES for n in strategies):
        import optuna

        settings["optuna"] = {"version": optuna.__version__,
                              "optuna-nsga2": "NSGAIISampler(seed=seed), defaults otherwise",
                              "optuna-motpe": "TPESampler(multivariate=True, seed=seed), defaults otherwise"}
    return MOBenchmarkResult(by, problem.true_hv, settings, overhead, seconds, traces)


def format_mo_table(res: MOBenchmarkResult) -> str:
    keys = list(next(iter(res.strategies.values())).keys()) if res.strategies else []
    width = max([len(n) for n in res.strategies] + [8])
    lines = [" " * width + "  " + "".join(f"{k:>22}" for k in keys) + f"{'ms/query':>10}"]
    for name, row in res.strategies.items():
        cells = "".join(f"{f'{s.mean:.4f} +/- {s.std:.4f} ({s.n})':>22}" for s in row.values())
        lines.append(f"{name:<{width}}  {cells}{res.overhead_ms.get(name, math.nan):>10.3f}")
    lines.append(f"score = HV of the run's front / HV of the true front ({res.true_hv:.4f}, normalised units)")
    return "\n".join(lines)


def write_mo_plot(res: MOBenchmarkResult, path: str | Path) -> Path:
    from nasforge.report import plot_benchmark

    return plot_benchmark({"strategies": res.to_dict()["strategies"], "oracle": {}, "settings": res.settings},
                          path)


def mo_benchmark_job(cfg: Any, out: Path | None, space: SearchSpace, table: TabularEstimator,
                     progress: Callable[[Any, int], None] | None = None) -> MOBenchmarkResult:
    """``benchmark_job`` with ``minimize_col``: the multi-objective protocol, its plot and run folder."""
    import json

    from nasforge._files import atomic_dir, write_atomic
    from nasforge.jobs._benchmark import BenchmarkConfig, _names, parse_budgets
    from nasforge.jobs._runs import CONFIG_NAME, config_text
    from nasforge.report import write_report

    names = _names(cfg.strategies) if cfg.strategies is not None else default_mo_strategies()
    total = len(names) * cfg.seeds
    res = run_mo_benchmark(space, table, cfg.minimize_col, names, parse_budgets(cfg.budgets), cfg.seeds,
                           workers=cfg.workers, options=cfg.strategy_options or None,
                           progress=None if progress is None else (lambda tr: progress(tr, total)))
    if cfg.plot is not None:
        write_mo_plot(res, cfg.plot)
    if out is not None:
        with atomic_dir(out) as stage:
            write_atomic(stage / CONFIG_NAME, config_text(BenchmarkConfig.JOB, cfg.to_dict()))
            write_atomic(stage / "result.json", json.dumps(res.to_dict(), indent=1))
            write_mo_plot(res, stage / "benchmark.png")
            write_report(stage)
    return res
