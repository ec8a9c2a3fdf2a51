"""The Ray backend with a real Ray: a ``ray start --head`` cluster on 127.0.0.1 (same trials as the local backend,
a worker process SIGKILLed mid-trial, the driver SIGKILLed and resumed), a local ``ray.init(num_cpus=2)``
instance (search and benchmark), and a 3-node ``ray.cluster_utils.Cluster`` losing a node mid-search.

Ray is a test dependency (the ``ray`` extra is in ``make``'s install), so these run in CI; they are slow (Ray
starts in seconds to tens of seconds).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ray  # noqa: E402

from nasforge.runner import RunStore, SearchResult, run_search  # noqa: E402
from nasforge.runner._backends import InlineBackend  # noqa: E402
from ray_toy import MarkingEstimator, RayStartCluster, attempts, ray_env  # noqa: E402
from runner_toy import MutateBest, ToyEstimator, ToySpace  # noqa: E402
from test_runner_resume import _kill_when  # noqa: E402

pytestmark = pytest.mark.slow


def _search(workers: int, **kw: Any) -> SearchResult:
    space = ToySpace()
    est = kw.pop("estimator", None) or ToyEstimator(0.02, fail_first=2)
    return run_search(space, MutateBest(space, seed=7), est, kw.pop("budget", 12), constraints=["macs<=120e3"],
                      seed=7, workers=workers, trial_resources="cpu=1", **kw)


def _in_thread(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def go() -> None:
        try:
            box["result"] = fn()
        except BaseException as e:  # handed to the test
            box["error"] = e

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, box


def _wait_for(cond: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def _told_once(res: SearchResult) -> None:
    assert [t.number for t in res.trials] == list(range(len(res.trials)))
    assert all(t.status in ("ok", "infeasible") for t in res.trials), [(t.status, t.error) for t in res.trials]


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayStartCluster]:
    c = RayStartCluster(num_cpus=2)
    try:
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.stop()


def test_same_trials_local_1_local_2_and_ray_2(cluster: RayStartCluster) -> None:
    """Same seed and in_flight: the same trials (arch, status, reward) on every backend and worker count."""
    one = _search(1, in_flight=2)
    two = _search(2)
    on_ray = _search(2, backend="ray", ray_address=cluster.address)
    assert not ray.is_initialized()  # the backend connected, and disconnected at the end
    keys = [t.key() for t in one.trials]
    assert keys == [t.key() for t in two.trials] == [t.key() for t in on_ray.trials]
    assert {t.status for t in one.trials} >= {"ok", "failed", "infeasible"}  # the estimator's exception: failed


def test_sigkill_a_ray_worker_mid_trial_is_retried_and_recorded_once(cluster: RayStartCluster,
                                                                     tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    thread, box = _in_thread(lambda: _search(2, budget=6, backend="ray", ray_address=cluster.address,
                                             estimator=MarkingEstimator(marks, 1.5), out_dir=tmp_path / "run"))
    arch, [(pid, _node)] = _wait_for(lambda: next(iter(attempts(marks).items()), None))
    os.kill(pid, signal.SIGKILL)
    thread.join(180)
    assert "error" not in box, box.get("error")
    res = box["result"]
    _told_once(res)
    assert len(attempts(marks)[arch]) >= 2  # Ray ran the killed trial again
    assert any(t.arch == arch and t.status == "ok" for t in res.trials)
    with RunStore.open(tmp_path / "run") as store:
        events = store.events()
    tells = [n for k, n in events if k == "tell"]
    assert sorted(tells) == [n for k, n in events if k == "ask"]  # each trial told (recorded) once


def test_sigkill_driver_then_resume_on_ray_gives_the_uninterrupted_trials(cluster: RayStartCluster,
                                                                          tmp_path: Path) -> None:
    budget, out = 20, tmp_path / "run"
    est = ToyEstimator(fail_first=2)
    reference = _search(2, budget=budget, estimator=est, backend=InlineBackend(est))  # the schedule of 2 workers

    def start(resume: bool) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, str(HERE / "runner_toy.py"), str(out), str(budget), "2", "0.05",
               "--ray", cluster.address, *(["--resume"] if resume else [])]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                env=ray_env())

    _kill_when(start(False), out / "trials.sqlite", 6, "ask")
    proc = start(True)
    _stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    with RunStore.open(out) as store:
        assert [t.key() for t in store.trials()] == [t.key() for t in reference.trials]


def test_local_ray_instance_search_and_benchmark(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``ray.init(num_cpus=2)`` in this process: the backend uses it (and leaves it running); the benchmark harness
    spreads its seeds over it with the same result as locally."""
    from nasforge.estimators import TabularEstimator
    from nasforge.jobs._benchmark import run_benchmark

    for k, v in ray_env().items():
        monkeypatch.setenv(k, v)
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        est = ToyEstimator(0.02, fail_first=2)
        local = _search(2, estimator=est, backend=InlineBackend(est))  # the schedule of 2 workers, no pool to spawn
        on_ray = _search(2, backend="ray")
        assert ray.is_initialized()
        assert [t.key() for t in local.trials] == [t.key() for t in on_ray.trials]
        space = ToySpace()
        table = tmp_path / "t.csv"
        table.write_text("a,r\n" + "".join(f"{a},{(i * 37 % 101) / 100}\n" for i, a in enumerate(space.enumerate())))
        est = TabularEstimator(table, "a", "r", space=space, percent=False)
        args = (space, est, ["random", "evolution"], [5, 20], 4)
        here = run_benchmark(*args, workers=1)
        there = run_benchmark(*args, workers=2, backend="ray")
        assert here.to_dict()["strategies"] == there.to_dict()["strategies"]
    finally:
        ray.shutdown()


def test_remove_a_node_of_a_3_node_cluster_mid_search(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ray.cluster_utils import Cluster

    for k, v in ray_env().items():
        monkeypatch.setenv(k, v)
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    nodes = [c.add_node(num_cpus=1) for _ in range(2)]
    marks = tmp_path / "marks"
    marks.mkdir()
    try:
        ray.init(address=c.address, log_to_driver=False)
        thread, box = _in_thread(lambda: _search(2, budget=8, backend="ray", estimator=MarkingEstimator(marks, 1.0),
                                                 out_dir=tmp_path / "run"))
        _arch, [(_pid, node_id)] = _wait_for(lambda: next(iter(attempts(marks).items()), None))
        victim = next(n for n in nodes if n.node_id == node_id)
        c.remove_node(victim, allow_graceful=False)
        c.add_node(num_cpus=1)  # the search goes on where there is room
        thread.join(240)
        assert "error" not in box, box.get("error")
        res = box["result"]
        _told_once(res)
        assert sum(t.status == "ok" for t in res.trials) == 8
    finally:
        ray.shutdown()
        c.shutdown()
