"""Scaling the search out: the local and Ray backends, from 2 cores to a simulated 64/256-worker cluster.

Parts (each in its own process, since one process holds one Ray connection):

- ``0``: training-bound trials (the ``make run`` setting: digits, the default space, 3 epochs, random strategy
  so every run trains the same architectures): steady-state throughput (trials/s, on a backend warmed by one trial
  per worker; the warm-up's wall, start-up included, is printed beside it) with 1 and 2 workers, local and Ray, one
  worker on one core (``cpu=1``) and the old pool behaviour (each of 2 workers with 2 torch threads: ``cpu=2``); then
  the same under a background load of 2 busy processes (local only unless ``--loaded-ray``: Ray starts its workers
  at nice 15, ``RAY_worker_niceness``, so beside 2 busy nice-0 processes a Ray trial gets a few % of a core and one
  setting took over 5 min). Target: 2 workers >= 1.7x one worker, and never below one worker under load. Also the
  machine's own ceiling: the same trainings in one bare process vs handed out to two (no runner in between).
- ``a``: per-trial overhead on trivial trials (an estimator that returns at once), 2 workers: the process pool
  vs Ray tasks, on warm workers (one pool / one Ray worker set for every run), from the difference of two budgets,
  in ms per trial (the driver's ask/tell included: nb201, random, no store).
- ``b``: a Ray node declaring 64 logical CPUs, an estimator that sleeps 2 s, 64 in flight, 640 trials of
  regularized evolution on nb201 with the run store on disk: worker utilisation busy / (64 x wall) (target
  >= 0.95) and the driver's time per trial outside waiting (ask + constraints + tell + store).
- ``c``: the same at 256 in flight (``--inflight 256``).
- ``d``: the cost of telling results in ask order: part 0's local 2-worker setting, one warm pool, ``in_flight`` 2
  vs 3 (a third trial queued so no worker waits for the oldest), alternated ``--reps`` times.

    .venv/bin/python bench/ray_scale.py --parts 0,a,b [--trials 8] [--subset 512] [--inflight 64]
    RAY_worker_niceness=0 .venv/bin/python bench/ray_scale.py --parts 0 --backends ray --loaded-only --loaded-ray
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nasforge.spaces import Architecture, Result


class Instant:
    """A trivial estimator: reward at once."""

    def evaluate(self, arch: Architecture) -> Result:
        return Result(0.5, {}, {}, 0.0)


class Sleeper:
    """Sleeps ``seconds`` per trial, like a trial waiting on a GPU."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def evaluate(self, arch: Architecture) -> Result:
        time.sleep(self.seconds)
        return Result(float(sum(arch.choices)) / 100.0, {}, {}, self.seconds)


class TimedBackend:
    """Wraps a backend and adds up the time the driver waits in ``result()``."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.waited = inner, 0.0

    def submit(self, arch: Architecture) -> Any:
        pending, outer = self.inner.submit(arch), self

        class P:
            def result(self) -> Any:
                t0 = time.perf_counter()
                try:
                    return pending.result()
                finally:
                    outer.waited += time.perf_counter() - t0

        return P()

    def close(self) -> None:
        self.inner.close()


def _ray_init(cpus: int) -> None:
    import ray

    ray.init(num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)


def part0(args: argparse.Namespace) -> dict[str, Any]:
    from nasforge.jobs._search import SearchConfig, prepare
    from nasforge.runner import run_search
    from nasforge.runner._backends import make_backend

    _ray_init(os.cpu_count() or 2)
    tmp = tempfile.mkdtemp()
    prep = prepare(SearchConfig.new({"out": f"{tmp}/x", "subset": args.subset, "strategy": "random"}))
    # (name, workers, backend, trial resources); "w1" is what `--workers 1` gives (cores // 1 torch threads),
    # "w1 cpu=1" the same worker on one core (the pure worker-count scaling), "cpu=2" the old pool (2 threads each)
    setups = [("local w1", 1, "local", None), ("local w1 cpu=1", 1, "local", "cpu=1"), ("local w2", 2, "local", None),
              ("local w2 cpu=2 (old pool)", 2, "local", "cpu=2"), ("ray w1", 1, "ray", None),
              ("ray w2", 2, "ray", None)]

    def measure(tag: str) -> tuple[dict[str, float], dict[str, float]]:
        out: dict[str, float] = {}
        startup: dict[str, float] = {}
        for name, w, backend, res in setups:
            if backend not in args.backends.split(",") or (tag == "loaded" and (
                    "old" in name or "cpu=1" in name or (backend == "ray" and not args.loaded_ray))):
                continue
            # one backend per setting, warmed by `w` trials first: the timed run is the steady state (workers
            # started, estimator and data shipped); the warm-up's wall is reported beside it as start-up
            inner = make_backend(prep.estimator, w, backend=backend, resources=res)
            inner.close, close = (lambda: None), inner.close  # type: ignore[method-assign]
            try:
                t0 = time.perf_counter()
                run_search(prep.space, "random", prep.estimator, w, prep.constraints, seed=1, workers=w,
                           backend=inner, precision="int8")
                startup[name] = time.perf_counter() - t0
                t0 = time.perf_counter()
                r = run_search(prep.space, "random", prep.estimator, args.trials, prep.constraints, seed=0,
                               workers=w, backend=inner, precision="int8")
                wall = time.perf_counter() - t0
            finally:
                close()
            out[name] = args.trials / wall
            print(f"  [{tag}] {name}: {args.trials} trials in {wall:.1f} s = {out[name]:.3f} trials/s; warm-up "
                  f"({w} trials, start-up included) {startup[name]:.1f} s "
                  f"(rewards {[round(t.reward or 0, 3) for t in r.trials][:4]}...)", flush=True)
        return out, startup

    quiet: dict[str, float] = {}
    quiet_start: dict[str, float] = {}
    ratios: dict[str, float] = {}
    if not args.loaded_only:
        quiet, quiet_start = measure("as is")
        asked = run_search(prep.space, "random", Instant(), args.trials, prep.constraints, seed=0,
                           precision="int8").trials  # the archs the timed runs trained (random: rewards do not matter)
        ratios["machine ceiling: 2 bare processes / 1"] = _ceiling(prep.estimator,
                                                                   [prep.space.parse(t.arch) for t in asked])
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        loaded, loaded_start = measure("loaded")
    finally:
        for p in busy:
            p.kill()
    ratios.update({f"{k} / {w1}": v / quiet[w1] for w1 in ("local w1", "local w1 cpu=1", "ray w1") if w1 in quiet
                   for k, v in quiet.items() if k.startswith(w1.split()[0]) and " w2" in k})
    ratios.update({f"loaded {k} / loaded {w1}": loaded[k] / loaded[w1] for w1 in ("local w1", "ray w1")
                   if w1 in loaded for k in loaded if k.startswith(w1.split()[0]) and k != w1})
    for k, v in ratios.items():
        print(f"  {k}: {v:.2f}x", flush=True)
    return {"trials_per_s": quiet, "loaded_trials_per_s": loaded, "ratios": ratios,
            "warm_up_s": quiet_start, "loaded_warm_up_s": loaded_start}


def _train_all(estimator: Any, archs: list[Architecture]) -> float:
    from nasforge.runner._backends import evaluate_safely

    t0 = time.perf_counter()
    for a in archs:
        evaluate_safely(estimator, a, 1)
    return time.perf_counter() - t0


def _ceiling(estimator: Any, archs: list[Architecture]) -> float:
    """The machine's own 2-process scaling, no runner in between: the same trainings (1 thread each) in one
    process, then handed out one at a time to 2 processes (both warmed by one training first); wall ratio."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx) as one:
        one.submit(_train_all, estimator, archs[:1]).result()
        t0 = time.perf_counter()
        one.submit(_train_all, estimator, archs).result()
        serial = time.perf_counter() - t0
    with ProcessPoolExecutor(2, mp_context=ctx) as two:
        for f in [two.submit(_train_all, estimator, archs[:1]) for _ in range(2)]:
            f.result()
        t0 = time.perf_counter()
        for f in [two.submit(_train_all, estimator, [a]) for a in archs]:  # one at a time, as a pool hands them out
            f.result()
        both = time.perf_counter() - t0
    print(f"  machine ceiling: {len(archs)} trainings in one process {serial:.1f} s, split over two "
          f"{both:.1f} s = {serial / both:.2f}x", flush=True)
    return serial / both


def part_a(args: argparse.Namespace) -> dict[str, Any]:
    from nasforge.runner import run_search
    from nasforge.runner._backends import make_backend
    from nasforge.spaces import get_space

    _ray_init(2)
    space = get_space("nb201")
    out: dict[str, Any] = {}
    for name in ("local", "ray"):
        inner = make_backend(Instant(), 2, backend=name)
        kept = TimedBackend(inner)
        kept.close = lambda: None  # type: ignore[method-assign]  # one pool / one set of Ray workers for all runs
        run_search(space, "random", Instant(), 10, seed=0, workers=2, backend=kept, objective=None)  # warm up
        walls = {}
        for n in (args.small, args.large):
            t0 = time.perf_counter()
            run_search(space, "random", Instant(), n, seed=0, workers=2, backend=kept, objective=None)
            walls[n] = time.perf_counter() - t0
        inner.close()
        out[name] = {"ms_per_trial": 1e3 * (walls[args.large] - walls[args.small]) / (args.large - args.small),
                     "walls_s": walls}
        print(f"  {name}: {out[name]['ms_per_trial']:.2f} ms/trial ({walls})", flush=True)
    return out


def part_d(args: argparse.Namespace) -> dict[str, Any]:
    """Does telling in ask order idle a worker? The same warm 2-worker pool and the same trials at ``in_flight`` 2
    (a finished worker waits while the oldest trial runs) and 3 (a third trial is queued), alternated."""
    from nasforge.jobs._search import SearchConfig, prepare
    from nasforge.runner import run_search
    from nasforge.runner._backends import make_backend

    prep = prepare(SearchConfig.new({"out": f"{tempfile.mkdtemp()}/x", "subset": args.subset, "strategy": "random"}))
    inner = make_backend(prep.estimator, 2)
    inner.close, close = (lambda: None), inner.close  # type: ignore[method-assign]
    walls: dict[int, list[float]] = {2: [], 3: []}
    try:
        run_search(prep.space, "random", prep.estimator, 2, prep.constraints, seed=1, workers=2, backend=inner,
                   precision="int8")  # warm-up
        for _ in range(args.reps):
            for depth in walls:
                t0 = time.perf_counter()
                run_search(prep.space, "random", prep.estimator, args.trials, prep.constraints, seed=0, workers=2,
                           backend=inner, precision="int8", in_flight=depth)
                walls[depth].append(time.perf_counter() - t0)
                print(f"  in_flight {depth}: {args.trials} trials in {walls[depth][-1]:.1f} s", flush=True)
    finally:
        close()
    return {"trials": args.trials, "walls_s": walls}


def part_b(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    from nasforge.runner import run_search
    from nasforge.runner._backends import make_backend
    from nasforge.spaces import get_space

    k = args.inflight
    _ray_init(k)
    space = get_space("nb201")
    est = Sleeper(args.sleep)
    t0 = time.perf_counter()
    run_search(space, "random", Sleeper(0.0), k, seed=1, workers=k, backend="ray", objective=None)  # start workers
    warm = time.perf_counter() - t0
    n = args.waves * k
    backend = TimedBackend(make_backend(est, k, backend="ray", resources="cpu=1"))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = run_search(space, "evolution", est, n, seed=0, workers=k, backend=backend, out_dir=Path(tmp) / "run",
                         objective=None)
        wall = time.perf_counter() - t0
    busy = sum(t.wall_seconds or 0.0 for t in res.trials)
    rss = _ray_worker_rss_mb()
    ray.shutdown()
    out = {"in_flight": k, "trials": n, "sleep_s": args.sleep, "warmup_s": warm, "wall_s": wall,
           "utilisation": busy / (k * wall), "ideal_wall_s": args.waves * args.sleep,
           "driver_ms_per_trial": 1e3 * (wall - backend.waited) / n, "worker_rss_mb": rss}
    print("  " + json.dumps(out), flush=True)
    return out


def _ray_worker_rss_mb() -> float | None:
    """Median resident memory of this machine's Ray worker processes (MB), from /proc."""
    sizes = []
    for pid in os.listdir("/proc"):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"default_worker.py" not in cmd and not cmd.startswith(b"ray::"):  # Ray renames busy workers
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return sorted(sizes)[len(sizes) // 2] if sizes else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="0,a,b")
    ap.add_argument("--part", help=argparse.SUPPRESS)
    ap.add_argument("--trials", type=int, default=6, help="part 0: trials per setting")
    ap.add_argument("--subset", type=int, default=None, help="part 0: cap the training split")
    ap.add_argument("--backends", default="local,ray", help="part 0: the backends to measure")
    ap.add_argument("--reps", type=int, default=2, help="part d: repetitions of each in_flight")
    ap.add_argument("--loaded-only", action="store_true", help="part 0: only the phase under load")
    ap.add_argument("--loaded-ray", action="store_true",
                    help="part 0: the Ray settings under load too (slow: Ray runs its workers at nice 15)")
    ap.add_argument("--small", type=int, default=20, help="part a: the smaller budget")
    ap.add_argument("--large", type=int, default=220, help="part a: the larger budget")
    ap.add_argument("--inflight", type=int, default=64, help="parts b/c: logical CPUs = trials in flight")
    ap.add_argument("--waves", type=int, default=10, help="parts b/c: trials = waves x in flight")
    ap.add_argument("--sleep", type=float, default=2.0, help="parts b/c: seconds per trial")
    args = ap.parse_args()
    if args.part:
        fn = {"0": part0, "a": part_a, "b": part_b, "c": part_b, "d": part_d}[args.part]
        if args.part == "c" and args.inflight == 64:
            args.inflight = 256
        print("RESULT " + json.dumps(fn(args)), flush=True)
        return
    for part in args.parts.split(","):
        print(f"part {part}:", flush=True)
        cmd = [sys.executable, __file__, "--part", part, *sys.argv[1:]]
        subprocess.run(cmd, check=False)


if __name__ == "__main__":
    main()
