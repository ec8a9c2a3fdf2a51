"""Objectives in the runner: the strategy is told a vector, the front and its hypervolume history in the result and
the store, one-line errors for bad objectives, and a multi-objective search killed with SIGKILL resumes identically."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nasforge.errors import NasforgeError
from nasforge.estimators import Result
from nasforge.pareto import nondominated
from nasforge.runner import RunStore, run_search
from nasforge.spaces import Architecture
from nasforge.strategies import get_strategy

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from runner_toy import ToyEstimator, ToySpace  # noqa: E402


class Recording:
    """Wraps a strategy and records every result it is told."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.told = inner, list[Result]()

    def ask(self) -> Architecture:
        return self.inner.ask()  # type: ignore[no-any-return]

    def tell(self, arch: Architecture, result: Result) -> None:
        self.told.append(result)
        self.inner.tell(arch, result)

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()  # type: ignore[no-any-return]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)


def test_strategy_is_told_the_vector_and_the_front_is_non_dominated(tmp_path: Path) -> None:
    space = ToySpace()
    rec = Recording(get_strategy("nsga2", space, seed=3))
    res = run_search(space, rec, ToyEstimator(fail_first=2), 25, seed=3, objectives=["params", "peak_memory"],
                     out_dir=tmp_path / "run")
    ok = [r for r in rec.told if r.ok]
    assert ok and all(r.objectives == (r.cost["params"], r.cost["peak_memory_bytes"]) for r in ok)
    assert all(r.objectives == () for r in rec.told if not r.ok)
    assert res.front is not None and res.front["objectives"] == ["reward", "params", "peak_memory_bytes"]
    by = {t.number: t for t in res.trials}
    pts = np.array([[-(t.reward or 0), t.cost["params"], t.cost["peak_memory_bytes"]] for t in res.trials if t.ok])
    front = [by[n] for n in res.front["front"]]
    assert len(front) == int(nondominated(pts).sum()) and all(t.ok for t in front)
    hv = res.front["hypervolume"]
    assert len(hv) == len(res.trials) and hv[-1] > 0 and all(a <= b for a, b in itertools.pairwise(hv))
    with RunStore.open(tmp_path / "run") as store:
        assert store.front() == res.front and store.config["objectives"] == ["params", "peak_memory_bytes"]
    assert res.to_dict()["front"] == res.front
    # resuming the finished run gives the same front
    again = run_search(space, Recording(get_strategy("nsga2", space, seed=3)), ToyEstimator(fail_first=2), 25, seed=3,
                       objectives=["params", "peak_memory"], out_dir=tmp_path / "run", resume=True)
    assert again.front == res.front


def test_single_objective_runs_are_unchanged() -> None:
    space = ToySpace()
    res = run_search(space, "evolution", ToyEstimator(), 10, seed=1)
    assert res.front is None and "front" not in res.to_dict()


@pytest.mark.parametrize("kwargs,match", [
    ({"strategy": "evolution", "objectives": ["params"]},
     "strategy 'evolution' optimises one objective, not 2; multi-objective strategies: mo-surrogate, nsga2"),
    ({"strategy": "nsga2", "objectives": ["speed"]}, "unknown objective 'speed'; allowed: macs, params"),
    ({"strategy": "nsga2", "objectives": ["latency"]}, "objective latency needs a latency model"),
])
def test_bad_objectives_are_one_line_errors(kwargs: dict[str, Any], match: str) -> None:
    space = ToySpace()
    with pytest.raises(NasforgeError, match=match) as e:
        run_search(space, kwargs["strategy"], ToyEstimator(), 5, objectives=kwargs["objectives"])
    assert "\n" not in str(e.value)


def test_latency_objective_from_a_latency_model() -> None:
    space = ToySpace()
    res = run_search(space, "mo-surrogate", ToyEstimator(), 12, seed=0, objectives=["latency"],
                     latency_fn=lambda a: 1.0 + a.choices[0] * 0.5)
    assert res.front is not None and res.front["objectives"] == ["reward", "latency"]
    assert all(t.cost["latency"] == 1.0 + t.choices[0] * 0.5 for t in res.trials)


@pytest.mark.slow
def test_multi_objective_sigkill_and_resume_equals_uninterrupted_run(tmp_path: Path) -> None:
    from test_runner_resume import BUDGET, DELAY, _kill_when

    space = ToySpace()
    reference = run_search(space, "nsga2", ToyEstimator(fail_first=2), BUDGET, constraints=["macs<=120e3"], seed=7,
                           objectives=["params"])
    out = tmp_path / "run"
    db = out / "trials.sqlite"

    def start(resume: bool) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, str(HERE / "runner_toy.py"), str(out), str(BUDGET), "1", str(DELAY), "--mo"]
        return subprocess.Popen(cmd + (["--resume"] if resume else []), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)

    for i, (min_events, last) in enumerate([(5, "ask"), (30, "ask")]):
        _kill_when(start(resume=i > 0), db, min_events, last)
    proc = start(resume=True)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    with RunStore.open(out) as store:
        trials, front = store.trials(), store.front()
    assert [t.key() for t in trials] == [t.key() for t in reference.trials]
    assert front == reference.front
