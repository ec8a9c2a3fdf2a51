"""The benchmark harness and ``nasforge benchmark`` on the real NB201 table (small: 3 seeds, budgets 5,10)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from nasforge.cli import main
from nasforge.estimators import TabularEstimator
from nasforge.jobs._benchmark import RunTrace, run_one


def _space():  # type: ignore[no-untyped-def]
    from nasforge.spaces import get_space

    return get_space("nb201")


@pytest.fixture(scope="module")
def joined(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A small joined table: 12-epoch val (reward), 12-epoch test (final), a time column from the 200-ep file."""
    data = shared_data / "nb201_nats_tss"
    times: dict[str, str] = {}
    with (data / "nats_tss_cifar10-valid_200ep_mean3seeds_full_metrics.csv").open() as f:
        for row in csv.DictReader(f):
            times[row["arch_str"]] = row["train-all-time"]
    out = tmp_path_factory.mktemp("bench") / "joined.csv"
    with (data / "nb201_12ep_acc_minibench.csv").open() as f, out.open("w", newline="") as g:
        w = csv.writer(g)
        w.writerow(["a", "val", "test", "secs", "word"])
        for row in csv.DictReader(f):
            w.writerow([row["cellstr"], row["cifar10-val"], row["cifar10-test"], times[row["cellstr"]], "x"])
    return out


ARGS = ["--space", "nb201", "--arch-col", "a", "--reward-col", "val", "--final-col", "test"]


def test_json_shape_and_protocol(joined: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _space()
    rc = main(["benchmark", "--table", str(joined), *ARGS, "--time-col", "secs", "--time-scale", "12/200",
               "--time-budget", "1000", "--strategies", "random,evolution", "--budgets", "5,10", "--seeds", "3",
               "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    d = json.loads(out)
    assert set(d["strategies"]) == {"random", "evolution"}
    for row in d["strategies"].values():
        assert set(row) == {"5", "10", "1000s"}
        for s in row.values():
            assert set(s) == {"mean", "std", "n"} and s["n"] == 3 and 0 < s["mean"] <= 1  # fractions
    assert d["oracle"]["best_final"] == pytest.approx(0.8916)  # max 12-epoch cifar10-test, 89.16 % (PROVENANCE.md)
    assert d["settings"]["units"] == {"val": "percent", "test": "percent"}
    assert d["oracle"]["archs"] == 15625


def test_trajectory_rules(joined: Path) -> None:
    space = _space()
    est = TabularEstimator(joined, "a", "val", final_col="test", time_col="secs", time_scale=12 / 200, space=space)
    tr: RunTrace = run_one(space, est, "random", seed=1, max_queries=30, time_budget=1000.0)

    # replay the same random strategy and apply the rules by hand
    from nasforge.strategies import get_strategy

    strat = get_strategy("random", space, seed=1)
    archs = [str(strat.ask()) for _ in range(tr.queries)]
    best_r, expect, spent, time_expect, n_time = -math.inf, [], 0.0, None, 0
    open_ = True
    for a in archs:
        r, f, s = est.rows[a]
        if open_ and spent + s > 1000.0:
            open_, time_expect = False, expect[-1] if expect else None
        elif open_:
            spent, n_time = spent + s, n_time + 1
        if r > best_r:  # ties keep the first seen
            best_r, best_f = r, f
        expect.append(best_f)
    assert list(tr.finals) == expect[:30]
    assert tr.time_final == time_expect and tr.time_queries == n_time
    assert 0 < n_time < tr.queries


def test_ties_keep_the_first_seen_and_repeats_count(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from runner_toy import ToySpace

    space = ToySpace()
    p = tmp_path / "t.csv"
    archs = [str(a) for a in space.enumerate()]
    p.write_text("a,r,f\n" + "".join(f"{a},1.0,{i}\n" for i, a in enumerate(archs)))  # every reward ties
    est = TabularEstimator(p, "a", "r", final_col="f", space=space, percent=False)  # f is an index, not accuracy
    tr = run_one(space, est, "random", seed=0, max_queries=50)
    assert len(set(tr.finals)) == 1 and tr.queries == 50


@pytest.mark.slow
def test_plot_and_text_table(joined: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _space()
    png = tmp_path / "b.png"
    rc = main(["benchmark", "--table", str(joined), *ARGS, "--strategies", "random", "--budgets", "5,10",
               "--seeds", "3", "--plot", str(png)])
    out = capsys.readouterr().out
    assert rc == 0 and png.stat().st_size > 1000
    assert "random" in out and "+/-" in out and "oracle" in out


@pytest.mark.parametrize("extra,match", [
    (["--reward-col", "nope"], "reward column 'nope' not in table joined.csv; columns: a, val, test, secs, word"),
    (["--reward-col", "word"], "column 'word' is not numeric"),
    (["--arch-col", "val"], "does not parse in space 'nb201'"),
    (["--budgets", "5,0"], "budget 0 must be > 0"),
    (["--budgets", "5,x"], "bad budget 'x'"),
    (["--strategies", "random,nosuch"], "unknown strategy 'nosuch'"),
    (["--time-budget", "100"], "--time-budget needs --time-col"),
    (["--time-scale", "1/0", "--time-col", "secs"], "bad --time-scale"),
    (["--seeds", "0"], "--seeds must be >= 1"),
])
def test_bad_input_is_exit_2_one_line(joined: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                                      match: str) -> None:
    _space()
    args = ["benchmark", "--table", str(joined), *ARGS, "--strategies", "random", "--budgets", "5", "--seeds", "1"]
    rc = main(args + extra)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and match in err and "\n" not in err, err


def test_missing_table_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["benchmark", "--table", str(tmp_path / "none.csv"), *ARGS, "--budgets", "5", "--seeds", "1"])
    assert rc == 2 and "not found" in capsys.readouterr().err


@pytest.mark.slow
def test_workers_give_the_same_numbers(joined: Path) -> None:
    from nasforge.jobs._benchmark import run_benchmark

    space = _space()
    est = TabularEstimator(joined, "a", "val", final_col="test", time_col="secs", time_scale=0.06, space=space)
    one = run_benchmark(space, est, ["random", "evolution"], [5, 20], 4, time_budget=900.0, workers=1)
    two = run_benchmark(space, est, ["random", "evolution"], [5, 20], 4, time_budget=900.0, workers=2)
    assert one.to_dict()["strategies"] == two.to_dict()["strategies"]
    assert [t.finals for t in one.traces] == [t.finals for t in two.traces]


@pytest.mark.slow
def test_out_writes_a_benchmark_run_folder(joined: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nasforge.jobs._runs import job_of

    cfg = tmp_path / "b.yaml"
    cfg.write_text(f"table: {joined}\narch_col: a\nreward_col: val\nfinal_col: test\nstrategies: [random]\n"
                   "budgets: [5, 10]\nseeds: 2\n")
    out = tmp_path / "run"
    assert main(["benchmark", "--config", str(cfg), "--out", str(out), "--json"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result == json.loads(capsys.readouterr().out)
    assert set(result["strategies"]["random"]) == {"5", "10"} and result["settings"]["seeds"] == 2
    assert (out / "benchmark.png").stat().st_size > 1000 and job_of(out) == "benchmark"
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0 and "+/-" in (out / "report.html").read_text()
    assert main(["benchmark", "--config", str(cfg), "--out", str(out)]) == 2
    assert "already holds a benchmark run" in capsys.readouterr().err
