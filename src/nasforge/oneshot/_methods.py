"""One-shot methods: DARTS, ProxylessNAS (binary gates + expected-latency loss) and SPOS.

Each trains a supernet once on (train, val) tensors and returns a ``OneShotResult`` whose ``arch`` is an
``Architecture`` of the same space, so the rest of the toolkit profiles, exports and reports it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from nasforge.errors import NasforgeError
from nasforge.estimators import Result
from nasforge.oneshot._supernet import Supernet, recalibrate_bn
from nasforge.spaces import Architecture, SearchSpace

Batch = tuple[Tensor, Tensor]
Progress = Callable[[int, dict[str, float]], None]


@dataclass
class OneShotResult:
    """What a one-shot search gives: the derived architecture and its history."""

    method: str
    arch: Architecture
    epochs: int
    seconds: float
    history: list[list[list[float]]] = field(default_factory=list)  # per epoch: probs per decision
    derived: list[str] = field(default_factory=list)  # derived arch string after each epoch
    info: dict[str, Any] = field(default_factory=dict)


def _batches(x: Tensor, y: Tensor, batch_size: int, g: torch.Generator) -> list[Batch]:
    idx = torch.randperm(len(x), generator=g)
    return [(x[idx[i:i + batch_size]], y[idx[i:i + batch_size]]) for i in range(0, len(x), batch_size)]


def _check_data(train: Batch, val: Batch) -> None:
    for name, (x, y) in (("train", train), ("val", val)):
        if len(x) == 0 or len(x) != len(y):
            raise NasforgeError(f"{name} data must be non-empty tensors of equal length, got {len(x)} and {len(y)}")


def _weight_opt(net: Supernet, lr: float, epochs: int, steps: int) -> tuple[torch.optim.Optimizer, Any]:
    opt = torch.optim.SGD(net.weight_parameters(), lr=lr, momentum=0.9, weight_decay=3e-4, nesterov=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps), eta_min=lr * 0.01)
    return opt, sched


def count_op(space: SearchSpace, arch: Architecture, op: str) -> int:
    """How many decisions of ``arch`` chose the value ``op``."""
    return sum(1 for d, c in zip(space.decisions(), arch.choices, strict=True) if d.choices[c] == op)


# -- DARTS --------------------------------------------------------------------------------------------


def darts(net: Supernet, train: Batch, val: Batch, epochs: int = 10, batch_size: int = 64, lr: float = 0.025,
          arch_lr: float = 3e-4, arch_weight_decay: float = 1e-3, order: int = 1, seed: int = 0,
          max_skip: int | None = None, progress: Progress | None = None) -> OneShotResult:
    """DARTS: alternate alpha steps on val batches and weight steps on train batches.

    ``order=2`` uses the unrolled (second-order) alpha gradient with a finite-difference Hessian-vector
    product. ``max_skip`` is the DARTS+ remedy for the collapse to skip connections: stop as soon as the
    derived architecture holds more than ``max_skip`` skip connections, and return the last one that did not.
    """
    if order not in (1, 2):
        raise NasforgeError(f"DARTS order must be 1 or 2, got {order}")
    _check_data(train, val)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    steps = math.ceil(len(train[0]) / batch_size)
    w_opt, sched = _weight_opt(net, lr, epochs, steps)
    a_opt = torch.optim.Adam([net.alpha], lr=arch_lr, betas=(0.5, 0.999), weight_decay=arch_weight_decay)
    res = OneShotResult("darts", net.derive(), 0, 0.0)
    best_ok = net.derive()
    for ep in range(epochs):
        net.train()
        tb, vb = _batches(*train, batch_size, g), _batches(*val, batch_size, g)
        loss_sum = 0.0
        for i, (xt, yt) in enumerate(tb):
            xv, yv = vb[i % len(vb)]
            a_opt.zero_grad()
            if order == 1:
                net.set_darts()
                F.cross_entropy(net(xv), yv).backward()
            else:
                _unrolled_alpha_grad(net, (xt, yt), (xv, yv), w_opt.param_groups[0]["lr"])
            a_opt.step()
            w_opt.zero_grad()
            net.set_darts()
            loss = F.cross_entropy(net(xt), yt)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.weight_parameters(), 5.0)
            w_opt.step()
            sched.step()
            net.alpha.grad = None
            loss_sum += float(loss.detach())
        arch = net.derive()
        res.history.append(net.probs().detach()[:, :].tolist())
        res.derived.append(str(arch))
        res.epochs = ep + 1
        if progress:
            progress(ep + 1, {"loss": loss_sum / len(tb), "skip": count_op(net.space, arch, "skip_connect")})
        if max_skip is not None and count_op(net.space, arch, "skip_connect") > max_skip:
            res.info["stopped_early"] = f"epoch {ep + 1}: {count_op(net.space, arch, 'skip_connect')} skips"
            break
        best_ok = arch
    res.arch = best_ok if max_skip is not None else net.derive()
    res.seconds = time.perf_counter() - t0
    return res


def _unrolled_alpha_grad(net: Supernet, train: Batch, val: Batch, xi: float, eps_scale: float = 0.01) -> None:
    """Second-order DARTS: grad_a L_val(w - xi grad_w L_train(w, a), a) with a finite-difference HVP."""
    params = net.weight_parameters()
    net.set_darts()
    raw = torch.autograd.grad(F.cross_entropy(net(train[0]), train[1]), params, allow_unused=True)
    gw = [torch.zeros_like(p) if g is None else g for p, g in zip(params, raw, strict=True)]
    backup = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, g in zip(params, gw, strict=True):
            p.sub_(xi * g)
    net.set_darts()
    lv = F.cross_entropy(net(val[0]), val[1])
    grads = torch.autograd.grad(lv, [net.alpha, *params], allow_unused=True)
    ga = grads[0]
    dw = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads[1:], strict=True)]
    norm = torch.sqrt(torch.stack([(d * d).sum() for d in dw]).sum()) + 1e-12
    eps = eps_scale / norm
    hv = []
    for sign in (1.0, -2.0):
        with torch.no_grad():
            for p, b, d in zip(params, backup, dw, strict=True):
                p.copy_(b + (eps * d if sign > 0 else -eps * d))
        net.set_darts()
        hv.append(torch.autograd.grad(F.cross_entropy(net(train[0]), train[1]), net.alpha)[0])
    with torch.no_grad():
        for p, b in zip(params, backup, strict=True):
            p.copy_(b)
    net.alpha.grad = ga - xi * (hv[0] - hv[1]) / (2 * eps)


# -- ProxylessNAS -------------------------------------------------------------------------------------


def expected_latency(net: Supernet, table: Tensor, base_ms: float = 0.0) -> Tensor:
    """E[lat] = base + sum over decisions of sum_i p_i * LUT(decision, i) (differentiable in alpha)."""
    p = net.probs()
    return base_ms + (p * table).sum()


def proxyless(net: Supernet, train: Batch, val: Batch, epochs: int = 10, batch_size: int = 64,
              lr: float = 0.025, arch_lr: float = 1e-3, seed: int = 0, latency_table: Tensor | None = None,
              base_latency_ms: float = 0.0, latency_target_ms: float | None = None, beta: float = 0.6,
              warmup_epochs: int = 0, progress: Progress | None = None) -> OneShotResult:
    """ProxylessNAS: one active path per weight step; two sampled paths with binary gates per alpha step.

    With a latency table (``[decisions, choices]`` ms) and a target, the architecture loss is
    ``CE * (E[lat]/target)^beta`` while E[lat] > target (else plain CE), MnasNet-style soft constraint.
    """
    _check_data(train, val)
    if latency_target_ms is not None and latency_table is None:
        raise NasforgeError("a latency target needs a latency model (a table of per-choice latencies)")
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    steps = math.ceil(len(train[0]) / batch_size)
    w_opt, sched = _weight_opt(net, lr, epochs, steps)
    a_opt = torch.optim.Adam([net.alpha], lr=arch_lr, betas=(0.0, 0.999), eps=1e-8)
    decs = net.space.decisions()
    res = OneShotResult("proxyless", net.derive(), 0, 0.0)
    for ep in range(epochs):
        net.train()
        tb, vb = _batches(*train, batch_size, g), _batches(*val, batch_size, g)
        loss_sum = 0.0
        for i, (xt, yt) in enumerate(tb):
            p = net.probs().detach().numpy()
            choices = [int(rng.choice(d.n, p=_norm(p[k, : d.n]))) for k, d in enumerate(decs)]
            net.set_single(choices)
            w_opt.zero_grad()
            loss = F.cross_entropy(net(xt), yt)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.weight_parameters(), 5.0)
            w_opt.step()
            sched.step()
            loss_sum += float(loss.detach())
            if ep >= warmup_epochs:
                xv, yv = vb[i % len(vb)]
                proxyless_alpha_step(net, xv, yv, rng, a_opt, latency_table, base_latency_ms,
                                     latency_target_ms, beta)
        arch = net.derive()
        res.history.append(net.probs().detach().tolist())
        res.derived.append(str(arch))
        res.epochs = ep + 1
        info = {"loss": loss_sum / len(tb)}
        if latency_table is not None:
            info["expected_latency_ms"] = float(expected_latency(net, latency_table, base_latency_ms))
        if progress:
            progress(ep + 1, info)
    res.arch = net.derive()
    res.seconds = time.perf_counter() - t0
    if latency_table is not None:
        res.info["expected_latency_ms"] = float(expected_latency(net, latency_table, base_latency_ms))
        res.info["predicted_latency_ms"] = base_latency_ms + float(sum(
            latency_table[k, c] for k, c in enumerate(res.arch.choices)))
    return res


def _norm(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 0, None)
    return p / p.sum()


def proxyless_alpha_step(net: Supernet, x: Tensor, y: Tensor, rng: np.random.Generator,
                         opt: torch.optim.Optimizer, latency_table: Tensor | None = None, base_ms: float = 0.0,
                         target_ms: float | None = None, beta: float = 0.6) -> dict[str, float]:
    """One architecture step: sample two candidates per decision, gate one, and turn the gate gradients
    into alpha gradients, dL/dalpha_i = sum_j dL/dg_j p_j (delta_ij - p_i) over the pair (renormalised).
    """
    decs = net.space.decisions()
    p = net.probs().detach().numpy()
    pairs: list[tuple[int, int]] = []
    chosen: list[int] = []
    for k, d in enumerate(decs):
        pk = _norm(p[k, : d.n])
        pair = (0, 0)
        if d.n > 1:
            a0, a1 = rng.choice(d.n, size=2, replace=False, p=pk)
            pair = (int(a0), int(a1))
        q = _norm(pk[list(pair)]) if d.n > 1 else np.array([1.0, 0.0])
        pairs.append(pair)
        chosen.append(pair[int(rng.choice(2, p=q))])
    gates = net.set_gates(pairs, chosen)
    ce = F.cross_entropy(net(x), y)
    g_grads = torch.autograd.grad(ce, gates, allow_unused=True)
    opt.zero_grad()
    grad = torch.zeros_like(net.alpha)
    with torch.no_grad():
        for k, (pair, gg) in enumerate(zip(pairs, g_grads, strict=True)):
            if gg is None or pair[0] == pair[1]:
                continue
            qt = torch.softmax(net.alpha[k, list(pair)], dim=0)
            for ii, i in enumerate(pair):
                for jj, j in enumerate(pair):
                    grad[k, i] += gg[j] * qt[jj] * ((1.0 if ii == jj else 0.0) - qt[ii])
    out = {"ce": float(ce.detach())}
    if latency_table is not None and target_ms is not None:
        e = expected_latency(net, latency_table, base_ms)
        factor = (e / target_ms) ** beta if float(e) > target_ms else e * 0 + 1.0
        (lat_grad,) = torch.autograd.grad(factor, net.alpha, allow_unused=True)
        grad = grad * float(factor.detach()) + (0 if lat_grad is None else float(ce.detach()) * lat_grad)
        out["expected_latency_ms"] = float(e)
    net.alpha.grad = grad
    opt.step()
    return out


# -- SPOS ---------------------------------------------------------------------------------------------


def spos(net: Supernet, train: Batch, epochs: int = 10, batch_size: int = 64, lr: float = 0.05, seed: int = 0,
         progress: Progress | None = None) -> OneShotResult:
    """Single-path one-shot: train the supernet on one uniformly sampled path per step."""
    _check_data(train, train)
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    steps = math.ceil(len(train[0]) / batch_size)
    opt, sched = _weight_opt(net, lr, epochs, steps)
    res = OneShotResult("spos", net.derive(), 0, 0.0)
    for ep in range(epochs):
        net.train()
        loss_sum = 0.0
        batches = _batches(*train, batch_size, g)
        for xt, yt in batches:
            net.fix(net.space.sample(rng))
            opt.zero_grad()
            loss = F.cross_entropy(net(xt), yt)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.weight_parameters(), 5.0)
            opt.step()
            sched.step()
            loss_sum += float(loss.detach())
        res.epochs = ep + 1
        if progress:
            progress(ep + 1, {"loss": loss_sum / len(batches)})
    res.seconds = time.perf_counter() - t0
    return res


class SupernetEstimator:
    """An ``Estimator`` that scores an architecture with the supernet's inherited weights.

    Batch-norm statistics are recalibrated on ``calib_batches`` train batches for each architecture
    (they are not shared across paths), then validation accuracy is the reward.
    """

    def __init__(self, net: Supernet, train: Batch, val: Batch, calib_batches: int = 4, batch_size: int = 256,
                 seed: int = 0) -> None:
        self.net = net
        g = torch.Generator().manual_seed(seed)
        self.calib = [b[0] for b in _batches(*train, batch_size, g)[:calib_batches]]
        self.val = val
        self.batch_size = batch_size

    @torch.no_grad()
    def evaluate(self, arch: Architecture) -> Result:
        t0 = time.perf_counter()
        try:
            self.net.fix(arch)
            recalibrate_bn(self.net, self.calib)
            self.net.eval()
            x, y = self.val
            correct = 0
            for i in range(0, len(x), self.batch_size):
                correct += int((self.net(x[i:i + self.batch_size]).argmax(1) == y[i:i + self.batch_size]).sum())
            acc = 100.0 * correct / len(x)
        except Exception as e:  # a candidate that fails is recorded, the search goes on
            return Result.failure(f"{type(e).__name__}: {e}", time.perf_counter() - t0)
        return Result(acc, {"val_acc": acc}, {}, time.perf_counter() - t0)


def measure_choice_latency(net: Supernet, input_shape: Sequence[int], repeats: int = 20,
                           warmup: int = 3) -> tuple[Tensor, float]:
    """Host-measured latency table: each candidate op of every choice block timed (ms, batch 1) on the
    input shape it sees, summed per (decision, choice); plus the base (everything but the choice blocks).
    """
    shapes: dict[int, tuple[int, ...]] = {}
    hooks = []
    for group in net.groups:
        for blk in group:
            hooks.append(blk.register_forward_pre_hook(
                lambda m, inp: shapes.__setitem__(id(m), tuple(inp[0].shape))))
    net.eval()
    net.set_single([0] * len(net.groups))
    with torch.no_grad():
        net(torch.zeros(1, *input_shape))
    for h in hooks:
        h.remove()
    n = max(d.n for d in net.space.decisions())
    table = torch.zeros(len(net.groups), n)
    cache: dict[tuple[int, int, tuple[int, ...]], float] = {}
    with torch.no_grad():
        for k, group in enumerate(net.groups):
            for blk in group:
                shp = shapes[id(blk)]
                for i, op in enumerate(blk.ops):
                    if blk.is_zero[i]:
                        continue
                    key = (k, i, shp)
                    if key not in cache:
                        cache[key] = _time_ms(op, torch.zeros(shp), repeats, warmup)
                    table[k, i] += cache[key]
        zero = net.space.decode([_zero_choice(d.choices) for d in net.space.decisions()])
        net.fix(zero)
        base = _time_ms(net, torch.zeros(1, *input_shape), repeats, warmup)
    return table, base


def _zero_choice(choices: Sequence[Any]) -> int:
    return list(choices).index("none") if "none" in choices else 0


def _time_ms(module: torch.nn.Module, x: Tensor, repeats: int, warmup: int) -> float:
    module.eval()
    for _ in range(warmup):
        module(x)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        module(x)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts) * 1e3)
