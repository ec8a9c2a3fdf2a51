"""The search loop and run store on a toy space: round trip, failures, constraints, refusal, determinism."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nasforge.errors import NasforgeError
from nasforge.runner import Constraints, RunStore, run_search
from nasforge.runner._constraints import check_satisfiable, pareto_front, parse_constraint
from nasforge.runner._store import is_run_dir
from runner_toy import MutateBest, ToyEstimator, ToySpace, toy_reward


def _run(tmp: Path | None, budget: int = 20, **kw: object):  # type: ignore[no-untyped-def]
    space = ToySpace()
    est = kw.pop("estimator", ToyEstimator(fail_first=2))
    return run_search(space, MutateBest(space, seed=3), est, budget, seed=3, out_dir=tmp, **kw)  # type: ignore[arg-type]


# -- constraints ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,key,limit", [
    ("macs<=50e6", "macs", 50e6), ("params<=1e6", "params", 1e6), ("params <= 1.5M", "params", 1.5e6),
    ("peak_memory_bytes<=320kB", "peak_memory_bytes", 320e3), ("peak_memory<=320KiB", "peak_memory_bytes", 320 * 1024),
    ("weights<=1MB", "weight_bytes", 1e6), ("weight_bytes<=2MiB", "weight_bytes", 2 * 1024**2),
    ("latency<=5", "latency", 5.0), ("latency<=5ms", "latency", 5.0),
    ("peak_memory<=1000", "peak_memory_bytes", 1000.0),
])
def test_parse_constraint(text: str, key: str, limit: float) -> None:
    c = parse_constraint(text)
    assert (c.key, c.limit, c.strict) == (key, limit, False)


@pytest.mark.parametrize("text", ["macs>=5", "flops<=5", "macs<=abc", "peak_memory<=3 parsecs", "macs<=-1", "", "macs"])
def test_bad_constraint_is_one_line_error(text: str) -> None:
    with pytest.raises(NasforgeError) as e:
        parse_constraint(text)
    assert "\n" not in str(e.value) and "allowed" in str(e.value)


def test_latency_constraint_needs_a_model() -> None:
    with pytest.raises(NasforgeError, match="latency model"):
        Constraints.of(["latency<=5"])
    c = Constraints.of(["latency<=5"], latency_fn=lambda a: float(sum(a.choices)))
    space = ToySpace()
    ok, numbers, bad = c.check(space, space.decode([1, 1, 1, 1, 0]))
    assert ok and numbers["latency"] == 4.0 and not bad
    ok, numbers, bad = c.check(space, space.decode([3, 3, 1, 1, 0]))
    assert not ok and "latency=8" in bad[0]


def test_unsatisfiable_constraint_detected_on_samples() -> None:
    with pytest.raises(NasforgeError, match=r"meets macs<=5e3; smallest seen: macs=\d+"):
        check_satisfiable(ToySpace(), Constraints.of(["macs<=5e3"]))
    check_satisfiable(ToySpace(), Constraints.of(["macs<=50e3"]))


def test_pareto_front() -> None:
    pts = [(0.5, 10.0), (0.7, 20.0), (0.6, 30.0), (0.9, 40.0), (0.5, 5.0), (0.9, 40.0), (0.4, 5.0)]
    assert pareto_front(pts) == [4, 1, 3]  # (0.5, 10) is dominated by (0.5, 5); duplicates keep the first
    assert pareto_front([(1.0, 2.0), (2.0, 1.0), (0.5, 1.0)], maximize=(False, True)) == [0, 2]
    assert pareto_front([]) == []


# -- the loop and the store ----------------------------------------------------------------------------
def test_store_round_trip(tmp_path: Path) -> None:
    res = _run(tmp_path / "run", 15, constraints=["macs<=120e3"])
    assert is_run_dir(tmp_path / "run") and (tmp_path / "run" / "config.yaml").is_file()
    with RunStore.open(tmp_path / "run") as store:
        stored = store.trials()
        events = store.events()
        assert store.config["budget"] == 15 and store.config["constraints"] == ["macs<=120e3"]
        assert store.strategy_state() is not None
    assert [t.key() for t in stored] == [t.key() for t in res.trials]
    asks = [n for k, n in events if k == "ask"]
    tells = [n for k, n in events if k == "tell"]
    assert asks == list(range(len(stored))) and sorted(tells) == asks
    assert sum(t.status != "infeasible" for t in stored) == 15
    ok = [t for t in stored if t.ok]
    assert all(t.reward == toy_reward(t.choices) and t.metrics["acc"] == t.reward for t in ok)
    assert all(t.cost["macs"] == 10_000 * (1 + sum(t.choices)) and t.cost["flash"] == sum(t.choices) for t in ok)
    assert res.best is not None and res.best.reward == max(t.reward for t in ok)  # type: ignore[type-var]
    costs = [t.cost["macs"] for t in res.pareto]
    assert costs == sorted(costs) and res.best in res.pareto
    with sqlite3.connect(tmp_path / "run" / "trials.sqlite") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_failed_estimator_recorded_and_search_goes_on() -> None:
    res = _run(None, 30)
    failed = [t for t in res.trials if t.status == "failed"]
    assert failed and all(t.choices[0] == 2 for t in failed)
    assert all(t.error is not None and t.error.startswith("RuntimeError: boom on") for t in failed)
    assert all(t.reward is None for t in failed)
    assert sum(t.status in ("ok", "failed") for t in res.trials) == 30


def test_nan_reward_is_failed() -> None:
    class NanEstimator:
        def evaluate(self, arch):  # type: ignore[no-untyped-def]
            from nasforge.estimators import Result
            return Result(float("nan"))

    res = _run(None, 3, estimator=NanEstimator())
    assert all(t.status == "failed" and "nan" in (t.error or "") for t in res.trials) and res.best is None


def test_infeasible_filtered_before_evaluation() -> None:
    seen: list[str] = []

    class Spy(ToyEstimator):
        def evaluate(self, arch):  # type: ignore[no-untyped-def]
            seen.append(str(arch))
            return super().evaluate(arch)

    res = _run(None, 25, estimator=Spy(), constraints=["macs<=90e3"])
    inf = [t for t in res.trials if t.status == "infeasible"]
    assert inf, "the toy space must produce some infeasible candidates under this limit"
    assert all(t.cost["macs"] > 90e3 and "breaks macs<=90e3" in (t.error or "") for t in inf)
    assert all(t.arch not in seen or any(u.arch == t.arch and u.status != "infeasible" for u in res.trials)
               for t in inf)
    assert len(seen) == 25 and all(t.cost["macs"] <= 90e3 for t in res.trials if t.status != "infeasible")


def test_max_trials_stops_an_all_infeasible_search() -> None:
    res = _run(None, 5, constraints=["macs<=1"], max_trials=40)
    assert res.stopped == "max_trials" and len(res.trials) == 40 and res.best is None


def test_refuse_non_run_dir(tmp_path: Path) -> None:
    d = tmp_path / "mine"
    d.mkdir()
    (d / "precious.txt").write_text("keep me")
    with pytest.raises(NasforgeError, match="not a nasforge run"):
        _run(d, 3)
    with pytest.raises(NasforgeError, match="not a nasforge run"):
        _run(d, 3, resume=True)
    with pytest.raises(NasforgeError, match="not a nasforge run"):
        _run(tmp_path / "absent", 3, resume=True)
    assert sorted(p.name for p in d.iterdir()) == ["precious.txt"] and (d / "precious.txt").read_text() == "keep me"
    _run(tmp_path / "run", 3)
    with pytest.raises(NasforgeError, match="already a nasforge run"):
        _run(tmp_path / "run", 3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left behind
    empty = tmp_path / "empty"
    empty.mkdir()
    _run(empty, 3)  # an empty folder is fine
    assert is_run_dir(empty)


def test_bad_budget_and_workers() -> None:
    with pytest.raises(NasforgeError, match="budget"):
        _run(None, 0)
    with pytest.raises(NasforgeError, match="workers"):
        _run(None, 3, workers=0)


def test_same_seed_same_trials(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", 25, constraints=["macs<=120e3"])
    b = _run(None, 25, constraints=["macs<=120e3"])
    assert [t.key() for t in a.trials] == [t.key() for t in b.trials]
    space = ToySpace()
    c = run_search(space, MutateBest(space, seed=4), ToyEstimator(fail_first=2), 25, seed=4)
    assert [t.arch for t in c.trials] != [t.arch for t in a.trials]


def test_resume_finished_run_is_identical_and_can_extend(tmp_path: Path) -> None:
    full = _run(None, 30, constraints=["macs<=120e3"])
    _run(tmp_path / "r", 18, constraints=["macs<=120e3"])
    again = _run(tmp_path / "r", 18, constraints=["macs<=120e3"], resume=True)
    assert len(again.trials) < len(full.trials)
    more = _run(tmp_path / "r", 30, constraints=["macs<=120e3"], resume=True)
    assert [t.key() for t in more.trials] == [t.key() for t in full.trials]
    with pytest.raises(NasforgeError, match="constraints was"):
        _run(tmp_path / "r", 30, constraints=["macs<=100e3"], resume=True)


def test_resume_with_another_seed_is_refused(tmp_path: Path) -> None:
    _run(tmp_path / "r", 5)
    space = ToySpace()
    with pytest.raises(NasforgeError, match="seed was 3"):
        run_search(space, MutateBest(space, seed=9), ToyEstimator(), 5, seed=9, out_dir=tmp_path / "r", resume=True)
    with pytest.raises(NasforgeError, match="replayed ask"):  # the seed passed matches but the strategy's does not
        run_search(space, MutateBest(space, seed=9), ToyEstimator(), 5, seed=3, out_dir=tmp_path / "r", resume=True)


def test_progress_callback_sees_every_evaluation() -> None:
    calls: list[tuple[int, int]] = []
    _run(None, 6, progress=lambda t, best, done, budget: calls.append((done, budget)))
    assert calls[-1] == (6, 6) and len(calls) == 6


@pytest.mark.slow
def test_workers_timing_does_not_change_the_run() -> None:
    one = _run(None, 12, constraints=["macs<=120e3"], workers=2)
    two = _run(None, 12, constraints=["macs<=120e3"], workers=2, estimator=ToyEstimator(0.01, fail_first=2))
    assert [t.key() for t in one.trials] == [t.key() for t in two.trials]


def test_strategy_without_state_dict_still_runs(tmp_path: Path) -> None:
    class NoState(MutateBest):
        def state_dict(self):  # type: ignore[no-untyped-def]
            raise NotImplementedError("no state")

    space = ToySpace()
    res = run_search(space, NoState(space, seed=1), ToyEstimator(), 4, out_dir=tmp_path / "r")
    assert len(res.trials) == 4
    with RunStore.open(tmp_path / "r") as store:
        assert store.strategy_state() == {"unavailable": "NotImplementedError: no state"}
