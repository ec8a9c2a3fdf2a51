"""Results are validated at the runner's boundary: whatever a custom estimator returns, the run stores clean values
(or a failed trial with the reason) and can be resumed and reported afterwards."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nasforge.estimators import Result
from nasforge.report import write_report
from nasforge.runner import RunStore, run_search
from nasforge.runner._validate import valid_result
from runner_toy import MutateBest, ToySpace


class Odd:
    """Not JSON: a metric of this type fails the trial."""


@pytest.mark.parametrize("reward,expect", [
    (np.float32(0.5), 0.5), (np.float64(0.25), 0.25), (torch.tensor(0.75), 0.75), (torch.tensor([0.5]), 0.5),
    (np.array(0.125), 0.125), (1, 1.0), (np.int64(1), 1.0),
])
def test_reward_scalars_become_python_floats(reward: Any, expect: float) -> None:
    res = valid_result(Result(reward, {"acc": np.float32(0.5)}, {"macs": np.int64(7)}, np.float64(1.5)))
    assert res.status == "ok" and type(res.reward) is float and res.reward == expect
    assert type(res.metrics["acc"]) is float and type(res.cost["macs"]) is int and type(res.seconds) is float


@pytest.mark.parametrize("reward,why", [
    (float("nan"), "reward is nan"), (float("inf"), "reward is inf"), (np.float32("nan"), "reward is nan"),
    (torch.tensor([0.1, 0.2]), "2 elements"), ("0.5", "not a number"), (True, "not a number"),
    (None, "reward is None"), (torch.tensor(float("-inf")), "reward is -inf"),
])
def test_bad_reward_fails_the_trial(reward: Any, why: str) -> None:
    res = valid_result(Result(reward, {"acc": 0.5}))
    assert res.status == "failed" and res.reward is None and why in (res.error or "")


@pytest.mark.parametrize("field,value,why", [
    ("metrics", {"acc": Odd()}, "metrics['acc'] is a Odd"), ("metrics", {1: 0.5}, "not a string"),
    ("metrics", [0.5], "not a mapping"), ("cost", {"macs": float("nan")}, "cost['macs'] is nan"),
    ("cost", {"macs": torch.ones(3)}, "3 elements"), ("seconds", "fast", "seconds is str"),
    ("seconds", -1.0, "negative"), ("seconds", float("nan"), "seconds is nan"),
])
def test_unstorable_metrics_cost_seconds_fail_the_trial(field: str, value: Any, why: str) -> None:
    kw: dict[str, Any] = {"reward": 0.5, "metrics": {}, "cost": {}, "seconds": 1.0, field: value}
    res = valid_result(Result(**kw))
    assert res.status == "failed" and res.reward is None and why in (res.error or ""), res.error


def test_none_metrics_and_seconds_and_nonfinite_metric() -> None:
    res = valid_result(Result(0.5, None, None, None), wall=2.5)  # type: ignore[arg-type]
    assert res.ok and res.metrics == {} and res.cost == {} and res.seconds == 2.5
    res = valid_result(Result(0.5, {"loss": float("nan"), "hist": [np.float32(1), {"a": "x"}], "flag": True}))
    assert res.ok and res.metrics == {"loss": None, "hist": [1.0, {"a": "x"}], "flag": True}
    assert valid_result(42).status == "failed"
    assert valid_result(Result.failure("x" * 5000)).error is not None
    assert len(valid_result(Result.failure("x" * 5000)).error or "") < 2100


class Weird:
    """A custom estimator that returns everything the issue saw crash the loop (which, by ``kind(arch)``)."""

    OK = (0, 1, 3, 7)

    @staticmethod
    def kind(choices: Any) -> int:
        return (3 * choices[0] + choices[1] + 2 * choices[2] + choices[4]) % 8

    def evaluate(self, arch: Any) -> Any:
        r = 0.1 + 0.01 * sum(arch.choices)
        kind = self.kind(arch.choices)
        if kind == 0:
            return Result(np.float32(r), {"acc": np.float32(r)}, {}, 0.1)
        if kind == 1:
            return Result(torch.tensor(r), {"acc": torch.tensor(r)}, {}, 0.1)  # type: ignore[arg-type]
        if kind == 2:
            return Result(r, {"bad": Odd()}, {}, 0.1)
        if kind == 3:
            return Result(r, None, {}, None)  # type: ignore[arg-type]
        if kind == 4:
            return Result(float("nan"), {}, {}, 0.1)
        if kind == 5:
            return Result(r, {(1, 2): 3}, {}, 0.1)  # type: ignore[dict-item]
        if kind == 6:
            return {"reward": r}
        return Result(r, {"loss": float("inf")}, {"macs": np.int32(5)}, np.float16(0.5))


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_odd_estimator_run_resumes_and_reports(tmp_path: Path, workers: int) -> None:
    space = ToySpace()
    out = tmp_path / "run"
    res = run_search(space, MutateBest(space, seed=2), Weird(), 16, seed=2, out_dir=out, workers=workers)
    assert len(res.trials) == 16
    assert [t.status for t in res.trials] == ["ok" if Weird.kind(t.choices) in Weird.OK else "failed"
                                              for t in res.trials]
    assert len({Weird.kind(t.choices) for t in res.trials}) >= 7, "the seed must try (nearly) every kind"
    assert all(t.error for t in res.trials if t.status == "failed")
    with sqlite3.connect(out / "trials.sqlite") as con:  # stored as REAL/NULL, never a BLOB
        kinds = {r[0] for r in con.execute("SELECT typeof(reward) FROM trials")}
        assert kinds <= {"real", "null"}
        for m, c in con.execute("SELECT metrics, cost FROM trials"):
            json.loads(m), json.loads(c)
    # resume (extending the budget) and the report both read it back
    again = run_search(space, MutateBest(space, seed=2), Weird(), 20, seed=2, out_dir=out, resume=True)
    assert [t.key() for t in again.trials[:16]] == [t.key() for t in res.trials]
    html = write_report(out).read_text(encoding="utf-8")
    failed = [t for t in again.trials if t.status == "failed"]
    assert f"Failed trials ({len(failed)})" in html and "invalid result: reward is nan" in html  # the report lists them
    with RunStore.open(out) as store:
        assert all(t.reward is None or type(t.reward) is float for t in store.trials())


def test_old_store_with_blob_reward_still_reads(tmp_path: Path) -> None:
    space = ToySpace()
    out = tmp_path / "run"
    run_search(space, MutateBest(space, seed=1), Weird(), 4, seed=1, out_dir=out)
    with sqlite3.connect(out / "trials.sqlite") as con:  # what an old version stored for a numpy.float32 reward
        con.execute("UPDATE trials SET reward = ? WHERE number = 0", (np.float32(0.5).tobytes(),))
    with RunStore.open(out) as store:
        assert store.trials()[0].reward == 0.5
