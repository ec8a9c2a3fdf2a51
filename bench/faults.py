"""Fault injection for issue 17: SIGKILL at random moments across every phase of a search job, concurrent writers,
the fuzzed parsers, the disk-full / read-only checks. Prints markdown tables for bench/RESULTS.md.

1. Kill and resume: a small ``nasforge search`` (digits subset, tiny budget, 1 epoch, final training 1 epoch) is
   run once uninterrupted per worker count (the reference), then ``--kills`` times SIGKILLed at a random moment
   (each kill aims at one phase in turn: start-up, trials, final training, ONNX export, report; the moment inside
   it is random, found from the files the run writes: see ``kill_at``) and continued with ``--resume`` (started
   afresh when the kill came before the run store existed).
   Each ends compared with the reference: the same trials (``Trial.key()``: arch, status, reward, metrics, cost,
   error), every artefact of the README (store, config.yaml, best/model.pt, best/model.onnx, best/summary.json,
   pareto.png, history.png, report.html), no temporary file or folder and no lock file left. The phase a kill hit is
   read from the files it left (no store: start-up; tells < budget: trials; a ``.best.*`` folder holding model.pt:
   ONNX export; none: final training; best/ but no fresh report.html: report).
2. Concurrent writers: ``--pairs`` times two writers on one folder (the toy search of tests/runner_toy.py; half the
   pairs both new runs, half a new run and a ``--resume`` started just after): exactly one may write; the store must
   pass ``PRAGMA integrity_check`` and hold each trial once, asked and told once (0 double writes).
3. Fuzz: ``pytest tests/test_fuzz_parsers.py --hypothesis-profile PROFILE --hypothesis-show-statistics``: examples
   tried per parser and failures.
4. Disk full and read-only on a small tmpfs (tests/test_environment.py; skipped where mounting is not allowed).

Run: ``PYTHONPATH=src nice -n 10 .venv/bin/python bench/faults.py --kills 15 --toy-kills 10`` (per worker count;
parts can run in parallel: ``--workers 1``, ``--skip kills,fuzz,disk`` and so on).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests")])}
ARTEFACTS = ["trials.sqlite", "config.yaml", "best/model.pt", "best/model.onnx", "best/summary.json", "pareto.png",
             "history.png", "report.html"]


def search_cmd(out: Path, workers: int, resume: bool) -> list[str]:
    return [sys.executable, "-m", "nasforge.cli", "search", "--out", str(out), "--budget", "4", "--epochs", "1",
            "--subset", "120", "--final-epochs", "1", "--device", "none", "--workers", str(workers), "--seed", "3",
            *(["--resume"] if resume else [])]


def trial_keys(run: Path) -> list[Any]:
    sys.path.insert(0, str(REPO / "src"))
    from nasforge.runner import RunStore

    with RunStore.open(run) as store:
        return [_untimed(t.key()) for t in store.trials()]


TIMED = ("seconds", "per_s")
"""Metrics that measure the machine, not the trial (train_seconds, images_per_s, ...): they differ between any two
runs, so the comparison leaves them out; everything else of a trial (arch, status, reward, cost, error) must match."""


def _untimed(key: tuple[Any, ...]) -> tuple[Any, ...]:
    out = []
    for v in key:
        if isinstance(v, str) and v.startswith("{"):
            try:
                d = json.loads(v)
            except ValueError:
                d = None
            if isinstance(d, dict):
                v = json.dumps({k: x for k, x in d.items() if not any(t in k for t in TIMED)}, sort_keys=True)
        out.append(v)
    return tuple(out)


def tells(run: Path) -> int:
    db = run / "trials.sqlite"
    if not db.is_file():
        return -1
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            return int(con.execute("SELECT COUNT(*) FROM events WHERE kind = 'tell'").fetchone()[0])
    except sqlite3.Error:
        return -1


TARGETS = ["start-up", "trials", "final training", "onnx export", "report"]


def kill_at(proc: subprocess.Popen[bytes], run: Path, target: str, budget: int, rng: random.Random) -> float | None:
    """SIGKILL ``proc`` at a random moment of phase ``target``, found from the files it writes (robust to a slow,
    loaded machine, unlike a fixed delay): start-up: 0-3 s after the start; trials: a random number of trials told,
    then 0-0.5 s; final training: all told, then 0-1 s; onnx export: once the temporary best/ holds model.pt, then
    0-0.3 s; report: once best/ is in place, then 0-0.5 s. Returns the seconds after start, or None when the process
    ended first. The process group is killed (pool workers too, as an OOM kill of the whole job would)."""
    t0 = time.monotonic()
    k = rng.randrange(budget)
    extra = {"start-up": 3.0, "trials": 0.5, "final training": 1.0, "onnx export": 0.3, "report": 0.5}[target]

    def reached() -> bool:
        if target == "start-up":
            return True
        if target == "trials":
            return tells(run) > k
        if target == "final training":
            return tells(run) >= budget
        if target == "onnx export":
            return any((p / "model.pt").is_file() for p in run.glob(".best.*.tmp"))
        return (run / "best").is_dir()

    while not reached():
        if proc.poll() is not None:
            return None
        time.sleep(0.02)
    time.sleep(rng.uniform(0, extra))
    if proc.poll() is not None:
        return None
    os.kill(proc.pid, signal.SIGKILL)  # the main process only: its pool workers must die with it by themselves
    proc.wait()
    time.sleep(1.0)  # orphans, if any, would still be alive now
    return time.monotonic() - t0


def phase_after_kill(run: Path, budget: int, started: float) -> str:
    if not (run / "trials.sqlite").is_file():
        return "start-up"
    if tells(run) < budget:
        return "trials"
    temp = [p for p in run.glob(".best.*.tmp") if p.is_dir()]
    if not (run / "best").is_dir():
        return "onnx export" if any((p / "model.pt").is_file() for p in temp) else "final training"
    report = run / "report.html"
    return "report" if not report.is_file() or report.stat().st_mtime < started else "after report"


def leftovers(run: Path) -> list[str]:
    bad = [p.name for p in run.glob(".*.tmp*")] + [p.name for p in (run / "best").glob(".*.tmp*")]
    bad += [p.name for p in run.parent.glob(f".{run.name}.*.tmp")]
    if (run.parent / f".{run.name}.lock").exists():
        bad.append("lock file")
    return bad


def toy_cmd(out: Path, workers: int, resume: bool) -> list[str]:
    """The toy search of tests/runner_toy.py (a tell-dependent strategy, failures, constraints; 0.2 s trials)."""
    return [sys.executable, str(REPO / "tests" / "runner_toy.py"), str(out), "12", str(workers), "0.2",
            *(["--resume"] if resume else [])]


def toy_kills(root: Path, workers: int, kills: int, rng: random.Random) -> list[dict[str, Any]]:
    """Kill and resume the toy search (the trial phase only, cheaply): same trials as uninterrupted."""
    ref = root / f"toyref-w{workers}"
    rc, _, err = run_to_end(toy_cmd(ref, workers, False))
    assert rc == 0, err
    want = trial_keys(ref)
    rows = []
    for i in range(kills):
        run = root / f"toykill-w{workers}-{i}"
        proc = subprocess.Popen(toy_cmd(run, workers, False), env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        delay = kill_at(proc, run, "trials", 12, rng)
        phase = "finished first" if delay is None else ("start-up" if tells(run) < 0 else "trials")
        orphans = _orphans(proc.pid)
        resumed = (run / "trials.sqlite").is_file()
        rc, _, err = run_to_end(toy_cmd(run, workers, resumed))
        rows.append({"job": "toy", "workers": workers, "phase": phase, "resume": resumed,
                     "rc": rc, "same_trials": rc == 0 and trial_keys(run) == want,
                     "missing": [] if (run / "trials.sqlite").is_file() else ["trials.sqlite"],
                     "leftovers": leftovers(run), "orphans": orphans})
        print(json.dumps(rows[-1]), flush=True)
        shutil.rmtree(run, ignore_errors=True)
    return rows


def run_to_end(cmd: list[str]) -> tuple[int, float, str]:
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    return p.returncode, time.monotonic() - t0, p.stderr


def kill_and_resume(root: Path, workers: int, kills: int, rng: random.Random) -> list[dict[str, Any]]:
    ref = root / f"ref-w{workers}"
    rc, _, err = run_to_end(search_cmd(ref, workers, False))
    assert rc == 0, err
    want = trial_keys(ref)
    rows = []
    for i in range(kills):
        run = root / f"kill-w{workers}-{i}"
        target = TARGETS[i % len(TARGETS)]
        started = time.time()
        proc = subprocess.Popen(search_cmd(run, workers, False), env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        delay = kill_at(proc, run, target, 4, rng)
        phase = "finished first" if delay is None else phase_after_kill(run, 4, started)
        orphans = _orphans(proc.pid)
        resumed = (run / "trials.sqlite").is_file()
        rc, _, err = run_to_end(search_cmd(run, workers, resumed))
        same = rc == 0 and trial_keys(run) == want
        missing = [a for a in ARTEFACTS if not (run / a).is_file()]
        rows.append({"job": "search", "workers": workers, "target": target, "phase": phase, "resume": resumed,
                     "rc": rc, "same_trials": same, "missing": missing, "leftovers": leftovers(run),
                     "orphans": orphans, "error": "" if rc == 0 else err.strip().splitlines()[-1:]})
        print(json.dumps(rows[-1]), flush=True)
        shutil.rmtree(run, ignore_errors=True)
    return rows


def _orphans(pid: int) -> int:
    """Processes still running whose command line names a spawned worker of ``pid``'s session (pool workers)."""
    n = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if os.getsid(int(d.name)) == pid and b"spawn_main" in (d / "cmdline").read_bytes():
                n += 1
        except OSError:
            continue
    return n


def writers(root: Path, pairs: int) -> dict[str, int]:
    toy = str(REPO / "tests" / "runner_toy.py")
    out = {"pairs": pairs, "both_wrote": 0, "one_wrote": 0, "refused_in_use": 0, "corrupt": 0, "double_writes": 0}
    for i in range(pairs):
        run = root / f"pair-{i}"
        a = subprocess.Popen([sys.executable, toy, str(run), "10", "1", "0.05"], env=ENV, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        if i % 2:  # a resume racing the run it continues
            deadline = time.monotonic() + 120
            while not (run / "trials.sqlite").exists() and time.monotonic() < deadline and a.poll() is None:
                time.sleep(0.05)
            b = subprocess.Popen([sys.executable, toy, str(run), "10", "1", "0.05", "--resume"], env=ENV,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        else:
            b = subprocess.Popen([sys.executable, toy, str(run), "10", "1", "0.05"], env=ENV, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        results = [(p.wait(), *p.communicate()) for p in (a, b)]
        ok = [r for r in results if r[0] == 0]
        out["both_wrote" if len(ok) == 2 else "one_wrote"] += 1 if ok else 0
        out["refused_in_use"] += sum("is in use by process" in r[2] for r in results)
        with sqlite3.connect(run / "trials.sqlite") as con:
            if con.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                out["corrupt"] += 1
            numbers = [r[0] for r in con.execute("SELECT number FROM trials ORDER BY number")]
            asks = [r[0] for r in con.execute("SELECT trial FROM events WHERE kind = 'ask' ORDER BY seq")]
            told = [r[0] for r in con.execute("SELECT trial FROM events WHERE kind = 'tell' ORDER BY seq")]
        if (numbers != list(range(len(numbers))) or sorted(asks) != numbers or len(set(told)) != len(told)
                or (len(ok) == 2 and i % 2 == 0)):
            out["double_writes"] += 1
        shutil.rmtree(run, ignore_errors=True)
    return out


def writers_forked(root: Path, pairs: int) -> dict[str, int]:
    """``writers`` with the two writers forked from this process (nasforge already imported: seconds, not minutes,
    per pair on a loaded machine). Each child runs the toy search (``run_search`` with a run folder) and exits 0
    when it wrote the run, 3 when it was refused (NasforgeError), 1 on anything else."""
    sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]
    from nasforge.errors import NasforgeError
    from nasforge.runner import run_search
    from runner_toy import MutateBest, ToyEstimator, ToySpace

    def child(run: Path, resume: bool) -> None:
        code = 1
        try:
            space = ToySpace()
            run_search(space, MutateBest(space, seed=7), ToyEstimator(0.02, fail_first=2), 10,
                       constraints=["macs<=120e3"], seed=7, out_dir=run, resume=resume)
            code = 0
        except NasforgeError as e:
            code = 3 if "is in use by process" in str(e) or "already a nasforge run" in str(e) else 4
        finally:
            os._exit(code)

    out = {"pairs": pairs, "both_wrote": 0, "one_wrote": 0, "refused_in_use": 0, "corrupt": 0, "double_writes": 0,
           "other_errors": 0}
    for i in range(pairs):
        run = root / f"fpair-{i}"
        pids = []
        for j in range(2):
            if j == 1 and i % 2:  # the resume starts once the first has created the store
                deadline = time.monotonic() + 60
                while not (run / "trials.sqlite").exists() and time.monotonic() < deadline:
                    time.sleep(0.01)
            pid = os.fork()
            if pid == 0:
                child(run, resume=bool(j == 1 and i % 2))
            pids.append(pid)
        codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
        out["both_wrote" if codes.count(0) == 2 else "one_wrote"] += 1 if 0 in codes else 0
        out["refused_in_use"] += codes.count(3)
        out["other_errors"] += sum(c not in (0, 3) for c in codes)
        with sqlite3.connect(run / "trials.sqlite") as con:
            if con.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                out["corrupt"] += 1
            numbers = [r[0] for r in con.execute("SELECT number FROM trials ORDER BY number")]
            asks = [r[0] for r in con.execute("SELECT trial FROM events WHERE kind = 'ask' ORDER BY seq")]
            told = [r[0] for r in con.execute("SELECT trial FROM events WHERE kind = 'tell' ORDER BY seq")]
        if numbers != list(range(len(numbers))) or sorted(asks) != numbers or len(set(told)) != len(told):
            out["double_writes"] += 1
        shutil.rmtree(run, ignore_errors=True)
    return out


def toy_kills_forked(root: Path, workers: int, kills: int, rng: random.Random) -> list[dict[str, Any]]:
    """``toy_kills`` with the runs forked from this process (nasforge already imported), killed after a random
    number of tells plus 0-50 ms, resumed in a fresh fork; compared with an uninterrupted run."""
    sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]
    from nasforge.runner import run_search
    from runner_toy import MutateBest, ToyEstimator, ToySpace

    def search(run: Path | None, resume: bool) -> Any:
        space = ToySpace()
        return run_search(space, MutateBest(space, seed=7), ToyEstimator(0.03, fail_first=2), 12,
                          constraints=["macs<=120e3"], seed=7, out_dir=run, workers=workers, resume=resume)

    def forked(run: Path, resume: bool) -> int:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                search(run, resume)
                code = 0
            finally:
                os._exit(code)
        return pid

    want = [t.key() for t in search(None, False).trials]
    rows = []
    for i in range(kills):
        run = root / f"fkill-w{workers}-{i}"
        pid = forked(run, False)
        k = rng.randrange(12)
        while tells(run) <= k:
            if os.waitpid(pid, os.WNOHANG)[0]:
                pid = 0
                break
            time.sleep(0.005)
        phase = "finished first"
        if pid:
            time.sleep(rng.uniform(0, 0.05))
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            phase = "trials"
        resumed = (run / "trials.sqlite").is_file()
        code = os.waitstatus_to_exitcode(os.waitpid(forked(run, resumed), 0)[1])
        rows.append({"job": "toy", "workers": workers, "phase": phase, "resume": resumed, "rc": code,
                     "same_trials": code == 0 and trial_keys(run) == want, "missing": [],
                     "leftovers": leftovers(run), "orphans": 0})
        shutil.rmtree(run, ignore_errors=True)
    return rows


def fuzz(profile: str) -> list[dict[str, Any]]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(REPO / "tests" / "test_fuzz_parsers.py"),
           "--hypothesis-profile", profile, "--hypothesis-show-statistics", "-k", "fuzz"]
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, cwd=REPO)
    rows, name = [], None
    for line in p.stdout.splitlines():
        m = re.match(r"tests/test_fuzz_parsers.py::(\S+):", line.strip())
        if m:
            name = m.group(1)
        m = re.search(r"(\d+) passing examples?, (\d+) failing examples?, (\d+) invalid", line)
        if m and name:
            rows.append({"parser": name, "passing": int(m.group(1)), "failing": int(m.group(2)),
                         "invalid": int(m.group(3))})
            name = None
    failed = re.findall(r"FAILED (\S+)", p.stdout)
    for f in failed:
        rows.append({"parser": f.split("::")[-1], "passing": 0, "failing": -1, "invalid": 0})
    print(p.stdout.strip().splitlines()[-1], flush=True)
    return rows


def disk_checks() -> str:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
           str(REPO / "tests" / "test_environment.py"), "-k", "disk_full or read_only"]
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, cwd=REPO)
    return p.stdout.strip().splitlines()[-1]


def kill_table(rows: list[dict[str, Any]]) -> None:
    print("\n| job | workers | kills | phases hit | resumed | same trials | all artefacts | leftovers | orphans |")
    print("|---|---|---|---|---|---|---|---|---|")
    for job in ("search", "toy"):
        for w in (1, 2):
            rs = [r for r in rows if r["workers"] == w and r["job"] == job]
            if not rs:
                continue
            phases: dict[str, int] = {}
            for r in rs:
                phases[r["phase"]] = phases.get(r["phase"], 0) + 1
            print(f"| {job} | {w} | {len(rs)} | {', '.join(f'{k} {v}' for k, v in sorted(phases.items()))} | "
                  f"{sum(r['resume'] for r in rs)} | {sum(r['same_trials'] for r in rs)}/{len(rs)} | "
                  f"{sum(not r['missing'] for r in rs)}/{len(rs)} | {sum(bool(r['leftovers']) for r in rs)} | "
                  f"{sum(r['orphans'] for r in rs)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=15, help="kills of the search job per worker count")
    ap.add_argument("--toy-kills", type=int, default=0, help="kills of the toy search per worker count")
    ap.add_argument("--workers", default="1,2", help="worker counts of the kill runs")
    ap.add_argument("--pairs", type=int, default=20, help="concurrent-writer pairs")
    ap.add_argument("--fork", action="store_true", help="writers forked from this process (fast on a loaded host)")
    ap.add_argument("--fuzz-profile", default="long", help="hypothesis profile of the fuzz run (ci, long)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", default="", help="comma list of parts to skip: kills,writers,fuzz,disk")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="nasforge-faults-"))
    counts = [int(w) for w in args.workers.split(",") if w]
    t0 = time.monotonic()
    try:
        if "kills" not in skip:
            rows = [r for w in counts for r in kill_and_resume(root, w, args.kills, rng)] if args.kills else []
            toy = toy_kills_forked if args.fork else toy_kills
            rows += [r for w in counts for r in toy(root, w, args.toy_kills, rng)] if args.toy_kills else []
            kill_table(rows)
        if "writers" not in skip:
            w = writers_forked(root, args.pairs) if args.fork else writers(root, args.pairs)
            print("\n| pairs | one wrote | both wrote | refused 'in use' | other errors | corrupt | double writes |")
            print("|---|---|---|---|---|---|---|")
            print(f"| {w['pairs']} | {w['one_wrote']} | {w['both_wrote']} | {w['refused_in_use']} | "
                  f"{w.get('other_errors', '-')} | {w['corrupt']} | {w['double_writes']} |")
        if "fuzz" not in skip:
            fz = fuzz(args.fuzz_profile)
            print(f"\n| parser (profile {args.fuzz_profile}) | examples | failures |")
            print("|---|---|---|")
            for r in fz:
                fails = max(r["failing"], 0) if r["failing"] >= 0 else "test failed"
                print(f"| {r['parser']} | {r['passing'] + max(r['failing'], 0)} | {fails} |")
        if "disk" not in skip:
            print(f"\ndisk full / read-only on tmpfs: {disk_checks()}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\ntotal {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
