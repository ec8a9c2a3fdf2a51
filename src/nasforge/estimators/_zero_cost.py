"""Zero-cost proxies: score an untrained network from one batch, and an estimator that uses them.

Each proxy is a pure function ``proxy(module, inputs, targets) -> float`` (it works on a deep copy, so the
module, its weights, gradients and batch-norm statistics are left as they were). Definitions follow
NASLib / NAS-Bench-Suite-Zero (from Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS"), which
recorded the scores ``bench/zero_cost.py`` checks against:

- ``synflow``: BN removed, every parameter replaced by its absolute value, float64, one all-ones input;
  the sum over conv/linear weights of ``|w * d(sum of outputs)/dw|``. Returned as its natural log (as
  NASLib records it; the sum itself grows like e^100); -inf when it is 0 (no path from input to output).
- ``grad_norm``: train mode (BN on batch statistics); cross-entropy on the batch; the sum over conv/linear
  layers of the L2 norm of the weight gradient.
- ``snip``: as ``grad_norm`` but the sum of ``|w * dL/dw|`` (the gradient of SNIP's weight mask).
- ``jacob_cov``: train mode; the input gradient of the summed outputs per sample; with ``C`` the correlation
  matrix of those gradients, ``-sum(log(v + 1e-5) + 1 / (v + 1e-5))`` over its eigenvalues ``v``; NaN when the
  gradients are constant (NASLib ranks those last).
- ``naswot``: train mode, no gradients; binary codes ``out > 0`` of every ReLU-like activation module, the
  kernel ``K = codes @ codes.T + (1 - codes) @ (1 - codes).T`` summed over them; the log-determinant of K.
- ``params``, ``macs``: the trivial baselines (parameter count; MACs per sample from ``nasforge.cost``).

NASLib fed one batch of 32 CIFAR-10 training images; here ``random_batch`` gives CIFAR-shaped standard
normal tensors with random labels (the default) and ``ZeroCostEstimator`` can take a ``Dataset`` instead.
Measured on the 491 NB201 archs of NASLib's file (``bench/zero_cost.py``, Spearman with val accuracy):
with 32 Fashion-MNIST images every proxy is within 0.05 of NASLib's own (jacob_cov 0.819 vs 0.747, snip
0.561 vs 0.599, grad_norm 0.551 vs 0.588); with noise jacob_cov drops to 0.651, so give ``jacob_cov`` real
images. synflow, params and MACs need no data (synflow 0.738 vs 0.737; 0.999 with NASLib's synflow).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.data import Dataset
from nasforge.errors import NasforgeError
from nasforge.estimators._base import Result
from nasforge.spaces import Architecture, SearchSpace

Proxy = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]

_WEIGHTED = (nn.Conv2d, nn.Linear)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
_RELU_LIKE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardswish, nn.SiLU, nn.GELU)
JACOB_COV_K = 1e-5


def _weighted(module: nn.Module) -> list[nn.Conv2d | nn.Linear]:
    return [m for m in module.modules() if isinstance(m, _WEIGHTED)]


def _train_copy(module: nn.Module) -> nn.Module:
    net = copy.deepcopy(module)
    net.train()
    net.zero_grad(set_to_none=True)
    return net


def _loss_backward(module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> nn.Module:
    """A train-mode copy of ``module`` holding the gradients of the cross-entropy on the batch."""
    net = _train_copy(module)
    F.cross_entropy(net(inputs), targets).backward()
    return net


def synflow(module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> float:
    """log of SynFlow: sum of |w * grad w| with |params|, no BN, float64 and an all-ones input."""
    net = copy.deepcopy(module)
    for name, m in list(net.named_modules()):
        if isinstance(m, _BATCH_NORMS):
            parent, _, child = name.rpartition(".")
            setattr(net.get_submodule(parent) if parent else net, child, nn.Identity())
    net = net.double().train()
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    net.zero_grad(set_to_none=True)
    ones = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=inputs.device)
    net(ones).sum().backward()
    with torch.no_grad():
        total = sum(float((m.weight * m.weight.grad).abs().sum()) for m in _weighted(net) if m.weight.grad is not None)
    return math.log(total) if total > 0 else -math.inf


def _grad_scores(net: nn.Module) -> tuple[float, float]:
    """(grad_norm, snip) of a network holding loss gradients."""
    norm = sal = 0.0
    with torch.no_grad():
        for m in _weighted(net):
            if m.weight.grad is not None:
                norm += float(m.weight.grad.norm())
                sal += float((m.weight * m.weight.grad).abs().sum())
    return norm, sal


def grad_norm(module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Sum over conv/linear layers of the L2 norm of the weight's cross-entropy gradient (train mode)."""
    return _grad_scores(_loss_backward(module, inputs, targets))[0]


def snip(module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """SNIP saliency: sum over conv/linear weights of |w * dL/dw| (train mode, cross-entropy)."""
    return _grad_scores(_loss_backward(module, inputs, targets))[1]


def grad_norm_and_snip(module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
    """``(grad_norm, snip)`` from one backward pass: the same values as the two calls, at half the cost."""
    return _grad_scores(_loss_backward(module, inputs, targets))


def jacob_cov(module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> float:
    """Jacobian covariance score: -sum(log(v + k) + 1/(v + k)) over eigenvalues v of the input-gradient
    correlation matrix; NaN when the gradients are constant."""
    net = _train_copy(module)
    for p in net.parameters():
        p.requires_grad_(False)  # only the input gradient is needed; the score is unchanged
    x = inputs.detach().clone().requires_grad_(True)
    y = net(x)
    if not y.requires_grad:
        return math.nan  # the output does not depend on the input at all
    y.backward(torch.ones_like(y))
    assert x.grad is not None
    jac = x.grad.reshape(x.shape[0], -1).double().cpu().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.corrcoef(jac)
    if not np.all(np.isfinite(corr)):
        return math.nan
    v = np.linalg.eigvalsh(corr) + JACOB_COV_K
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(-np.sum(np.log(v) + 1.0 / v))


def naswot(module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> float:
    """NASWOT: log-determinant of the Hamming-similarity kernel of the ReLU-like activation patterns."""
    net = _train_copy(module)
    n = inputs.shape[0]
    kernel = torch.zeros((n, n), dtype=torch.float64, device=inputs.device)

    def hook(_m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        nonlocal kernel
        code = (out.detach().reshape(n, -1) > 0).double()
        kernel = kernel + code @ code.T + (1.0 - code) @ (1.0 - code).T

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, _RELU_LIKE)]
    try:
        with torch.no_grad():
            net(inputs)
    finally:
        for h in handles:
            h.remove()
    sign, logdet = np.linalg.slogdet(kernel.cpu().numpy())
    return float(logdet) if sign > 0 else -math.inf


def params(module: nn.Module, inputs: torch.Tensor | None = None, targets: torch.Tensor | None = None) -> float:
    """Number of parameters."""
    return float(sum(p.numel() for p in module.parameters()))


def macs(module: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> float:
    """Multiply-accumulates per sample, traced by ``nasforge.cost.profile``."""
    from nasforge.cost import profile

    return float(profile(module, tuple(inputs.shape[1:])).macs)


PROXIES: dict[str, Proxy] = {
    "synflow": synflow, "grad_norm": grad_norm, "snip": snip, "jacob_cov": jacob_cov, "naswot": naswot,
    "params": params, "macs": macs,
}


def get_proxy(name: str) -> Proxy:
    """A proxy function by name."""
    try:
        return PROXIES[name]
    except KeyError:
        raise NasforgeError(f"unknown zero-cost proxy {name!r}; allowed: {', '.join(PROXIES)}") from None


def random_batch(input_shape: tuple[int, ...], batch_size: int = 32, num_classes: int = 10, seed: int = 0,
                 device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded batch of standard-normal inputs ``(batch_size, *input_shape)`` and uniform random labels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((batch_size, *input_shape), generator=g)
    y = torch.randint(num_classes, (batch_size,), generator=g)
    return x.to(device), y.to(device)


class ZeroCostEstimator:
    """Scores each architecture by a zero-cost proxy of its freshly initialised network (reward = score).

    The network is ``space.build(arch, num_classes=..., **build_options)`` with weights drawn from ``seed``.
    The batch is ``batch_size`` samples: standard-normal noise with random labels of the space's input
    shape, or, with ``dataset``, a seeded draw of its training images (resized to the space's input shape).
    ``params`` and ``macs`` come from the space's analytic cost (no network is built). A non-finite score
    (e.g. a network with no path from input to output) is a failed result.
    """

    def __init__(self, space: SearchSpace, proxy: str = "synflow", batch_size: int = 32,
                 num_classes: int | None = None, dataset: Dataset | None = None, seed: int = 0,
                 device_torch: str = "cpu", build_options: Mapping[str, Any] | None = None,
                 cost_precision: str = "fp32") -> None:
        self.proxy_name = proxy
        self.proxy = get_proxy(proxy)
        if batch_size < 2:
            raise NasforgeError(f"batch_size must be at least 2, got {batch_size!r}")
        if device_torch not in ("cpu", "cuda"):
            raise NasforgeError(f"unknown torch device {device_torch!r}; allowed: cpu, cuda")
        if device_torch == "cuda" and not torch.cuda.is_available():
            raise NasforgeError("device_torch 'cuda' requested but no CUDA device is available; use 'cpu'")
        self.space = space
        self.batch_size = batch_size
        self.dataset = dataset
        self.num_classes = num_classes or (dataset.num_classes if dataset is not None else 10)
        self.seed = seed
        self.device = torch.device(device_torch)
        self.build_options = dict(build_options or {})
        self.cost_precision = cost_precision
        self._batches: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    def _shape(self, arch: Architecture) -> tuple[int, ...]:
        try:
            return tuple(int(v) for v in self.space.input_shape(arch))
        except NotImplementedError:
            if self.dataset is None:
                raise NasforgeError(f"space {self.space.name!r} has no input_shape; pass a dataset") from None
            return self.dataset.input_shape

    def batch(self, arch: Architecture) -> tuple[torch.Tensor, torch.Tensor]:
        """The (inputs, targets) the proxy sees for ``arch`` (the same for every architecture of a shape)."""
        shape = self._shape(arch)
        if shape not in self._batches:
            if self.dataset is None:
                self._batches[shape] = random_batch(shape, self.batch_size, self.num_classes, self.seed, self.device)
            else:
                ds = self.dataset.with_channels(shape[0]).resized((shape[1], shape[2]))
                g = torch.Generator().manual_seed(self.seed)
                idx = torch.randperm(len(ds.train), generator=g)[: self.batch_size]
                self._batches[shape] = (ds.train.x[idx].to(self.device), ds.train.y[idx].to(self.device))
        return self._batches[shape]

    def _cost(self, arch: Architecture) -> dict[str, float]:
        d = self.space.cost(arch, precision=self.cost_precision).to_dict(layers=False)
        return {k: float(v) for k, v in d.items() if isinstance(v, int | float) and not isinstance(v, bool)}

    def score(self, arch: Architecture) -> float:
        """The raw proxy score of ``arch`` (may be non-finite; raises on a broken network)."""
        if self.proxy_name in ("params", "macs"):
            return self._cost(arch)[self.proxy_name]
        inputs, targets = self.batch(arch)
        with torch.random.fork_rng(devices=[self.device.index or 0] if self.device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            model = self.space.build(arch, num_classes=self.num_classes, **self.build_options).to(self.device)
            return self.proxy(model, inputs, targets)

    def evaluate(self, arch: Architecture) -> Result:
        start = time.perf_counter()
        try:
            value = self.score(arch)
            cost = self._cost(arch)
        except Exception as e:
            lines = str(e).strip().splitlines()
            return Result.failure(f"{type(e).__name__}: {lines[0] if lines else ''}",
                                  seconds=time.perf_counter() - start)
        seconds = time.perf_counter() - start
        if not math.isfinite(value):
            return Result.failure(f"{self.proxy_name} is {value} (no signal through the network)", seconds)
        return Result(value, {self.proxy_name: value}, cost, seconds)
