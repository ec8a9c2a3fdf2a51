"""Errors of the machine, not of the user or of nasforge, are one line and exit 2: disk full, a read-only folder,
a damaged run store, ``--out`` under a file, a store locked for long. Disk full and read-only need a small tmpfs
(root); where mounting is not allowed those tests skip, saying so."""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nasforge.cli import main
from nasforge.errors import environment_message
from nasforge.estimators import Result
from nasforge.runner import RunStore, run_search
from nasforge.runner._lock import lock_path
from runner_toy import MutateBest, ToyEstimator, ToySpace, toy_reward


@pytest.mark.parametrize("exc,starts", [
    (OSError(errno.ENOSPC, "No space left on device", "/r/x"), "disk full writing /r/x; free some space"),
    (OSError(errno.EROFS, "Read-only file system", "/r/x"), "read-only file system writing /r/x"),
    (PermissionError(errno.EACCES, "Permission denied", "/r/x"), "permission denied: /r/x"),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/f/x"), "a part of the path is a file: /f/x"),
    (sqlite3.OperationalError("database or disk is full"), "disk full while writing the run store"),
    (sqlite3.OperationalError("attempt to write a readonly database"), "cannot write the run store: read-only"),
    (sqlite3.OperationalError("database is locked"), "the run store is locked by another process"),
    (sqlite3.DatabaseError("database disk image is malformed"), "the run store is damaged"),
    (sqlite3.DatabaseError("file is not a database"), "the run store is damaged"),
])
def test_environment_errors_are_one_line(exc: BaseException, starts: str) -> None:
    line = environment_message(exc)
    assert line is not None and line.startswith(starts) and "\n" not in line


def test_a_bug_is_not_an_environment_error() -> None:
    assert environment_message(KeyError("x")) is None and environment_message(TypeError("x")) is None


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


def test_out_under_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("x", encoding="utf-8")
    assert main(["search", "--out", str(tmp_path / "f" / "run"), "--budget", "1", "--device", "none"]) == 2
    assert "which is a file, not a folder" in _one_line(capsys)


def _toy_run(out: Path, budget: int = 6) -> None:
    space = ToySpace()
    run_search(space, MutateBest(space, seed=1), ToyEstimator(), budget, seed=1, out_dir=out)


def test_damaged_store_is_reported_as_damaged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    _toy_run(out)
    db = out / "trials.sqlite"
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the header's tail and the schema page
    db.write_bytes(bytes(data))
    for f in out.glob("trials.sqlite-*"):
        f.unlink()
    assert main(["report", str(out)]) == 2
    assert "is damaged" in _one_line(capsys)
    assert main(["search", "--out", str(out), "--resume"]) == 2
    assert "is damaged" in _one_line(capsys)


def test_garbage_instead_of_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "trials.sqlite").write_bytes(os.urandom(8192))
    assert main(["report", str(out)]) == 2
    assert "damaged" in _one_line(capsys)


# -- tmpfs: disk full and read-only ------------------------------------------------------------------------
def _mount(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (disk-full and read-only tests)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")


def _remount(path: Path, opts: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{opts}", str(path)], check=True, capture_output=True)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    _mount(mnt, "400k")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


class Bulky:
    """The toy reward with a big metric, to fill a small disk quickly."""

    def evaluate(self, arch):  # type: ignore[no-untyped-def]
        r = toy_reward(arch.choices)
        return Result(r, {"acc": r, "notes": "x" * 20_000}, {}, 0.1)


def test_disk_full_is_one_line_and_the_run_resumes(small_fs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = small_fs / "run"
    space = ToySpace()
    with pytest.raises((OSError, sqlite3.Error)) as info:
        run_search(space, MutateBest(space, seed=1), Bulky(), 60, seed=1, out_dir=out)
    assert (environment_message(info.value) or "").startswith("disk full")
    with RunStore.open(out) as store:  # readable
        done = [t for t in store.trials() if t.status != "running"]
    assert 0 < len(done) < 60
    _remount(small_fs, "size=8m")
    res = run_search(space, MutateBest(space, seed=1), Bulky(), 60, seed=1, out_dir=out, resume=True)
    ref = run_search(space, MutateBest(space, seed=1), Bulky(), 60, seed=1)
    assert [t.key() for t in res.trials] == [t.key() for t in ref.trials]


def test_read_only_run_folder_is_one_line(small_fs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = small_fs / "run"
    _remount(small_fs, "size=8m")
    _toy_run(out)
    _remount(small_fs, "ro")
    assert main(["report", str(out)]) == 2
    assert "read-only file system" in _one_line(capsys)
    assert main(["search", "--out", str(small_fs / "new"), "--budget", "1", "--device", "none"]) == 2
    assert "read-only" in _one_line(capsys)
    assert main(["export", str(out)]) == 2  # no best/ in a toy run: refused before writing
    _one_line(capsys)
    space = ToySpace()
    with pytest.raises(Exception) as info:
        run_search(space, MutateBest(space, seed=1), ToyEstimator(), 8, seed=1, out_dir=out, resume=True)
    assert "read-only" in (environment_message(info.value) or str(info.value))


# -- Ctrl-C and SIGTERM ---------------------------------------------------------------------------------------
def _tells(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            return int(con.execute("SELECT COUNT(*) FROM events WHERE kind = 'tell'").fetchone()[0])
    except sqlite3.Error:
        return 0


def _stop_search(out: Path, sig: int, resume: bool) -> tuple[int, str, float]:
    """Start a small search CLI, send ``sig`` once it has told a trial more; (exit code, stderr, seconds to stop)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    cmd = [sys.executable, "-m", "nasforge.cli", "search", "--out", str(out), "--budget", "60", "--epochs", "1",
           "--subset", "200", "--final-epochs", "1", "--device", "none"] + (["--resume"] if resume else [])
    before = _tells(out / "trials.sqlite")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 300
        while _tells(out / "trials.sqlite") <= before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(sig)
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=120)
        return proc.returncode, err, time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_ctrl_c_and_sigterm_stop_cleanly_with_the_resume_line(tmp_path: Path) -> None:
    out = tmp_path / "run"
    hint = f"the run is kept in {out}: continue it with `nasforge search --out {out} --resume`"
    for sig, code, word, resume in ((signal.SIGINT, 130, "interrupted", False),
                                    (signal.SIGTERM, 143, "terminated", True)):
        rc, err, seconds = _stop_search(out, sig, resume)
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert rc == code and lines[-1] == f"{word}; {hint}" and "Traceback" not in err, err
        assert seconds < 30  # a few seconds on a quiet machine; generous for a loaded one
        assert not list(out.glob(".*.tmp*")) and not lock_path(out).exists()
        with RunStore.open(out) as store:  # the store is intact: told trials, a prefix of the event log
            events = store.events()
            assert events and sum(k == "tell" for k, _ in events) == sum(t.status != "running"
                                                                         for t in store.trials())
