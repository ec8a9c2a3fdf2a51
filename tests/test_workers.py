"""Pool workers: a per-trial timeout, a worker killed mid-evaluation (OOM killer), workers dying with their parent,
and Ctrl-C stopping a search with busy workers at once. Each starts spawned workers (seconds), so all are slow."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harden_toy import Exits, GetsKilled, Hangs, Misbehaves
from nasforge.errors import NasforgeError
from nasforge.runner import run_search
from nasforge.runner._backends import ProcessPoolBackend, die_with_parent
from runner_toy import MutateBest, ToySpace

TESTS = Path(__file__).resolve().parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent / "src"), str(TESTS)])}
pytestmark = pytest.mark.slow


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (Linux /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _tells(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            return int(con.execute("SELECT COUNT(*) FROM events WHERE kind = 'tell'").fetchone()[0])
    except sqlite3.Error:
        return 0


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_trial_timeout_fails_the_trial_and_the_search_goes_on(tmp_path: Path) -> None:
    # one worker: with a timeout the evaluation runs in a pool process all the same (that is what can be stopped)
    space = ToySpace()
    t0 = time.monotonic()
    res = run_search(space, MutateBest(space, seed=6), Hangs(seconds=300), 8, seed=6, out_dir=tmp_path / "run",
                     workers=1, trial_timeout=2.0)
    hung = [t for t in res.trials if t.choices[0] == 3]
    assert hung, "the seed must propose an arch that hangs"
    assert all(t.status == "failed" and "timed out after 2 s" in (t.error or "") for t in hung)
    assert all(t.status == "ok" for t in res.trials if t.choices[0] != 3)
    assert sum(t.status != "infeasible" for t in res.trials) == 8
    assert time.monotonic() - t0 < 200  # nothing waited for the 300 s sleeps


def test_bad_trial_timeout_is_one_line() -> None:
    space = ToySpace()
    for bad in (0, -1.0, float("inf"), float("nan"), "5", True):
        with pytest.raises(NasforgeError, match="trial timeout must be a number of seconds > 0"):
            run_search(space, MutateBest(space), Hangs(), 2, trial_timeout=bad)  # type: ignore[arg-type]


def test_hung_and_killed_workers_with_two_workers(tmp_path: Path) -> None:
    """Two workers: one evaluation hangs past the timeout, another's worker is SIGKILLed (as by the OOM killer);
    both are failed trials with the reason, the evaluations beside them are run again, the search finishes."""
    space = ToySpace()
    res = run_search(space, MutateBest(space, seed=6), Misbehaves(hang=3, kill=2), 10, seed=6,
                     out_dir=tmp_path / "run", workers=2, trial_timeout=2.0)
    by_first = {c: [t for t in res.trials if t.choices[0] == c] for c in range(4)}
    assert by_first[3] and by_first[2], "the seed must propose both kinds"
    assert all(t.status == "failed" and "timed out after 2 s" in (t.error or "") for t in by_first[3]), [
        (t.status, t.error) for t in res.trials]
    assert all(t.status == "failed" and "worker process died" in (t.error or "") for t in by_first[2])
    assert all(t.status == "ok" for t in by_first[0] + by_first[1])
    assert sum(t.status != "infeasible" for t in res.trials) == 10


def test_a_killed_worker_fails_only_its_own_evaluation_without_a_timeout() -> None:
    """The backend knows whose worker died (shared memory, not a guess): with 2 workers and no timeout, every
    evaluation of an arch that kills its worker fails with the signal, every other one (some were in flight beside
    it and ran again in a fresh pool) is ok."""
    space = ToySpace()
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(40)]
    backend = ProcessPoolBackend(GetsKilled(bad=2), workers=2, threads=1)
    try:
        pending = [backend.submit(a) for a in archs]
        results = [p.result()[0] for p in pending]
    finally:
        backend.close()
    killers = [r for a, r in zip(archs, results, strict=True) if a.choices[0] == 2]
    assert killers and all(r.status == "failed" and "worker process died (signal SIGKILL" in (r.error or "")
                           for r in killers)
    others = [r for a, r in zip(archs, results, strict=True) if a.choices[0] != 2]
    assert others and all(r.status == "ok" for r in others), [r.error for r in others if r.status != "ok"]


@pytest.mark.parametrize("workers", [1, 2])
def test_an_estimator_calling_exit_fails_the_trial_not_the_search(workers: int) -> None:
    space = ToySpace()
    res = run_search(space, MutateBest(space, seed=6), Exits(bad=2), 8, seed=6, workers=workers)
    bad = [t for t in res.trials if t.choices[0] == 2]
    assert bad and all(t.status == "failed" and "called exit(3)" in (t.error or "") for t in bad)
    assert all(t.status == "ok" for t in res.trials if t.choices[0] != 2)


def test_workers_die_with_their_parent(tmp_path: Path) -> None:
    cmd = [sys.executable, str(TESTS / "runner_toy.py"), str(tmp_path / "run"), "200", "2", "0.5"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.2)
            workers = [p for p in _children(proc.pid)
                       if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes() and _alive(p)]
        assert len(workers) >= 2, "the pool did not start"
        db = tmp_path / "run" / "trials.sqlite"
        while time.monotonic() < deadline and _tells(db) < 4:  # the workers have started evaluating
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers), "orphaned pool workers still run after their parent died"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_die_with_parent_exits_at_once_when_the_parent_is_gone() -> None:
    code = ("import os, sys; sys.path[:0] = sys.argv[1:2]; from nasforge.runner._backends import die_with_parent; "
            "die_with_parent(os.getppid() + 1000000); print('still here')")
    out = subprocess.run([sys.executable, "-c", code, str(TESTS.parent / "src")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1 and "still here" not in out.stdout
    assert die_with_parent is not None


def test_ctrl_c_with_busy_workers_stops_within_seconds(tmp_path: Path) -> None:
    space = ToySpace()
    calls = []

    def progress(trial, best, done, total):  # type: ignore[no-untyped-def]
        calls.append(time.monotonic())
        if done == 2:
            raise KeyboardInterrupt

    est = Hangs(bad=-1, delay=0.05)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_search(space, MutateBest(space, seed=5), Hangs(bad=0, seconds=300, delay=0.05), 40, seed=5,
                   out_dir=tmp_path / "run", workers=2, progress=progress)
    assert calls and time.monotonic() - calls[-1] < 15, "closing the pool waited for the busy workers"
    assert est is not None and time.monotonic() - t0 < 250
    assert not any(_alive(p) for p in _children(os.getpid()) if b"spawn_main" in _cmdline(p))


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
