"""Where evaluations run: the backend interface of the search loop and the local backends.

A backend takes an architecture and gives back a *pending* evaluation; the loop asks for results in ask order
(``pending.result()`` blocks), so the trials never depend on which backend ran them or how fast. The interface:

- ``submit(arch) -> Pending``: start (or queue) one evaluation; ``Pending.result()`` gives ``(Result, wall_s)``.
  An estimator that raises or returns nonsense gives a ``failed`` Result, never an exception; so does an
  evaluation whose worker died under it (killed, out of memory, crashed), after the retries the backend allows.
  Lost workers are the backend's business: it runs the other evaluations again itself (the loop never sees it).
- ``close()``: stop the workers. At the end of a search none is busy; on an error or Ctrl-C the evaluations still
  running are abandoned (their workers are killed: their results would not be recorded anyway).

``make_backend(estimator, workers, trial_timeout, backend=...)`` gives one: ``ray`` is Ray tasks on a local Ray
instance or a cluster (``_ray``); ``local`` is inline evaluation for one worker, a
spawn-safe process pool for more (or for any number when a per-trial timeout is set: only a separate process
can be stopped in the middle of an evaluation). Pool workers die with the search process (``die_with_parent``),
ignore Ctrl-C (the search process stops them) and write which evaluation each runs into shared memory: when a
worker dies its evaluation is recorded ``failed`` (no retry: what the OOM killer stops once it stops again), one
that runs past ``trial_timeout`` seconds is killed and recorded ``failed`` with the reason, and in both cases the
other evaluations in flight run again in a fresh pool.

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
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
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
MAX_MOVES = 3  # unexplained pool breaks (no worker died on its own) an evaluation running in them may survive


class Pending(Protocol):
    """One evaluation in flight."""

    def result(self) -> tuple[Result, float]: ...


class Backend(Protocol):
    """Runs evaluations: see the module docstring for the contract."""

    def submit(self, arch: Architecture) -> Pending: ...

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
    except SystemExit as e:  # sys.exit() in an estimator ends the evaluation, not the search
        res = Result.failure(f"the estimator called exit({e.code!r})")
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
_WORKER_SLOTS: Any = None  # the pool's shared slots: _SLOT doubles per worker, this one at _WORKER_SLOT
_WORKER_SLOT = -1
_WORKER_THREADS: int | None = None
_SLOT = 3  # doubles per worker: pid, the token it is evaluating (-1: idle), when it began


def _init_worker(estimator: Estimator, parent_pid: int | None = None, slots: Any = None, claimed: Any = None,
                 threads: int | None = None) -> None:
    global _WORKER_ESTIMATOR, _WORKER_SLOTS, _WORKER_SLOT, _WORKER_THREADS
    _WORKER_THREADS = threads
    if parent_pid is not None:
        die_with_parent(parent_pid)
    with contextlib.suppress(ValueError):  # Ctrl-C reaches the whole process group: the search process decides
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if slots is not None and claimed is not None:
        with claimed.get_lock():
            _WORKER_SLOT, claimed.value = claimed.value, claimed.value + 1
        _WORKER_SLOTS = slots
        slots[_SLOT * _WORKER_SLOT], slots[_SLOT * _WORKER_SLOT + 1] = os.getpid(), -1
    _WORKER_ESTIMATOR = estimator


def _evaluate_in_worker(arch: Architecture, token: int = -1) -> tuple[Result, float]:
    assert _WORKER_ESTIMATOR is not None
    slots, at = _WORKER_SLOTS, _SLOT * _WORKER_SLOT
    if slots is not None:  # shared memory: the search process sees it at once, even if this process is killed next
        slots[at + 2] = time.time()
        slots[at + 1] = token
    try:
        return evaluate_safely(_WORKER_ESTIMATOR, arch, _WORKER_THREADS)
    finally:
        if slots is not None:
            slots[at + 1] = -1


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

    def close(self) -> None:
        pass


class _PoolPending:
    """One evaluation in the pool; the backend moves it to a fresh pool (new ``fut``, ``token``, ``gen``) when the
    pool breaks under it, or settles it (``outcome``) when its own worker died."""

    def __init__(self, backend: ProcessPoolBackend, arch: Architecture) -> None:
        self.backend, self.arch = backend, arch
        self.fut: Future[tuple[Result, float]] | None = None
        self.token, self.gen, self.moves = -1, 0, 0
        self.outcome: tuple[Result, float] | None = None

    def result(self) -> tuple[Result, float]:
        try:
            return self._wait()
        finally:
            self.backend.live.pop(id(self), None)

    def _wait(self) -> tuple[Result, float]:
        backend, timeout = self.backend, self.backend.trial_timeout
        while self.outcome is None:
            assert self.fut is not None
            try:
                return self.fut.result(timeout=None if timeout is None else POLL_SECONDS)
            except TimeoutError:
                pass
            except (BrokenProcessPool, CancelledError) as e:  # a worker died: the backend decides whose fault
                fut = self.fut
                backend.recover(self.gen)
                if self.fut is fut and self.outcome is None:  # not moved (the pool is gone): never wait forever
                    return Result.failure(f"worker process died ({type(e).__name__})"), 0.0
                continue
            except Exception as e:  # the result could not come back (e.g. not picklable): the trial fails
                return Result.failure(f"the worker could not send the result back: {type(e).__name__}: {e}"), 0.0
            assert timeout is not None
            started = backend.started(self.gen, self.token)
            if started is not None and time.time() - started[1] > timeout:
                seconds = time.time() - started[1]
                backend.live.pop(id(self), None)
                backend.stop(self.gen, started[0])
                return Result.failure(f"timed out after {timeout:g} s (trial timeout)", seconds=seconds), seconds
        return self.outcome


class ProcessPoolBackend:
    """``workers`` spawned processes, each holding the (pickled) estimator; started at the first submit.

    Each worker writes its pid and the evaluation it runs into shared memory, so when the pool breaks (a worker
    killed: SIGKILL, the OOM killer, a crash) the backend knows exactly whose worker died: that evaluation is
    recorded failed with the signal, and the others in flight, which did nothing wrong, run again in a fresh pool.
    ``trial_timeout`` (seconds, or None): an evaluation running longer is stopped (its worker killed, the pool
    restarted, the others run again) and recorded failed; the clock starts when a worker begins it, not at submit.
    """

    def __init__(self, estimator: Estimator, workers: int, trial_timeout: float | None = None,
                 threads: int | None = None) -> None:
        self.estimator = estimator
        self.workers = workers
        self.trial_timeout = trial_timeout
        self.threads = threads
        self.pool: ProcessPoolExecutor | None = None
        self.live: dict[int, _PoolPending] = {}  # evaluations whose result has not been taken yet
        self._gen = 0
        self._tokens = itertools.count()
        self._slots: Any = None
        self._stopped: set[int] = set()  # pids the backend killed itself (timeouts): not a fault of theirs

    def _pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._slots = ctx.Array("d", [-1.0] * (_SLOT * self.workers), lock=False)
            claimed = ctx.Value("i", 0)
            self._gen += 1
            self.pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                            initargs=(self.estimator, os.getpid(), self._slots, claimed,
                                                      self.threads))
        return self.pool

    def submit(self, arch: Architecture) -> Pending:
        p = _PoolPending(self, arch)
        self._start(p)
        self.live[id(p)] = p
        return p

    def _start(self, p: _PoolPending) -> None:
        p.token = next(self._tokens)
        try:
            p.fut = self._pool().submit(_evaluate_in_worker, p.arch, p.token)
        except BrokenProcessPool:  # a worker died since the last result
            self.recover(self._gen)
            p.fut = self._pool().submit(_evaluate_in_worker, p.arch, p.token)
        p.gen = self._gen

    def _running(self) -> dict[int, tuple[int, float]]:
        """token -> (worker pid, start time) of the evaluations the current pool's workers are running."""
        out: dict[int, tuple[int, float]] = {}
        s = self._slots
        for i in range(0, 0 if s is None else len(s), _SLOT):
            pid, token, t0 = s[i], s[i + 1], s[i + 2]
            if pid > 0 and token >= 0:
                out[int(token)] = (int(pid), float(t0))
        return out

    def started(self, gen: int, token: int) -> tuple[int, float] | None:
        """(worker pid, start time) of the evaluation ``token`` while a worker of the current pool runs it."""
        return self._running().get(token) if gen == self._gen else None

    def _died(self) -> dict[int, int]:
        """token -> exit code of the evaluations whose worker died on its own (not stopped by the executor's
        SIGTERM nor by this backend): those evaluations are the cause of the broken pool."""
        procs = getattr(self.pool, "_processes", None) or {}  # the executor has no public handle
        out: dict[int, int] = {}
        for token, (pid, _) in self._running().items():
            proc = procs.get(pid)
            if proc is None or pid in self._stopped:
                continue
            code = proc.exitcode
            if code is None and multiprocessing.connection.wait([proc.sentinel], 0):
                deadline = time.monotonic() + 1.0  # dead; another thread is reaping it right now
                while code is None and time.monotonic() < deadline:
                    time.sleep(0.01)
                    code = proc.exitcode
            if code is not None and code != -signal.SIGTERM:
                out[token] = code
        return out

    def recover(self, gen: int) -> None:
        """The pool of generation ``gen`` broke (or was stopped): settle the evaluations whose worker died, and
        move every other one still in flight to a fresh pool. Idempotent: a later call for ``gen`` does nothing."""
        if gen != self._gen or self.pool is None:
            return
        died, running = self._died(), self._running()
        explained = bool(died or self._stopped)  # a worker died on its own, or the backend stopped one
        self.restart()
        for p in list(self.live.values()):
            if p.gen != gen or p.outcome is not None:
                continue
            fut = p.fut
            if (fut is not None and fut.done() and not fut.cancelled()
                    and not isinstance(fut.exception(), BrokenProcessPool)):
                continue  # its result came back before the pool broke
            if p.token in died:
                p.outcome = Result.failure(f"worker process died ({_describe_exit(died[p.token])}; killed, out of "
                                           "memory or crashed)"), 0.0
            elif not explained and p.token in running and p.moves >= MAX_MOVES:
                p.outcome = Result.failure(f"worker process died: the pool broke {p.moves + 1} times while it ran "
                                           "and no worker's exit explains it (stopped by SIGTERM?)"), 0.0
            else:
                p.moves += not explained and p.token in running  # the break is unexplained: it may be the cause
                self._start(p)

    def stop(self, gen: int, pid: int) -> None:
        """Kill the worker ``pid`` of pool generation ``gen`` (an evaluation past its timeout); the others in
        flight move to a fresh pool."""
        if gen != self._gen:
            return
        self._stopped.add(pid)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        self.recover(gen)

    def restart(self) -> None:
        """Drop the current pool and its workers (the next submit makes a new one)."""
        if self.pool is not None:
            self._kill(self.pool)
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None
            self._stopped.clear()

    def close(self) -> None:
        """Stop the workers; evaluations still running (after an error or Ctrl-C) are abandoned, not awaited."""
        if self.pool is not None:
            busy = any(p.fut is not None and not p.fut.done() for p in self.live.values())
            if busy:
                self._kill(self.pool)
            self.pool.shutdown(wait=not busy, cancel_futures=True)
            self.pool = None
        self.live.clear()

    @staticmethod
    def _kill(pool: ProcessPoolExecutor) -> None:
        procs = list((getattr(pool, "_processes", None) or {}).values())  # the executor has no public handle
        for p in procs:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                p.kill()
        for p in procs:
            with contextlib.suppress(OSError, ValueError, AttributeError, AssertionError):
                p.join(2.0)


def _describe_exit(code: int) -> str:
    """``signal SIGKILL`` for a negative exit code, ``exit code N`` otherwise."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"exit code {code}"


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
