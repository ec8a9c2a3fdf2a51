"""Kill-and-resume: a search in a subprocess is killed with SIGKILL mid-run at a few points, resumed, and
compared trial by trial with an uninterrupted run (same seed)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from nasforge.runner import RunStore, run_search  # noqa: E402
from runner_toy import MutateBest, ToyEstimator, ToySpace  # noqa: E402

BUDGET = 30
DELAY = 0.04  # seconds per evaluation: long enough to catch trials in flight


def _events(db: Path) -> list[str]:
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0)
        try:
            return [r[0] for r in con.execute("SELECT kind FROM events ORDER BY seq")]
        finally:
            con.close()
    except sqlite3.Error:
        return []


def _start(out: Path, workers: int, resume: bool) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, str(HERE / "runner_toy.py"), str(out), str(BUDGET), str(workers), str(DELAY)]
    if resume:
        cmd.append("--resume")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _kill_when(proc: subprocess.Popen[bytes], db: Path, min_events: int, last: str | None) -> list[str]:
    """SIGKILL the process group once the store has ``min_events`` events (and the last is ``last``)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ev = _events(db)
        if len(ev) >= min_events and (last is None or ev[-1] == last):
            break
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"run ended before the kill point: {out.decode()} {err.decode()[-2000:]}")
        time.sleep(0.003)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return _events(db)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_and_resume_equals_uninterrupted_run(tmp_path: Path, workers: int) -> None:
    space = ToySpace()
    reference = run_search(space, MutateBest(space, seed=7), ToyEstimator(fail_first=2), BUDGET,
                           constraints=["macs<=120e3"], seed=7, workers=workers)
    out = tmp_path / "run"
    db = out / "trials.sqlite"
    left_running = 0
    for i, (min_events, last) in enumerate([(5, "ask"), (24, None), (43, "ask")]):
        ev = _kill_when(_start(out, workers, resume=i > 0), db, min_events, last)
        assert len(ev) >= min_events
        with RunStore.open(out) as store:
            left_running += sum(t.status == "running" for t in store.trials())
    assert left_running > 0, "no kill point caught a trial in flight"
    proc = _start(out, workers, resume=True)
    _stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    with RunStore.open(out) as store:
        trials = store.trials()
        events = store.events()
    assert [t.key() for t in trials] == [t.key() for t in reference.trials]
    asks = [n for k, n in events if k == "ask"]
    tells = [n for k, n in events if k == "tell"]
    assert asks == list(range(len(trials))) and sorted(tells) == asks  # nothing lost, nothing duplicated
    assert all(t.status != "running" for t in trials)
    # a final resume of the finished run changes nothing and gives the same best
    again = run_search(space, MutateBest(space, seed=7), ToyEstimator(fail_first=2), BUDGET,
                       constraints=["macs<=120e3"], seed=7, workers=workers, out_dir=out, resume=True)
    assert reference.best is not None and again.best is not None and again.best.key() == reference.best.key()
