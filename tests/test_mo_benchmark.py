"""The multi-objective benchmark protocol (``--minimize-col``): the score by hand on a tiny table, the trajectory
rules on NB201 x a HELP latency column, the ``--json`` shape and the default strategy set, bad input."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from nasforge.cli import main
from nasforge.estimators import TabularEstimator
from nasforge.jobs._mo_benchmark import Problem, default_mo_strategies, read_cost_column, run_one_mo

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _tiny(tmp_path: Path) -> tuple[Problem, list[str]]:
    from runner_toy import ToySpace

    space = ToySpace()
    archs = [str(a) for a in list(space.enumerate())[:4]]
    rows = [(0.9, 0.9, 4), (0.5, 0.8, 1), (0.7, 0.5, 2), (0.1, 0.1, 5)]  # A, B, C, D: (reward, final, cost)
    p = tmp_path / "t.csv"
    p.write_text("a,r,f,c\n" + "".join(f"{a},{r},{f},{c}\n" for a, (r, f, c) in zip(archs, rows, strict=True)))
    table = TabularEstimator(p, "a", "r", final_col="f", space=space)
    return Problem.of(table, read_cost_column(table, "c", space)), archs


def test_score_by_hand(tmp_path: Path) -> None:
    problem, archs = _tiny(tmp_path)
    a, b, c, d = (problem.rows[x] for x in archs)
    # normalised (max final - final, cost) with final in [0.1, 0.9], cost in [1, 5]: A (0, .75) B (.125, 0)
    # C (.5, .25) D (1, 1); the true front is A, B: 0.125 x 0.25 + 0.875 x 1
    assert problem.true_hv == pytest.approx(0.90625)
    assert problem.score([c, d]) == pytest.approx(0.5 * 0.75 / 0.90625)  # D is dominated by C in (reward, cost)
    assert problem.score([a, c]) == pytest.approx((0.5 * 0.25 + 0.5 * 0.75) / 0.90625)
    # B and C are both non-dominated in (reward, cost); scored on (final, cost), C adds nothing to B
    assert problem.score([c, b]) == pytest.approx(0.875 / 0.90625)
    assert problem.score([a, b, c, d]) == pytest.approx(1.0)
    assert problem.score([]) == 0.0


def _join(shared_data: Path, out: Path, rows: int | None) -> Path:
    """NB201 12-epoch val (reward) and test (final) with two HELP latency columns (the first ``rows`` archs)."""
    lat: dict[str, tuple[str, str]] = {}
    with (shared_data / "help_latency" / "nb201_latency_help.csv").open() as f:
        for row in csv.DictReader(f):
            lat[row["arch_str"]] = (row["fpga"], row["pixel3"])
    with (shared_data / "nb201_nats_tss" / "nb201_12ep_acc_minibench.csv").open() as f, out.open("w") as g:
        w = csv.writer(g)
        w.writerow(["a", "val", "test", "fpga", "pixel3"])
        for i, row in enumerate(csv.DictReader(f)):
            if rows is not None and i >= rows:
                break
            w.writerow([row["cellstr"], row["cifar10-val"], row["cifar10-test"], *lat[row["cellstr"]]])
    return out


@pytest.fixture(scope="module")
def joined(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """The first 400 archs (fast to read; asks outside the table count as failed queries)."""
    return _join(shared_data, tmp_path_factory.mktemp("mo") / "joined.csv", 400)


ARGS = ["--space", "nb201", "--arch-col", "a", "--reward-col", "val", "--final-col", "test"]


@pytest.mark.slow
def test_trajectory_is_the_score_of_each_prefix(tmp_path: Path, shared_data: Path) -> None:
    from nasforge.spaces import get_space
    from nasforge.strategies import get_strategy

    space = get_space("nb201")
    table = TabularEstimator(_join(shared_data, tmp_path / "all.csv", None), "a", "val", final_col="test",
                             space=space)
    problem = Problem.of(table, read_cost_column(table, "fpga", space))
    tr = run_one_mo(space, problem, "random", 3, [5, 20])
    strat = get_strategy("random", space, seed=3)
    rows = [problem.rows[str(strat.ask())] for _ in range(20)]
    assert tr.scores == {5: problem.score(rows[:5]), 20: problem.score(rows)}
    assert 0 < tr.scores[5] <= tr.scores[20] <= 1


def test_json_shape_and_default_strategies(joined: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["benchmark", "--table", str(joined), *ARGS, "--minimize-col", "pixel3", "--budgets", "3,6",
               "--seeds", "2", "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert set(d["strategies"]) == {*default_mo_strategies()} >= {"random", "optuna-nsga2", "optuna-motpe",
                                                                  "nsga2", "pareto-local", "mo-surrogate"}
    for row in d["strategies"].values():
        assert set(row) == {"3", "6"}
        for s in row.values():
            assert set(s) == {"mean", "std", "n"} and s["n"] == 2 and 0 <= s["mean"] <= 1
    assert 0 < d["true_hv"] < 1 and d["settings"]["minimize_col"] == "pixel3"


@pytest.mark.parametrize("extra,match", [
    (["--minimize-col", "nope"], "--minimize-col 'nope' not in table joined.csv; columns: a, val, test, fpga, pixel3"),
    (["--minimize-col", "fpga", "--strategies", "evolution"], "strategy 'evolution' optimises one objective"),
    (["--minimize-col", "fpga", "--strategies", "optuna-tpe"], "optimises one objective"),
])
def test_bad_input_is_exit_2_one_line(joined: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                                      match: str) -> None:
    rc = main(["benchmark", "--table", str(joined), *ARGS, "--budgets", "5", "--seeds", "1", *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and match in err and "\n" not in err, err
