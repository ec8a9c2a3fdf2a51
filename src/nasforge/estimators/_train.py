"""The training estimator: train each candidate from scratch on a dataset, report validation accuracy.

Speed: the data live in memory as tensors (on the training device), each epoch is one shuffled gather and
then plain slices, so a step costs what a hand-written PyTorch loop costs (``bench/train_speed.py``
measures the ratio). Determinism: weights, shuffling and dropout all come from ``seed`` inside a forked
RNG, so on CPU the same seed gives the same result and the caller's global RNG is left untouched.
Robustness: a candidate that raises, runs out of memory or whose loss becomes NaN/inf gives
``Result.failure`` with the error; no exception escapes ``evaluate``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.data import Dataset
from nasforge.errors import NasforgeError
from nasforge.estimators._base import Result
from nasforge.spaces import Architecture, SearchSpace

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "none")
DEVICES = ("cpu", "cuda")
DEFAULT_LR = {"sgd": 0.1, "adam": 1e-3, "adamw": 1e-3}
MAX_CACHED_SHAPES = 4  # resized copies of the data kept (spaces with a resolution decision need several)

# Called after each rung epoch with (epoch, validation accuracy so far); a returned string stops training
# with that reason (status "pruned"), None lets it go on.
RungCallback = Callable[[int, float], "str | None"]
# The final training's progress: after each batch (epoch, epochs, step, steps), after each epoch (epoch, figures:
# train_loss, val_acc, seconds); for progress bars and the report's learning curve.
StepCallback = Callable[[int, int, int, int], None]
EpochCallback = Callable[[int, dict[str, float]], None]


class _NonFinite(Exception):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class _Tensors:
    """One dataset's splits on the training device, adapted to an input shape."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


@dataclass(frozen=True)
class _Run:
    """What one training run produced."""

    model: nn.Module
    val_acc: float
    train_loss: float
    epochs: int
    images_per_s: float
    train_seconds: float
    train_cpu_seconds: float
    stopped: str | None


@contextmanager
def _deterministic_kernels(on: bool) -> Iterator[None]:
    """While training: torch's deterministic kernels (warn-only where none exists), cuDNN without autotuning;
    the previous settings are restored afterwards."""
    if not on:
        yield
        return
    prev = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = prev[2], prev[3]


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


class TrainingEstimator:
    """Trains each architecture of ``space`` from scratch on ``dataset``; reward = validation accuracy (0..1).

    - ``epochs``: the budget per candidate (``evaluate(arch, epochs=...)`` overrides it, for multi-fidelity).
    - ``optimizer``: ``sgd`` (Nesterov momentum), ``adam`` or ``adamw``; ``lr`` defaults per optimizer
      (sgd 0.1, adam/adamw 1e-3); ``schedule``: ``cosine`` (per step, to zero at the last step) or ``none``.
    - ``device_torch``: ``cpu`` or ``cuda``. ``num_threads`` sets torch's intra-op threads for each run.
    - ``build_options`` are passed to ``space.build(arch, num_classes=..., **build_options)``.
      The number of classes comes from the data. When ``space.input_shape(arch)`` differs from the data,
      the data is resized (and grayscale repeated to 3 channels) to fit; the last 4 shapes are kept.
    - ``cost_precision``: the precision of the byte counts in ``Result.cost``.
    - ``deterministic``: on CUDA, train with torch's deterministic kernels and no cuDNN autotuning. CPU
      training is deterministic for a fixed seed without it (and torch's deterministic mode measured ~10%
      slower there), so it is not switched on for CPU.

    ``evaluate`` returns ``Result(reward=val_acc, metrics={val_acc, train_loss, epochs, images_per_s,
    train_seconds, train_cpu_seconds, params}, cost=space.cost(arch) numbers, seconds=wall time)``
    (``train_cpu_seconds``: process CPU time of the training steps, a speed measure independent of other load).
    ``final_evaluate`` also reports ``test_acc`` and returns the trained module; use it only for the final pick.
    """

    def __init__(self, space: SearchSpace, dataset: Dataset, epochs: int = 5, batch_size: int = 128,
                 optimizer: str = "sgd", lr: float | None = None, momentum: float = 0.9,
                 weight_decay: float = 5e-4, schedule: str = "cosine", label_smoothing: float = 0.0,
                 seed: int = 0, device_torch: str = "cpu", num_threads: int | None = None,
                 build_options: Mapping[str, Any] | None = None, eval_batch_size: int = 1024,
                 channels_last: bool = False, cost_precision: str = "fp32", deterministic: bool = True) -> None:
        if optimizer not in OPTIMIZERS:
            raise NasforgeError(f"unknown optimizer {optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
        if schedule not in SCHEDULES:
            raise NasforgeError(f"unknown schedule {schedule!r}; allowed: {', '.join(SCHEDULES)}")
        if device_torch not in DEVICES:
            raise NasforgeError(f"unknown torch device {device_torch!r}; allowed: {', '.join(DEVICES)}")
        if device_torch == "cuda" and not torch.cuda.is_available():
            raise NasforgeError("device_torch 'cuda' requested but no CUDA device is available; use 'cpu'")
        for name, v in (("epochs", epochs), ("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise NasforgeError(f"{name} must be a positive integer, got {v!r}")
        if num_threads is not None and num_threads < 1:
            raise NasforgeError(f"num_threads must be a positive integer, got {num_threads!r}")
        lr = DEFAULT_LR[optimizer] if lr is None else float(lr)
        if not lr > 0:
            raise NasforgeError(f"lr must be positive, got {lr!r}")
        self.space = space
        self.dataset = dataset
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.schedule = schedule
        self.label_smoothing = float(label_smoothing)
        self.seed = int(seed)
        self.device = torch.device(device_torch)
        self.num_threads = num_threads
        self.build_options = dict(build_options or {})
        self.eval_batch_size = eval_batch_size
        self.channels_last = channels_last
        self.cost_precision = cost_precision
        self.deterministic = deterministic
        self.num_classes = dataset.num_classes
        self._tensors: dict[tuple[int, int, int], _Tensors] = {}

    def use_device(self, device_torch: str) -> None:
        """Train on ``device_torch`` from now on (a backend that assigns a GPU to a trial calls it in the worker,
        where Ray's ``CUDA_VISIBLE_DEVICES`` makes ``cuda`` the assigned GPU)."""
        if torch.device(device_torch) != self.device:
            self.device = torch.device(device_torch)
            self._tensors.clear()

    # -- the Estimator contract ----------------------------------------------------------------------
    def evaluate(self, arch: Architecture, epochs: int | None = None, *, rungs: Collection[int] = (),
                 on_rung: RungCallback | None = None) -> Result:
        """Train ``arch`` for ``epochs`` (default: the estimator's) and report its validation accuracy.

        With ``on_rung``, the validation accuracy after each epoch in ``rungs`` is passed to it; if it returns
        a reason the run stops there and the result has status ``pruned`` (reward None, the partial
        ``val_acc`` in metrics, the reason in ``error``). Never raises for a bad candidate.
        """
        start = time.perf_counter()
        try:
            run = self._train(arch, self.epochs if epochs is None else epochs, set(rungs), on_rung)
            metrics, stopped = self._metrics(run), run.stopped
            del run
        except Exception as e:
            self._release()
            return Result.failure(self._explain(e), seconds=time.perf_counter() - start)
        cost = self._cost(arch)
        seconds = time.perf_counter() - start
        if stopped is not None:
            return Result(None, metrics, cost, seconds, "pruned", stopped)
        return Result(metrics["val_acc"], metrics, cost, seconds)

    def final_evaluate(self, arch: Architecture, epochs: int | None = None, *, on_step: StepCallback | None = None,
                       on_epoch: EpochCallback | None = None) -> tuple[Result, nn.Module | None]:
        """Train ``arch`` and also measure test accuracy (for the final pick only): (result, trained module).

        The module is returned on the CPU in eval mode; on failure it is None and the result says why.
        ``on_step``/``on_epoch`` see the training's progress (with ``on_epoch`` the validation accuracy is measured
        after every epoch, not only the last: the same weights, a little more time).
        """
        start = time.perf_counter()
        try:
            run = self._train(arch, self.epochs if epochs is None else epochs, set(), None, on_step, on_epoch)
            data = self._data_for(self._input_shape(arch))
            test_acc = self._accuracy(run.model, data.test_x, data.test_y)
            metrics = self._metrics(run)
            metrics["test_acc"] = test_acc
            model = run.model.to("cpu").eval()
            if self.channels_last:
                model = model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
        except Exception as e:
            self._release()
            return Result.failure(self._explain(e), seconds=time.perf_counter() - start), None
        return Result(metrics["val_acc"], metrics, self._cost(arch), time.perf_counter() - start), model

    # -- pieces ----------------------------------------------------------------------------------------
    def _input_shape(self, arch: Architecture) -> tuple[int, int, int]:
        try:
            shape = tuple(int(v) for v in self.space.input_shape(arch))
        except NotImplementedError:
            return self.dataset.input_shape
        if len(shape) != 3:
            raise NasforgeError(f"space {self.space.name!r} gives input shape {shape}, expected (C, H, W)")
        return shape[0], shape[1], shape[2]

    def _data_for(self, shape: tuple[int, int, int]) -> _Tensors:
        """The dataset adapted to ``shape`` and moved to the device, cached for the last few shapes."""
        if shape in self._tensors:
            self._tensors[shape] = self._tensors.pop(shape)  # most recently used last
        else:
            while len(self._tensors) >= MAX_CACHED_SHAPES:
                del self._tensors[next(iter(self._tensors))]
            ds = self.dataset.with_channels(shape[0]).resized((shape[1], shape[2]))
            dev = self.device
            mf = torch.channels_last if self.channels_last else torch.contiguous_format

            def put(x: torch.Tensor) -> torch.Tensor:
                return x.to(dev).contiguous(memory_format=mf)

            self._tensors[shape] = _Tensors(put(ds.train.x), ds.train.y.to(dev), put(ds.val.x), ds.val.y.to(dev),
                                            put(ds.test.x), ds.test.y.to(dev))
        return self._tensors[shape]

    def build(self, arch: Architecture) -> nn.Module:
        """The untrained module of ``arch`` with this data's number of classes (weights from the global RNG)."""
        return self.space.build(arch, num_classes=self.num_classes, **self.build_options)

    def _make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        params = [p for p in model.parameters() if p.requires_grad]
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, nesterov=self.momentum > 0,
                                   weight_decay=self.weight_decay)
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)

    def _train(self, arch: Architecture, epochs: int, rungs: set[int], on_rung: RungCallback | None,
               on_step: StepCallback | None = None, on_epoch: EpochCallback | None = None) -> _Run:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise NasforgeError(f"epochs must be a positive integer, got {epochs!r}")
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        data = self._data_for(self._input_shape(arch))
        cuda = self.device.type == "cuda"
        fork_devices = [self.device.index or 0] if cuda else []
        with torch.random.fork_rng(devices=fork_devices), _deterministic_kernels(self.deterministic and cuda):
            torch.manual_seed(self.seed)
            model = self.build(arch).to(self.device)
            if self.channels_last:
                model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # untyped overload
            opt = self._make_optimizer(model)
            gen = torch.Generator().manual_seed(self.seed)
            n = int(data.train_y.shape[0])
            bs = min(self.batch_size, n)
            steps = n // bs  # the last incomplete batch is dropped (batch norm needs > 1 sample)
            total = steps * epochs
            step = 0
            train_time = cpu_time = 0.0
            loss_value = math.nan
            stopped: str | None = None
            done = 0
            val_acc: float | None = None
            for epoch in range(1, epochs + 1):
                t0, c0 = time.perf_counter(), time.process_time()
                model.train()
                perm = torch.randperm(n, generator=gen).to(self.device)
                xs, ys = data.train_x[perm], data.train_y[perm]
                loss_sum = torch.zeros((), device=self.device)
                for i in range(steps):
                    if self.schedule == "cosine":
                        lr = 0.5 * self.lr * (1.0 + math.cos(math.pi * step / total))
                        for g in opt.param_groups:
                            g["lr"] = lr
                    xb, yb = xs[i * bs:(i + 1) * bs], ys[i * bs:(i + 1) * bs]
                    loss = F.cross_entropy(model(xb), yb, label_smoothing=self.label_smoothing)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    loss_sum += loss.detach()
                    step += 1
                    if on_step is not None:
                        on_step(epoch, epochs, i + 1, steps)
                loss_value = float(loss_sum) / steps
                if cuda:
                    torch.cuda.synchronize()
                train_time += time.perf_counter() - t0
                cpu_time += time.process_time() - c0
                done = epoch
                if not math.isfinite(loss_value):
                    raise _NonFinite(f"training loss is {loss_value} at epoch {epoch}")
                if on_epoch is not None:
                    val_acc = self._accuracy(model, data.val_x, data.val_y)
                    on_epoch(epoch, {"train_loss": loss_value, "val_acc": val_acc, "seconds": train_time})
                if on_rung is not None and epoch in rungs and epoch < epochs:
                    val_acc = self._accuracy(model, data.val_x, data.val_y)
                    stopped = on_rung(epoch, val_acc)
                    if stopped is not None:
                        break
            if stopped is None and on_epoch is None:  # with on_epoch the last epoch's figure is the final one
                val_acc = self._accuracy(model, data.val_x, data.val_y)
        assert val_acc is not None
        return _Run(model, val_acc, loss_value, done, steps * bs * done / max(train_time, 1e-9), train_time,
                    cpu_time, stopped)

    @torch.inference_mode()
    def _accuracy(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        """Top-1 accuracy (0..1) in eval mode, batched."""
        model.eval()
        n = int(y.shape[0])
        if n == 0:
            return math.nan
        correct = torch.zeros((), dtype=torch.long, device=y.device)
        for i in range(0, n, self.eval_batch_size):
            correct += (model(x[i:i + self.eval_batch_size]).argmax(1) == y[i:i + self.eval_batch_size]).sum()
        return float(correct) / n

    def _metrics(self, run: _Run) -> dict[str, float]:
        params = sum(p.numel() for p in run.model.parameters())
        return {"val_acc": run.val_acc, "train_loss": run.train_loss, "epochs": float(run.epochs),
                "images_per_s": run.images_per_s, "train_seconds": run.train_seconds,
                "train_cpu_seconds": run.train_cpu_seconds, "params": float(params)}

    def _cost(self, arch: Architecture) -> dict[str, float]:
        """The space's analytic cost numbers (empty if the space cannot cost this architecture)."""
        try:
            d = self.space.cost(arch, precision=self.cost_precision).to_dict(layers=False)
        except Exception:
            return {}
        return {k: float(v) for k, v in d.items() if isinstance(v, int | float) and not isinstance(v, bool)}

    def _explain(self, e: Exception) -> str:
        if isinstance(e, _NonFinite):
            return f"non-finite: {e}"
        if isinstance(e, torch.OutOfMemoryError):
            return f"out of memory: {_one_line(e)}"
        return _one_line(e)

    def _release(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
