"""The Ray backend: each evaluation is a Ray task on a local Ray instance or a cluster.

The driver keeps the strategy and the run store (one writer); workers only evaluate. The estimator (with its
dataset) goes to the object store once (``ray.put``) and each worker process keeps the last one it fetched, so
worker machines need the installed package but neither the data folder nor the repo. Per task: the trial's
resources (``num_cpus``, default 1; ``num_gpus``; ``memory``), torch/BLAS threads = ``int(num_cpus)`` (at least
1), and with a GPU the estimator trains on the one Ray assigned (``use_device("cuda")``: Ray sets
``CUDA_VISIBLE_DEVICES`` so ``cuda`` is that GPU).

Faults: a worker process or node that dies mid-task is retried by Ray (``max_retries``; the loop records the
trial once, when its result is told); when the retries are spent the trial is ``failed`` ("worker died"). An
estimator exception is a ``failed`` trial at once (``evaluate_safely`` catches it; Ray's ``retry_exceptions`` is
off). A trial running past ``trial_timeout`` seconds (counted from its start on Ray) is cancelled (its worker
process killed) and recorded ``failed``. If the cluster goes away the search stops with one line; ``--resume``
continues it from the store.

Why tasks and not a pool of actors: tasks get Ray's retries on lost workers and nodes for free, and the worker
cache keeps the estimator warm like an actor would; an actor pool would need its own restart bookkeeping.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from nasforge.errors import NasforgeError
from nasforge.runner._backends import INSTALL_RAY, Pending, TrialResources, evaluate_safely
from nasforge.spaces import Architecture, Result

if TYPE_CHECKING:
    from nasforge.estimators import Estimator

_CACHE: dict[str, Any] = {}  # in a Ray worker process: object id -> the object, the last one fetched


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise NasforgeError(INSTALL_RAY) from None
    return ray


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def _check_reachable(address: str) -> None:
    """One clear line when nothing listens at ``HOST:PORT`` (Ray itself would retry for a minute)."""
    if address == "auto":
        return
    host, sep, port = address.rpartition(":")
    if address.startswith("ray://"):
        raise NasforgeError(f"--ray-address {address!r}: Ray Client addresses (ray://) are not supported; give the "
                            "head node's HOST:PORT (the GCS port of `ray start --head --port PORT`)")
    if not sep or not host or not port.isdigit():
        raise NasforgeError(f"--ray-address {address!r} is not HOST:PORT (e.g. 127.0.0.1:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as e:
        raise NasforgeError(f"cannot reach a Ray cluster at {address}: {e.strerror or e}; start one with "
                            "`ray start --head --port PORT` or fix --ray-address") from None


def _use_token_if_any() -> None:
    """``ray start --head`` turns token authentication on and saves the token in ``~/.ray/auth_token``, but a
    driver connecting by address uses it only in token mode: switch that on (as Ray does for a local instance)
    when a token is there and ``RAY_AUTH_MODE`` is not set."""
    try:
        from ray._private.authentication import authentication_token_setup as auth
    except ImportError:  # a Ray without token authentication
        return
    quiet = logging.getLogger(auth.__name__)
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        auth.maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    finally:
        quiet.setLevel(level)


def connect(address: str | None) -> bool:
    """Connect this process to Ray (a new local instance when ``address`` is None) unless it is connected
    already; True when this call started the connection (and the caller should shut it down)."""
    ray = _ray()
    if ray.is_initialized():
        return False
    if address:
        _check_reachable(address)
        _use_token_if_any()
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                     _node_ip_address="127.0.0.1")
    except NasforgeError:
        raise
    except Exception as e:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise NasforgeError(f"cannot connect to {where}: {_first_line(e)}") from None
    return True


def _cached(holder: list[Any]) -> Any:
    """The object behind ``holder[0]`` (an ObjectRef, passed in a list so Ray does not fetch it for every
    task), fetched once per worker process."""
    import ray

    ref = holder[0]
    key = ref.hex()
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = ray.get(ref)
    return _CACHE[key]


def _evaluate_task(holder: list[Any], arch: Architecture, threads: int, gpu: float) -> tuple[Result, float]:
    """A Ray task: evaluate ``arch`` with the cached estimator on this task's CPUs (and GPU)."""
    import ray

    estimator = _cached(holder)
    if gpu > 0 and ray.get_gpu_ids():
        use = getattr(estimator, "use_device", None)
        if use is not None:
            use("cuda")
    return evaluate_safely(estimator, arch, threads)


_REMOTE: dict[str, Any] = {}


def _remote(fn: Callable[..., Any]) -> Any:
    """``ray.remote(fn)``, made once (Ray is imported only when the backend is used)."""
    key = f"{fn.__module__}.{fn.__qualname__}"
    if key not in _REMOTE:
        _REMOTE[key] = _ray().remote(fn)
    return _REMOTE[key]


def task_options(resources: TrialResources, max_retries: int) -> dict[str, Any]:
    """Ray's options of one evaluation task."""
    opts: dict[str, Any] = {"num_cpus": 1.0 if resources.cpu is None else resources.cpu,
                            "num_gpus": resources.gpu, "max_retries": max_retries, "retry_exceptions": False}
    if resources.memory is not None:
        opts["memory"] = resources.memory
    return opts


def _lost_errors() -> tuple[type[BaseException], ...]:
    """Ray's errors for a worker or node that died and could not be retried (again)."""
    ex = _ray().exceptions
    return (ex.WorkerCrashedError, ex.NodeDiedError, ex.ObjectLostError, ex.LocalRayletDiedError)


class _RayPending:
    """One evaluation: queued in the driver until a worker slot is free, then a Ray task."""

    def __init__(self, backend: RayBackend, arch: Architecture) -> None:
        self.backend, self.arch = backend, arch
        self.ref: Any = None
        self.started = 0.0

    def result(self) -> tuple[Result, float]:
        backend, ray = self.backend, self.backend.ray
        if self.ref is None:  # the loop asks for the oldest, which is started first; this is only a guard
            backend.start(self)
        try:
            timeout = backend.trial_timeout
            if timeout is not None:
                ready, _ = ray.wait([self.ref], timeout=max(0.0, self.started + timeout - time.monotonic()))
                if not ready:  # past its time: kill it (force: its worker process ends) and record it failed
                    with contextlib.suppress(Exception):
                        ray.cancel(self.ref, force=True)
                    seconds = time.monotonic() - self.started
                    return Result.failure(f"timed out after {timeout:g} s (trial timeout)", seconds=seconds), seconds
            return ray.get(self.ref)
        except _lost_errors() as e:  # Ray ran it again max_retries times already: this evaluation kills its worker
            return Result.failure(f"worker process died after {backend.max_retries} retries (killed, out of memory "
                                  f"or crashed): {_first_line(e)}"), 0.0
        except ray.exceptions.RayTaskError as e:  # evaluate_safely never raises: the worker cannot run it at all
            raise NasforgeError("Ray workers cannot run the evaluation "
                                f"({_first_line(e.cause if e.cause is not None else e)}); every node needs nasforge "
                                "and the estimator's modules installed") from None
        except ray.exceptions.RayError as e:
            raise backend.gone(e) from None
        finally:
            backend.finished(self)


class RayBackend:
    """Evaluations as Ray tasks, at most ``workers`` running at once (more asked ahead wait in the driver)."""

    def __init__(self, estimator: Estimator, workers: int, resources: TrialResources | None = None,
                 address: str | None = None, max_retries: int = 3, trial_timeout: float | None = None) -> None:
        self.ray = _ray()
        self.trial_timeout = trial_timeout
        self.max_retries = max_retries
        self.address = address
        self.workers = workers
        self.resources = resources or TrialResources()
        self.queue: deque[_RayPending] = deque()
        self.running: dict[int, _RayPending] = {}
        self.owns = connect(address)
        try:
            self._check_fits()
            self.estimator_ref = self.ray.put(estimator)
        except BaseException:
            self.close()
            raise
        self.threads = max(1, int(1.0 if self.resources.cpu is None else self.resources.cpu))
        self.fn = _remote(_evaluate_task).options(**task_options(self.resources, max_retries))

    def _check_fits(self) -> None:
        """One line when no node of the cluster could ever run a trial with these resources."""
        need = {"CPU": 1.0 if self.resources.cpu is None else self.resources.cpu, "GPU": self.resources.gpu}
        nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]
        if nodes and not any(all(n.get(k, 0.0) >= v for k, v in need.items() if v) for n in nodes):
            have = "; ".join(f"{n.get('CPU', 0):g} CPU, {n.get('GPU', 0):g} GPU" for n in nodes)
            raise NasforgeError(f"no Ray node can run a trial needing {need['CPU']:g} CPU and {need['GPU']:g} GPU "
                                f"(nodes have: {have}); lower --trial-resources or add nodes")

    def gone(self, e: BaseException) -> NasforgeError:
        where = f"the Ray cluster at {self.address}" if self.address else "the local Ray instance"
        return NasforgeError(f"lost {where} ({_first_line(e)}); the trials so far are stored: start the cluster "
                             "again and continue with --resume")

    def submit(self, arch: Architecture) -> Pending:
        p = _RayPending(self, arch)
        self.queue.append(p)
        self._pump()
        return p

    def start(self, p: _RayPending) -> None:
        if p in self.queue:
            self.queue.remove(p)
        try:
            p.ref = self.fn.remote([self.estimator_ref], p.arch, self.threads, self.resources.gpu)
            p.started = time.monotonic()  # the trial timeout's clock (a task waits for a free slot in the driver)
        except self.ray.exceptions.RayError as e:
            raise self.gone(e) from None
        self.running[id(p)] = p

    def finished(self, p: _RayPending) -> None:
        self.running.pop(id(p), None)
        self._pump()

    def _pump(self) -> None:
        while self.queue and len(self.running) < self.workers:
            self.start(self.queue[0])

    def _cancel(self) -> None:
        self.queue.clear()
        for p in list(self.running.values()):
            with contextlib.suppress(Exception):  # already finished, or the cluster is gone
                self.ray.cancel(p.ref, force=True)
        self.running.clear()

    def close(self) -> None:
        if self.ray.is_initialized():
            self._cancel()
            if self.owns:
                self.ray.shutdown()


def ray_map(fn: Callable[..., Any], shared: Any, items: Iterable[Any], workers: int,
            resources: TrialResources | None = None, address: str | None = None,
            max_retries: int = 3) -> Iterator[Any]:
    """``fn(shared, item)`` for each item as Ray tasks, at most ``workers`` in flight, results in item order;
    ``shared`` goes to the object store once. (The benchmark harness spreads its seeds with it.)"""
    ray = _ray()
    res = resources or TrialResources()
    owns = connect(address)
    try:
        ref = ray.put(shared)
        remote = _remote(_map_task).options(**task_options(res, max_retries))
        threads = max(1, int(1.0 if res.cpu is None else res.cpu))
        pending: list[Any] = []
        it = iter(items)
        done = False
        while True:
            while not done and len(pending) < workers:
                try:
                    pending.append(remote.remote([ref], fn, threads, next(it)))
                except StopIteration:
                    done = True
            if not pending:
                break
            try:
                yield ray.get(pending.pop(0))
            except ray.exceptions.RayTaskError as e:
                raise NasforgeError(f"a Ray task failed: {_first_line(e.cause if e.cause is not None else e)}") \
                    from None
            except ray.exceptions.RayError as e:
                where = f"the Ray cluster at {address}" if address else "the local Ray instance"
                raise NasforgeError(f"lost {where} ({_first_line(e)})") from None
    finally:
        if owns and ray.is_initialized():
            ray.shutdown()


def _map_task(holder: list[Any], fn: Callable[..., Any], threads: int, item: Any) -> Any:
    from nasforge.runner._backends import thread_limit

    with thread_limit(threads):
        return fn(_cached(holder), item)
