"""Where evaluations run: the backend interface of the search loop and the local backends.

A backend takes an architecture and gives back a *pending* evaluation; the loop asks for results in ask order
(``pending.result()`` blocks), so the trials never depend on which backend ran them or how fast. The interface:

- ``submit(arch) -> Pending``: start (or queue) one evaluation; ``Pending.result()`` gives ``(Result, wall_s)``.
  An estimator that raises or returns nonsense gives a ``failed`` Result, never an exception.
- ``restart()``: after ``result()`` raised ``WorkerLost`` (a worker died): drop the broken workers; the loop
  resubmits the evaluations still in flight.
- ``close()``: stop the workers (waits for running evaluations to end or be cancelled).

``make_backend(estimator, workers)`` gives the local backend: inline evaluation for one worker, a spawn-safe
process pool for more.
"""

from __future__ import annotations

import math
import multiprocessing
import time
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from nasforge.estimators import Estimator, Result
from nasforge.spaces import Architecture


class WorkerLost(Exception):
    """What ``Pending.result()`` raises when the worker running the evaluation died (killed, out of memory)."""


class Pending(Protocol):
    """One evaluation in flight."""

    def result(self) -> tuple[Result, float]: ...


class Backend(Protocol):
    """Runs evaluations: see the module docstring for the contract."""

    def submit(self, arch: Architecture) -> Pending: ...

    def restart(self) -> None: ...

    def close(self) -> None: ...


# -- evaluation (runs in the main process or in a worker) --------------------------------------------------
def evaluate_safely(estimator: Estimator, arch: Architecture) -> tuple[Result, float]:
    """(result, wall seconds); an estimator that raises or returns nonsense gives status ``failed``."""
    t0 = time.perf_counter()
    try:
        res = estimator.evaluate(arch)
        if not isinstance(res, Result):
            res = Result.failure(f"estimator returned {type(res).__name__}, not a Result")
        elif res.status == "ok" and (res.reward is None or not math.isfinite(float(res.reward))):
            res = Result(None, res.metrics, res.cost, res.seconds, "failed", f"reward is {res.reward}")
    except Exception as e:  # the search goes on; the error text is kept with the trial
        last = traceback.format_exception_only(type(e), e)[-1].strip()
        res = Result.failure(last)
    return res, time.perf_counter() - t0


_WORKER_ESTIMATOR: Estimator | None = None


def _init_worker(estimator: Estimator) -> None:
    global _WORKER_ESTIMATOR
    _WORKER_ESTIMATOR = estimator


def _evaluate_in_worker(arch: Architecture) -> tuple[Result, float]:
    assert _WORKER_ESTIMATOR is not None
    return evaluate_safely(_WORKER_ESTIMATOR, arch)


# -- the local backends ----------------------------------------------------------------------------------------
class _Inline:
    """An evaluation run lazily in this process when its result is wanted (workers=1)."""

    def __init__(self, estimator: Estimator, arch: Architecture) -> None:
        self.estimator, self.arch = estimator, arch

    def result(self) -> tuple[Result, float]:
        return evaluate_safely(self.estimator, self.arch)


class InlineBackend:
    """One worker: each evaluation runs in this process when its result is asked for."""

    def __init__(self, estimator: Estimator) -> None:
        self.estimator = estimator

    def submit(self, arch: Architecture) -> Pending:
        return _Inline(self.estimator, arch)

    def restart(self) -> None:
        pass

    def close(self) -> None:
        pass


class _PoolPending:
    """A pool future whose broken pool reads as ``WorkerLost``."""

    def __init__(self, fut: Future[tuple[Result, float]]) -> None:
        self.fut = fut

    def result(self) -> tuple[Result, float]:
        try:
            return self.fut.result()
        except BrokenProcessPool as e:
            raise WorkerLost(str(e)) from e


class ProcessPoolBackend:
    """``workers`` spawned processes, each holding the (pickled) estimator; started at the first submit."""

    def __init__(self, estimator: Estimator, workers: int) -> None:
        self.estimator = estimator
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_init_worker, initargs=(self.estimator,))
        return self.pool

    def submit(self, arch: Architecture) -> Pending:
        return _PoolPending(self._pool().submit(_evaluate_in_worker, arch))

    def restart(self) -> None:
        """After a worker died: drop the broken pool (the next submit makes a new one)."""
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def make_backend(estimator: Estimator, workers: int) -> Backend:
    """The local backend: inline for one worker, a process pool for more."""
    if workers <= 1:
        return InlineBackend(estimator)
    return ProcessPoolBackend(estimator, workers)
