"""One writer per run folder: a second writer is refused with one line and writes nothing; the first is unaffected;
readers (the report, sqlite3) still work while the run goes on; a dead holder leaves no stale lock."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nasforge.cli import main
from nasforge.errors import NasforgeError
from nasforge.runner import RunStore, run_search
from nasforge.runner._lock import hold_run, lock_path
from runner_toy import MutateBest, ToyEstimator, ToySpace

TESTS = Path(__file__).resolve().parent

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent / "src"), str(TESTS)])}
# another writer as the lock protocol sees it (flock on the lock file, its pid inside), without importing torch
HOLD = """import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
print('held', flush=True)
time.sleep(60)
"""


def _hold(path: Path) -> subprocess.Popen[str]:
    """Another process holding ``path``'s lock (until killed)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_path(path))], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.slow
def test_second_writer_refused_first_unaffected_readers_work(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, str(TESTS / "runner_toy.py"), str(out), "12", "1", "0.15"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.monotonic() + 60
        while not (out / "trials.sqlite").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended before the second writer could try"
        space = ToySpace()
        with pytest.raises(NasforgeError, match=rf"run {out} is in use by process {first.pid}"):
            run_search(space, MutateBest(space, seed=7), ToyEstimator(), 12, ["macs<=120e3"], seed=7, out_dir=out,
                       resume=True)
        # readers while it runs: the store, plain sqlite3, and the report
        with RunStore.open(out) as store:
            assert store.config["budget"] == 12
        with sqlite3.connect(f"file:{out / 'trials.sqlite'}?mode=ro", uri=True) as con:
            con.execute("SELECT COUNT(*) FROM trials").fetchone()
        assert main(["report", str(out)]) == 0
        assert first.poll() is None, "the second writer's refusal must not stop the first"
        stdout, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0 and stdout.startswith("done"), stderr
    with RunStore.open(out) as store:  # the first run is complete and alone in its store
        trials = store.trials()
        assert sum(t.status in ("ok", "failed") for t in trials) == 12 and all(t.status != "running" for t in trials)
        assert [k for k, _ in store.events()].count("tell") == len(trials)
    assert not lock_path(out).exists()


@pytest.mark.parametrize("job", [pytest.param("search", marks=pytest.mark.slow), "benchmark"])
def test_cli_second_writer_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 job: str) -> None:
    out = tmp_path / "run"
    holder = _hold(out)
    try:
        args = ["search", "--out", str(out), "--budget", "1", "--epochs", "1", "--device", "none"] if job == "search" \
            else ["benchmark", "--table", str(tmp_path / "t.csv"), "--space", "nb201", "--arch-col", "arch",
                  "--reward-col", "acc", "--out", str(out)]
        if job == "benchmark":
            (tmp_path / "t.csv").write_text("arch,acc\n", encoding="utf-8")
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"error: run {out} is in use by process {holder.pid}; wait for it to finish (or stop it) "
                       "before writing to it"]
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    out = tmp_path / "run"
    holder = _hold(out)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert lock_path(out).exists()  # the file stays, the lock went with the process
    space = ToySpace()
    res = run_search(space, MutateBest(space, seed=1), ToyEstimator(), 3, seed=1, out_dir=out)
    assert len(res.trials) >= 3 and not lock_path(out).exists()


def test_lock_is_reentrant_in_one_process(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with hold_run(out):
        space = ToySpace()
        run_search(space, MutateBest(space, seed=1), ToyEstimator(), 2, seed=1, out_dir=out)  # takes it again
        assert lock_path(out).exists()
        run_search(space, MutateBest(space, seed=1), ToyEstimator(), 3, seed=1, out_dir=out, resume=True)
    assert not lock_path(out).exists()


@pytest.mark.slow  # torch.jit export: seconds
def test_export_into_a_run_holds_its_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``export`` into a run's best/ is a writer: refused while another process holds the run (it may be replacing
    best/); exporting elsewhere (``out``) is not."""
    import torch

    from nasforge.jobs import _search

    monkeypatch.setattr(_search, "load_best", lambda run_dir: (torch.nn.Flatten(), (1, 2, 2)))
    out = tmp_path / "run"
    (out / "best").mkdir(parents=True)
    holder = _hold(out)
    try:
        with pytest.raises(NasforgeError, match=f"is in use by process {holder.pid}"):
            _search.export_run(out, "torchscript")
        assert _search.export_run(out, "torchscript", tmp_path / "m.pt").is_file()
    finally:
        holder.kill()
        holder.wait()
    assert _search.export_run(out, "torchscript").is_file()
