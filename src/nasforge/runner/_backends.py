"""Where evaluations run: the backend interface of the search loop and the local backends.

A backend takes an architecture and gives back a *pending* evaluation; the loop asks for results in ask order
(``pending.result()`` blocks), so the trials never depend on which backend ran them or how fast. The interface:

- ``submit(arch) -> Pending``: start (or queue) one evaluation; ``Pending.result()`` gives ``(Result, wall_s)``.
  An estimator that raises or returns nonsense gives a ``failed`` Result, never an exception.
- ``restart()``: after ``result()`` raised ``WorkerLost`` (a worker died): drop the broken workers; the loop
  resubmits the evaluations still in flight.
- ``close()``: stop the workers. At the end of a search none is busy; on an error or Ctrl-C the evaluations still
  running are abandoned (their workers are killed: their results would not be recorded anyway).

``make_backend(estimator, workers, trial_timeout, backend=...)`` gives one: ``ray`` is Ray tasks on a local Ray
instance or a cluster (``_ray``); ``local`` is inline evaluation for one worker, a
spawn-safe process pool for more (or for any number when a per-trial timeout is set: only a separate process
can be stopped in the middle of an evaluation). Pool workers die with the search process (``die_with_parent``),
ignore Ctrl-C (the search process stops them) and, with a timeout, report when each evaluation starts, so one that
runs past ``trial_timeout`` seconds is killed and recorded ``failed`` with the reason; the other evaluations in
flight are resubmitted (``WorkerLost(collateral=True)``).

Threads: every evaluation runs with torch's intra-op threads and the BLAS pools set to the CPUs it was given, and
restores them afterwards (``thread_limit``): the trial's ``cpu`` resource when given, else ``cores // workers``
locally (the process pool used to leave each worker at torch's default, all cores, so ``workers`` processes
oversubscribed the machine) and Ray's ``num_cpus`` (default 1) on Ray. torch's CPU kernels do not promise the same
bits for another thread count (measured: 1 of 3 small digits trainings gave another validation accuracy with 1
and 2 threads), so the same seed gives the same trials on every backend and worker count when the trials get the
same CPUs (``trial_resources={"cpu": 1}``, ``--trial-resources cpu=1``) and the same ``in_flight`` (``_loop``).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from nasforge.errors import NasforgeError
from nasforge.runner._validate import valid_result
from nasforge.spaces import Architecture, Result
from nasforge.units import parse_bytes

if TYPE_CHECKING:
    from threadpoolctl import ThreadpoolController

    from nasforge.estimators import Estimator

BACKENDS = ("local", "ray")
RESOURCES = ("cpu", "gpu", "memory")
INSTALL_RAY = "the ray backend needs Ray: pip install 'nasforge[ray]'"

PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCHDOG_SECONDS = 1.0  # how often a worker without a parent-death signal checks its parent is alive
POLL_SECONDS = 0.1  # how often a pending evaluation with a timeout checks its clock


class WorkerLost(Exception):
    """What ``Pending.result()`` raises when the worker running the evaluation died (killed, out of memory).

    ``collateral``: the backend stopped the workers itself (another evaluation ran past its timeout), so this
    evaluation did nothing wrong and is simply run again."""

    def __init__(self, message: str = "", collateral: bool = False) -> None:
        super().__init__(message)
        self.collateral = collateral


class Pending(Protocol):
    """One evaluation in flight."""

    def result(self) -> tuple[Result, float]: ...


class Backend(Protocol):
    """Runs evaluations: see the module docstring for the contract."""

    def submit(self, arch: Architecture) -> Pending: ...

    def restart(self) -> None: ...

    def close(self) -> None: ...


# -- what a trial gets ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrialResources:
    """What one evaluation is given: ``cpu`` (threads, and Ray's ``num_cpus``; None: the backend's default),
    ``gpu`` (Ray's ``num_gpus``, may be a fraction) and ``memory`` (bytes, Ray's ``memory``; None: no claim)."""

    cpu: float | None = None
    gpu: float = 0.0
    memory: int | None = None

    def threads(self) -> int | None:
        """The torch/BLAS threads of one evaluation (at least 1), or None for the backend's default."""
        return None if self.cpu is None else max(1, int(self.cpu))

    def to_dict(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {} if self.cpu is None else {"cpu": self.cpu}
        if self.gpu:
            out["gpu"] = self.gpu
        if self.memory is not None:
            out["memory"] = self.memory
        return out


def parse_resources(value: str | Mapping[str, Any] | TrialResources | None) -> TrialResources:
    """``"cpu=1,gpu=0.5,memory=2GB"`` or a mapping of the same names; one clear line for an unknown name or a
    negative, non-numeric or empty amount."""
    if value is None:
        return TrialResources()
    if isinstance(value, TrialResources):
        return value
    items: list[tuple[str, Any]]
    if isinstance(value, str):
        items = []
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            name, eq, amount = part.partition("=")
            if not eq:
                raise NasforgeError(f"bad trial resource {part!r}; expected NAME=AMOUNT, e.g. cpu=1,gpu=0.5")
            items.append((name.strip(), amount.strip()))
    elif isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    else:
        raise NasforgeError(f"trial resources must be NAME=AMOUNT pairs like cpu=1,gpu=0.5, got {value!r}")
    got: dict[str, Any] = {}
    for name, amount in items:
        key = name.lower()
        if key not in RESOURCES:
            raise NasforgeError(f"unknown trial resource {name!r}; allowed: {', '.join(RESOURCES)} "
                                "(e.g. cpu=1,gpu=0.5,memory=2GB)")
        if key == "memory":
            got[key] = parse_bytes(amount, "trial resource memory")
            continue
        try:
            x = float(amount)
        except (TypeError, ValueError):
            raise NasforgeError(f"trial resource {key}={amount!r} is not a number") from None
        if isinstance(amount, bool) or not math.isfinite(x) or x < 0:
            raise NasforgeError(f"trial resource {key}={amount!r} must be a number >= 0")
        got[key] = x
    return TrialResources(cpu=got.get("cpu"), gpu=got.get("gpu", 0.0), memory=got.get("memory"))


def cores() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@cache
def _blas() -> ThreadpoolController:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """Run the block with torch's intra-op threads and the BLAS pools at ``threads`` (None: unchanged); the
    caller's settings come back afterwards, also after an exception."""
    if threads is None:
        yield
        return
    torch = sys.modules.get("torch")  # an estimator that trains has imported it; no need to load it otherwise
    before = None if torch is None else torch.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    try:
        with _blas().limit(limits=threads, user_api="blas"):
            yield
    finally:
        if torch is not None and before is not None:
            torch.set_num_threads(before)


# -- evaluation (runs in the main process or in a worker) --------------------------------------------------
def evaluate_safely(estimator: Estimator, arch: Architecture, threads: int | None = None) -> tuple[Result, float]:
    """(result, wall seconds) with ``threads`` (``thread_limit``); an estimator that raises or returns nonsense
    gives status ``failed``. The result is validated here already (``valid_result``), so a worker never sends back
    what cannot be pickled or stored."""
    t0 = time.perf_counter()
    try:
        with thread_limit(threads):
            res = estimator.evaluate(arch)
    except Exception as e:  # the search goes on; the error text is kept with the trial
        last = traceback.format_exception_only(type(e), e)[-1].strip()
        res = Result.failure(last)
    wall = time.perf_counter() - t0
    return valid_result(res, wall), wall


def die_with_parent(parent_pid: int) -> None:
    """Make this (worker) process end when ``parent_pid`` does: the kernel's parent-death signal on Linux, a
    watchdog thread on the parent's pid elsewhere; if the parent is already gone, end now."""
    armed = False
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    if os.getppid() != parent_pid:  # it died before the signal was armed
        os._exit(1)
    if not armed:
        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(WATCHDOG_SECONDS)
            os._exit(1)

        threading.Thread(target=watch, name="nasforge-parent-watchdog", daemon=True).start()


_WORKER_ESTIMATOR: Estimator | None = None
_WORKER_STARTS: Any = None  # a queue of (token, pid, start time) when the search has a per-trial timeout
_WORKER_THREADS: int | None = None


def _init_worker(estimator: Estimator, parent_pid: int | None = None, starts: Any = None,
                 threads: int | None = None) -> None:
    global _WORKER_ESTIMATOR, _WORKER_STARTS, _WORKER_THREADS
    _WORKER_THREADS = threads
    if parent_pid is not None:
        die_with_parent(parent_pid)
    with contextlib.suppress(ValueError):  # Ctrl-C reaches the whole process group: the search process decides
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_ESTIMATOR, _WORKER_STARTS = estimator, starts


def _evaluate_in_worker(arch: Architecture, token: int = -1) -> tuple[Result, float]:
    assert _WORKER_ESTIMATOR is not None
    if _WORKER_STARTS is not None:
        _WORKER_STARTS.put((token, os.getpid(), time.time()))
    return evaluate_safely(_WORKER_ESTIMATOR, arch, _WORKER_THREADS)


# -- the local backends ----------------------------------------------------------------------------------------
class _Inline:
    """An evaluation run lazily in this process when its result is wanted (workers=1)."""

    def __init__(self, estimator: Estimator, arch: Architecture, threads: int | None) -> None:
        self.estimator, self.arch, self.threads = estimator, arch, threads

    def result(self) -> tuple[Result, float]:
        return evaluate_safely(self.estimator, self.arch, self.threads)


class InlineBackend:
    """One worker: each evaluation runs in this process when its result is asked for."""

    def __init__(self, estimator: Estimator, threads: int | None = None) -> None:
        self.estimator, self.threads = estimator, threads

    def submit(self, arch: Architecture) -> Pending:
        return _Inline(self.estimator, arch, self.threads)

    def restart(self) -> None:
        pass

    def close(self) -> None:
        pass


class _PoolPending:
    """A pool future: a broken pool reads as ``WorkerLost``; with a timeout, one running too long is stopped."""

    def __init__(self, backend: ProcessPoolBackend, fut: Future[tuple[Result, float]], token: int, gen: int) -> None:
        self.backend, self.fut, self.token, self.gen = backend, fut, token, gen

    def result(self) -> tuple[Result, float]:
        timeout = self.backend.trial_timeout
        while True:
            try:
                return self.fut.result(timeout=None if timeout is None else POLL_SECONDS)
            except TimeoutError:
                pass
            except BrokenProcessPool as e:
                collateral = self.gen in self.backend.stopped or self.backend.bystander(self.token)
                raise WorkerLost(str(e), collateral=collateral) from e
            except Exception as e:  # the result could not come back (e.g. not picklable): the trial fails
                return Result.failure(f"the worker could not send the result back: {type(e).__name__}: {e}"), 0.0
            assert timeout is not None
            started = self.backend.started(self.token)
            if started is not None and time.time() - started[1] > timeout:
                seconds = time.time() - started[1]
                self.backend.stop(self.gen, started[0])
                return Result.failure(f"timed out after {timeout:g} s (trial timeout)", seconds=seconds), seconds


class ProcessPoolBackend:
    """``workers`` spawned processes, each holding the (pickled) estimator; started at the first submit.

    ``trial_timeout`` (seconds, or None): an evaluation running longer is stopped (its worker killed, the pool
    restarted) and recorded failed; the clock starts when a worker begins it, not at submit."""

    def __init__(self, estimator: Estimator, workers: int, trial_timeout: float | None = None,
                 threads: int | None = None) -> None:
        self.estimator = estimator
        self.workers = workers
        self.trial_timeout = trial_timeout
        self.threads = threads
        self.pool: ProcessPoolExecutor | None = None
        self.stopped: set[int] = set()  # pool generations the backend stopped on purpose
        self._gen = 0
        self._tokens = itertools.count()
        self._starts: Any = None
        self._started: dict[int, tuple[int, float]] = {}
        self._futures: list[Future[tuple[Result, float]]] = []

    def _pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._starts = ctx.Queue() if self.trial_timeout is not None else None
            self._started = {}
            self._gen += 1
            self.pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                            initargs=(self.estimator, os.getpid(), self._starts, self.threads))
        return self.pool

    def submit(self, arch: Architecture) -> Pending:
        token = next(self._tokens)
        try:
            fut = self._pool().submit(_evaluate_in_worker, arch, token)
        except BrokenProcessPool:  # a worker died since the last result: a fresh pool (the loop resubmits the rest)
            self.restart()
            fut = self._pool().submit(_evaluate_in_worker, arch, token)
        self._futures = [f for f in self._futures if not f.done()] + [fut]
        return _PoolPending(self, fut, token, self._gen)

    def started(self, token: int) -> tuple[int, float] | None:
        """(worker pid, start time) of the evaluation ``token`` once a worker has begun it."""
        while self._starts is not None:
            try:
                t, pid, t0 = self._starts.get_nowait()
            except Exception:  # queue.Empty, or a queue closed by a restart
                break
            self._started[int(t)] = (int(pid), float(t0))
        return self._started.get(token)

    def bystander(self, token: int) -> bool:
        """True when the evaluation ``token`` was not the cause of a broken pool: its worker was alive or ended by
        the executor's SIGTERM, not killed (SIGKILL, the OOM killer). Known only with a trial timeout (workers
        report their starts then); otherwise False, so every lost evaluation counts. A worker killed at once may die
        before its start report is sent: an unknown start counts as lost too."""
        if self._starts is None or self.pool is None:
            return False
        started = self.started(token)
        if started is None:
            return False
        proc = (getattr(self.pool, "_processes", None) or {}).get(started[0])  # the executor has no public handle
        if proc is None:
            return False
        code = proc.exitcode
        return code is None or code == -signal.SIGTERM

    def stop(self, gen: int, pid: int) -> None:
        """Kill the worker ``pid`` of pool generation ``gen`` (an evaluation past its timeout) and restart."""
        if gen != self._gen:
            return
        self.stopped.add(gen)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        self.restart()

    def restart(self) -> None:
        """After a worker died: drop the broken pool (the next submit makes a new one)."""
        if self.pool is not None:
            self._kill(self.pool)
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None

    def close(self) -> None:
        """Stop the workers; evaluations still running (after an error or Ctrl-C) are abandoned, not awaited."""
        if self.pool is not None:
            busy = any(not f.done() for f in self._futures)
            if busy:
                self._kill(self.pool)
            self.pool.shutdown(wait=not busy, cancel_futures=True)
            self.pool = None

    @staticmethod
    def _kill(pool: ProcessPoolExecutor) -> None:
        procs = list((getattr(pool, "_processes", None) or {}).values())  # the executor has no public handle
        for p in procs:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                p.kill()
        for p in procs:
            with contextlib.suppress(OSError, ValueError, AttributeError, AssertionError):
                p.join(2.0)


def check_backend(backend: str, ray_address: str | None = None) -> None:
    """A known backend name, and Ray installed for ``ray`` (one clear line each); no connection is made."""
    if backend not in BACKENDS:
        raise NasforgeError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if backend == "local" and ray_address:
        raise NasforgeError("--ray-address needs --backend ray")
    if backend == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise NasforgeError(INSTALL_RAY)


def make_backend(estimator: Estimator, workers: int, trial_timeout: float | None = None,
                 backend: str | Backend = "local", resources: str | Mapping[str, Any] | TrialResources | None = None,
                 ray_address: str | None = None, max_retries: int = 3) -> Backend:
    """A backend by name (a ``Backend`` object is returned as is). ``local``: inline for one worker, a process pool
    for more or with a per-trial timeout, each evaluation with ``resources.cpu`` threads (default
    ``cores() // workers``; a GPU needs Ray). ``ray``: see ``RayBackend``; it connects here, so a bad address fails
    before anything is written."""
    if not isinstance(backend, str):
        return backend
    check_backend(backend, ray_address)
    res = parse_resources(resources)
    if backend == "ray":
        from nasforge.runner._ray import RayBackend

        return RayBackend(estimator, workers, res, ray_address, max_retries, trial_timeout)
    if res.gpu:
        raise NasforgeError("trial resource gpu needs --backend ray (the local backend runs on this machine's CPUs)")
    threads = res.threads() or max(1, cores() // workers)
    if workers <= 1 and trial_timeout is None:
        return InlineBackend(estimator, threads)
    return ProcessPoolBackend(estimator, workers, trial_timeout, threads)
