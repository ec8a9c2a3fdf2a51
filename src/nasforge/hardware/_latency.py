"""Measured latency of a module: host CPU (threads pinned), CUDA (synchronised) or onnxruntime.

Every measurement runs ``warmup`` untimed calls, then ``repeats`` timed calls of one forward pass at
batch size ``input_shape[0]`` (pass ``(1, C, H, W)`` for per-sample latency), and reports the median,
minimum and inter-quartile range in milliseconds. Warm-up lasts at least ``min_warmup_s`` as well: a host
that has been idle runs the first fraction of a second up to 2x slower. The median is the number to use on a
quiet machine: it ignores the occasional preempted run that a mean would absorb.

On a shared host (a VM, a laptop with other work) slow spells last seconds, longer than one measurement, so
compare modules with ``measure_latencies``: it interleaves them over several rounds spread in time, and the
minimum over all rounds (uncontended latency) is the stable figure; every module sees the same spells.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from nasforge.errors import NasforgeError

if TYPE_CHECKING:
    from torch import nn

RUNTIMES = ("torch", "onnxruntime")


@dataclass(frozen=True)
class LatencyStats:
    """Summary of ``repeats`` timed forward passes, in milliseconds."""

    median_ms: float
    min_ms: float
    iqr_ms: float
    mean_ms: float
    repeats: int
    device: str
    runtime: str
    threads: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stats_of(times_ms: Sequence[float], device: str, runtime: str, threads: int) -> LatencyStats:
    """Median, min, IQR and mean of raw timings."""
    t = np.asarray(times_ms, dtype=float)
    q1, med, q3 = np.percentile(t, [25, 50, 75])
    return LatencyStats(float(med), float(t.min()), float(q3 - q1), float(t.mean()), len(t), device, runtime,
                        threads)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Pin torch's intra-op thread count to ``n`` and restore the previous count afterwards."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _time_calls(fn: Callable[[], Any], warmup: int, repeats: int,
                sync: Callable[[], None] | None = None, min_warmup_s: float = 0.0) -> list[float]:
    t_end = time.perf_counter() + min_warmup_s
    n = 0
    while n < warmup or time.perf_counter() < t_end:
        fn()
        n += 1
    if sync is not None:
        sync()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def _check(input_shape: Sequence[int], device: str, runtime: str, threads: int, warmup: int, repeats: int) -> str:
    if runtime not in RUNTIMES:
        raise NasforgeError(f"unknown runtime {runtime!r}; allowed: {', '.join(RUNTIMES)}")
    dev = "cpu" if device in ("cpu", "host") else device
    if not (dev == "cpu" or dev == "cuda" or dev.startswith("cuda:")):
        raise NasforgeError(f"unknown latency device {device!r}; allowed: cpu (or host), cuda, cuda:N")
    if dev != "cpu" and runtime != "torch":
        raise NasforgeError(f"runtime {runtime!r} is measured on the host CPU only; use --device cpu")
    if threads < 1:
        raise NasforgeError(f"threads={threads} must be >= 1")
    if warmup < 0 or repeats < 1:
        raise NasforgeError(f"warmup={warmup} must be >= 0 and repeats={repeats} >= 1")
    if len(input_shape) < 2 or any(int(s) <= 0 for s in input_shape):
        raise NasforgeError(f"input shape {tuple(input_shape)} must include the batch, e.g. (1, 3, 224, 224)")
    return dev


def measure_latency(module: nn.Module, input_shape: Sequence[int], device: str = "cpu", runtime: str = "torch",
                    threads: int = 1, warmup: int = 10, repeats: int = 50, min_warmup_s: float = 0.1) -> LatencyStats:
    """Latency of one forward pass of ``module`` in eval mode on an input of ``input_shape`` (batch first).

    ``device``: ``cpu``/``host`` or ``cuda`` (``torch.cuda.synchronize`` around each timed call); torch threads
    are pinned to ``threads`` and restored afterwards (``measure_latencies`` with one module and one round).
    ``runtime="onnxruntime"`` exports the module to ONNX and times an onnxruntime CPU session with ``threads``
    intra-op threads.
    """
    _check(input_shape, device, runtime, threads, warmup, repeats)
    if runtime == "onnxruntime":
        return _measure_onnx(module, input_shape, threads, warmup, repeats, min_warmup_s)
    (stats,) = measure_latencies([module], input_shape, device, threads, warmup, repeats, rounds=1,
                                 min_warmup_s=min_warmup_s, min_time_s=0.0)
    return stats


def measure_latencies(modules: Sequence[nn.Module], input_shapes: Sequence[Sequence[int]] | Sequence[int],
                      device: str = "cpu", threads: int = 1, warmup: int = 2, repeats: int = 10, rounds: int = 5,
                      min_warmup_s: float = 0.3, min_time_s: float = 1.0) -> list[LatencyStats]:
    """Latencies of several modules (torch, eval mode), interleaved: ``rounds`` times, each module runs
    ``warmup`` untimed then ``repeats`` timed calls. ``input_shapes`` is one shape for all or one per module.

    The rounds spread every module's samples over the whole measurement, so a slow spell of the host hits all
    of them alike; ``min_ms`` (uncontended latency) is then stable across processes to a few percent where
    a single burst of calls can be 2x off. The whole set first warms up for ``min_warmup_s``, and rounds go on
    past ``rounds`` until they have lasted ``min_time_s`` (a few modules alone would otherwise be one burst).
    """
    import torch

    shapes: list[tuple[int, ...]] = []
    for s in input_shapes:
        if isinstance(s, int):  # one shape for every module
            shapes = [tuple(int(v) for v in cast(Sequence[int], input_shapes))] * len(modules)
            break
        shapes.append(tuple(int(v) for v in s))
    if len(shapes) != len(modules):
        raise NasforgeError(f"{len(modules)} modules but {len(shapes)} input shapes; give one shape or one each")
    if rounds < 1:
        raise NasforgeError(f"rounds={rounds} must be >= 1")
    dev = "cpu"
    for shp in shapes or [(1, 1)]:
        dev = _check(shp, device, "torch", threads, warmup, repeats)
    if dev != "cpu" and not torch.cuda.is_available():
        raise NasforgeError(f"device {device!r} asked for but CUDA is not available here; use --device cpu")
    sync = (lambda: torch.cuda.synchronize(dev)) if dev != "cpu" else None
    modes = [m.training for m in modules]
    homes = [next((p.device for p in m.parameters()), torch.device("cpu")) for m in modules]
    times: list[list[float]] = [[] for _ in modules]
    try:
        xs = []
        for m, shp in zip(modules, shapes, strict=True):
            m.eval().to(dev)
            xs.append(torch.randn(*shp, device=dev))
        calls = [(lambda m=m, x=x: m(x)) for m, x in zip(modules, xs, strict=True)]
        with torch_threads(threads), torch.inference_mode():
            t_end = time.perf_counter() + min_warmup_s
            while calls and time.perf_counter() < t_end:
                for fn in calls:
                    fn()
            t_end = time.perf_counter() + min_time_s
            done = 0
            while calls and (done < rounds or time.perf_counter() < t_end):
                for fn, out in zip(calls, times, strict=True):
                    out.extend(_time_calls(fn, warmup, repeats, sync))
                done += 1
    finally:
        for m, mode, home in zip(modules, modes, homes, strict=True):
            m.to(home).train(mode)
    return [stats_of(t, dev, "torch", threads) for t in times]


def export_onnx(module: nn.Module, input_shape: Sequence[int], path: str | os.PathLike[str]) -> None:
    """Export ``module`` (eval mode) to an ONNX file for a fixed input shape."""
    import torch

    was_training = module.training
    module.eval()
    try:
        x = torch.randn(*input_shape)
        # the TorchScript exporter needs no extra package (the dynamo one needs onnxscript); hush its notice
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(module, (x,), str(path), input_names=["input"], output_names=["output"],
                              opset_version=17, dynamo=False)
    finally:
        module.train(was_training)


def measure_onnx_file(path: str | os.PathLike[str], input_shape: Sequence[int], threads: int = 1,
                      warmup: int = 10, repeats: int = 50, min_warmup_s: float = 0.1) -> LatencyStats:
    """Latency of an exported ONNX model in an onnxruntime CPU session."""
    _check(input_shape, "cpu", "onnxruntime", threads, warmup, repeats)
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types for unreadable files
        raise NasforgeError(f"cannot load ONNX model {str(path)!r}: {str(e).splitlines()[0]}") from None
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal(tuple(int(s) for s in input_shape)).astype(np.float32)
    times = _time_calls(lambda: sess.run(None, {name: x}), warmup, repeats, None, min_warmup_s)
    return stats_of(times, "cpu", "onnxruntime", threads)


def _measure_onnx(module: nn.Module, input_shape: Sequence[int], threads: int, warmup: int,
                  repeats: int, min_warmup_s: float) -> LatencyStats:
    with tempfile.TemporaryDirectory(prefix="nasforge-onnx-") as d:
        path = os.path.join(d, "model.onnx")
        export_onnx(module, input_shape, path)
        return measure_onnx_file(path, input_shape, threads, warmup, repeats, min_warmup_s)
