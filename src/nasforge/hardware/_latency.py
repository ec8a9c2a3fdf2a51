"""Measured latency of a module: host CPU (threads pinned), CUDA (synchronised) or onnxruntime.

Every measurement runs ``warmup`` untimed calls, then ``repeats`` timed calls of one forward pass at
batch size ``input_shape[0]`` (pass ``(1, C, H, W)`` for per-sample latency), and reports the median,
minimum and inter-quartile range in milliseconds. The median is the number to use: it ignores the
occasional preempted run that a mean would absorb.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

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
                sync: Callable[[], None] | None = None) -> list[float]:
    for _ in range(warmup):
        fn()
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
                    threads: int = 1, warmup: int = 10, repeats: int = 50) -> LatencyStats:
    """Latency of one forward pass of ``module`` in eval mode on an input of ``input_shape`` (batch first).

    ``device``: ``cpu``/``host`` (torch threads pinned to ``threads`` and restored afterwards) or ``cuda``
    (``torch.cuda.synchronize`` around each timed call). ``runtime="onnxruntime"`` exports the module to
    ONNX and times an onnxruntime CPU session with ``threads`` intra-op threads.
    """
    dev = _check(input_shape, device, runtime, threads, warmup, repeats)
    if runtime == "onnxruntime":
        return _measure_onnx(module, input_shape, threads, warmup, repeats)
    import torch

    if dev != "cpu" and not torch.cuda.is_available():
        raise NasforgeError(f"device {device!r} asked for but CUDA is not available here; use --device cpu")
    was_training = module.training
    module.eval()
    try:
        if dev == "cpu":
            x = torch.randn(*input_shape)
            with torch_threads(threads), torch.inference_mode():
                times = _time_calls(lambda: module(x), warmup, repeats)
            return stats_of(times, "cpu", "torch", threads)
        params = list(module.parameters())
        home = params[0].device if params else torch.device("cpu")
        module.to(dev)
        try:
            x = torch.randn(*input_shape, device=dev)
            with torch.inference_mode():
                times = _time_calls(lambda: module(x), warmup, repeats, lambda: torch.cuda.synchronize(dev))
        finally:
            module.to(home)
        return stats_of(times, dev, "torch", threads)
    finally:
        module.train(was_training)


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
                      warmup: int = 10, repeats: int = 50) -> LatencyStats:
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
    times = _time_calls(lambda: sess.run(None, {name: x}), warmup, repeats)
    return stats_of(times, "cpu", "onnxruntime", threads)


def _measure_onnx(module: nn.Module, input_shape: Sequence[int], threads: int, warmup: int,
                  repeats: int) -> LatencyStats:
    with tempfile.TemporaryDirectory(prefix="nasforge-onnx-") as d:
        path = os.path.join(d, "model.onnx")
        export_onnx(module, input_shape, path)
        return measure_onnx_file(path, input_shape, threads, warmup, repeats)
