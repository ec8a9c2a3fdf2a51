"""One-shot methods: DARTS, ProxylessNAS (binary gates + expected-latency loss) and SPOS.

Each trains a supernet once on (train, val) tensors and returns a ``OneShotResult`` whose ``arch`` is an
``Architecture`` of the same space, so the rest of the toolkit profiles, exports and reports it.
"""

from __future__ import annotations

import contextlib
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


def _weight_step(net: Supernet, opt: torch.optim.Optimizer, sched: Any, x: Tensor, y: Tensor) -> float:
    """One SGD step of the supernet's weights on the path it is set to (gradients clipped at 5); the loss."""
    opt.zero_grad()
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.weight_parameters(), 5.0)
    opt.step()
    sched.step()
    return float(loss.detach())


def count_op(space: SearchSpace, arch: Architecture, op: str) -> int:
    """How many decisions of ``arch`` chose the value ``op``."""
    return sum(1 for d, c in zip(space.decisions(), arch.choices, strict=True) if d.choices[c] == op)


# -- DARTS --------------------------------------------------------------------------------------------


def darts(net: Supernet, train: Batch, val: Batch, epochs: int = 10, batch_size: int = 64, lr: float = 0.025,
          arch_lr: float = 3e-4, arch_weight_decay: float = 1e-3, order: int = 1, seed: int = 0,
          max_skip: int | None = None, warmup_epochs: int = 0, beta_decay: float = 0.0, selection: str = "alpha",
          tune_steps: int = 10, progress: Progress | None = None) -> OneShotResult:
    """DARTS: alternate alpha steps on val batches and weight steps on train batches.

    ``order=2`` uses the unrolled (second-order) alpha gradient with a finite-difference Hessian-vector
    product. Remedies for DARTS' collapse onto parameter-free ops, each off by default:
    - ``max_skip`` (DARTS+): stop as soon as the derived architecture holds more than ``max_skip`` skip
      connections, and return the last one that did not;
    - ``warmup_epochs`` (as PC-DARTS and ProxylessNAS): train only the weights for the first epochs, so
      parametric ops are not judged while still untrained;
    - ``beta_decay`` (beta-DARTS): add ``lambda * mean_edges(logsumexp(alpha))`` to the architecture loss,
      ``lambda`` rising linearly to ``beta_decay`` over the epochs, which keeps alpha from running away;
    - ``selection="pt"`` (DARTS-PT): derive by ``perturbation_select`` on the validation data (``tune_steps``
      weight steps after each decision) instead of alpha's argmax; ``info["alpha_arch"]`` keeps the latter.
    """
    if selection not in ("alpha", "pt"):
        raise NasforgeError(f"DARTS selection must be alpha or pt, got {selection!r}")
    if order not in (1, 2):
        raise NasforgeError(f"DARTS order must be 1 or 2, got {order}")
    if not 0 <= warmup_epochs < epochs:
        raise NasforgeError(f"warmup_epochs={warmup_epochs} must be in 0..{epochs - 1} (epochs={epochs})")
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
        lam = beta_decay * (ep + 1) / epochs
        for i, (xt, yt) in enumerate(tb):
            xv, yv = vb[i % len(vb)]
            if ep >= warmup_epochs:
                a_opt.zero_grad()
                if order == 1:
                    net.set_darts()
                    F.cross_entropy(net(xv), yv).backward()
                else:
                    _unrolled_alpha_grad(net, (xt, yt), (xv, yv), w_opt.param_groups[0]["lr"])
                if lam > 0:
                    reg = lam * torch.logsumexp(net.alpha + net.alpha_mask, dim=-1).mean()
                    (g_reg,) = torch.autograd.grad(reg, net.alpha)
                    net.alpha.grad = g_reg if net.alpha.grad is None else net.alpha.grad + g_reg
                a_opt.step()
            net.set_darts()
            loss_sum += _weight_step(net, w_opt, sched, xt, yt)
            net.alpha.grad = None
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
    if selection == "pt":
        res.info["alpha_arch"] = str(res.arch)
        res.arch, res.info["pt_log"] = perturbation_select(net, val, seed=seed, train=train, tune_steps=tune_steps,
                                                            lr=0.01)
    res.seconds = time.perf_counter() - t0
    return res


@torch.no_grad()
def _mixed_accuracy(net: Supernet, val: Batch, batch_size: int) -> float:
    """Validation accuracy of the mixed (DARTS) supernet with batch statistics, running stats untouched."""
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 0.0  # batch statistics without moving the running ones
    net.train()
    net.set_darts()
    x, y = val
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((net(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom
    return correct / len(x)


def perturbation_select(net: Supernet, val: Batch, batch_size: int = 256, seed: int = 0, train: Batch | None = None,
                        tune_steps: int = 0, lr: float = 0.01) -> tuple[Architecture, list[dict[str, Any]]]:
    """DARTS-PT's perturbation-based selection (Wang et al., ICLR 2021) instead of alpha's magnitude.

    Unit by unit (in a seeded random order), remove each remaining candidate from the mixed supernet in turn
    and measure validation accuracy; keep the candidate whose removal hurts most, fix the unit to it, go on.
    Alpha magnitudes favour parameter-free ops (skip, pooling); the accuracy drop measures what an op adds.
    With ``train`` and ``tune_steps``, the weights are tuned that many SGD steps (mixed mode, the fixed units
    fixed) after each decision, as DARTS-PT does, so the next unit is judged on a network adapted to it.
    Returns the architecture (``derive`` under the fixed units) and per unit the accuracies it measured.
    """
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    mask = net.alpha_mask.clone()
    opt = torch.optim.SGD(net.weight_parameters(), lr=lr, momentum=0.9, weight_decay=3e-4)
    pending: list[Batch] = []
    log: list[dict[str, Any]] = []
    try:
        for k in rng.permutation(len(net.groups)).tolist():
            live = [i for i in range(net.unit_sizes()[k]) if net.alpha_mask[k, i] == 0]
            if len(live) < 2:
                continue
            base = _mixed_accuracy(net, val, batch_size)
            drops = {}
            for i in live:
                net.alpha_mask[k, i] = float("-inf")
                drops[i] = base - _mixed_accuracy(net, val, batch_size)
                net.alpha_mask[k, i] = 0.0
            best = max(live, key=lambda i: (drops[i], -i))
            net.alpha_mask[k, :] = float("-inf")
            net.alpha_mask[k, best] = 0.0
            log.append({"unit": net.unit_names[k], "base_acc": base, "chosen": net.unit_labels[k][best],
                        "drops": {net.unit_labels[k][i]: d for i, d in drops.items()}})
            if train is not None:
                for _ in range(tune_steps):
                    if not pending:
                        pending = _batches(*train, 64, g)
                    xt, yt = pending.pop()
                    net.train()
                    net.set_darts()
                    opt.zero_grad()
                    F.cross_entropy(net(xt), yt).backward()
                    torch.nn.utils.clip_grad_norm_(net.weight_parameters(), 5.0)
                    opt.step()
                net.alpha.grad = None
        arch = net.derive()
    finally:
        net.alpha_mask.copy_(mask)
    return arch, log


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
    """E[lat] = base + sum over units of sum_i p_i * LUT(unit, i) (differentiable in alpha)."""
    p = net.probs()
    return base_ms + (p * table.to(p.device)).sum()


def path_latency(net: Supernet, table: Tensor, arch: Architecture, base_ms: float = 0.0) -> float:
    """The table's latency of one architecture: base + its candidate's entry in every unit."""
    return base_ms + float(sum(float(table[k, c]) for k, c in enumerate(net.choices_of(arch))))


def latency_range(table: Tensor, sizes: Sequence[int], base_ms: float = 0.0) -> tuple[float, float]:
    """(smallest, largest) latency any path can have: base + sum of per-unit minima (maxima)."""
    lo = base_ms + sum(float(table[k, :n].min()) for k, n in enumerate(sizes))
    hi = base_ms + sum(float(table[k, :n].max()) for k, n in enumerate(sizes))
    return lo, hi


def proxyless(net: Supernet, train: Batch, val: Batch, epochs: int = 10, batch_size: int = 64,
              lr: float = 0.025, arch_lr: float = 1e-3, seed: int = 0, latency_table: Tensor | None = None,
              base_latency_ms: float = 0.0, latency_target_ms: float | None = None, beta: float = 0.6,
              warmup_epochs: int = 0, constrained_derive: bool = True, derive_window: float = 0.95,
              progress: Progress | None = None) -> OneShotResult:
    """ProxylessNAS: one active path per weight step; two sampled paths with binary gates per alpha step.

    With a latency table (``[units, choices]`` ms) and a target, the architecture loss is
    ``CE * (E[lat]/target)^beta`` while E[lat] > target (else plain CE), MnasNet-style soft constraint.
    With a target T, the result is the most probable architecture of table latency in
    [``derive_window`` T, T] (or, when no path lies there, in the band of that width below the dearest path
    under T; ``derive_under_latency``; ``info["argmax_arch"]`` keeps the per-unit argmax) unless
    ``constrained_derive`` is off; supernets without ``arch_of`` (darts cells) keep the argmax derivation.
    """
    _check_data(train, val)
    if latency_target_ms is not None and latency_table is None:
        raise NasforgeError("a latency target needs a latency model (a table of per-choice latencies)")
    if not 0 <= derive_window <= 1:
        raise NasforgeError(f"derive_window={derive_window} must be in [0, 1] (a fraction of the latency target)")
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    steps = math.ceil(len(train[0]) / batch_size)
    w_opt, sched = _weight_opt(net, lr, epochs, steps)
    a_opt = torch.optim.Adam([net.alpha], lr=arch_lr, betas=(0.0, 0.999), eps=1e-8)
    sizes = net.unit_sizes()
    res = OneShotResult("proxyless", net.derive(), 0, 0.0)
    for ep in range(epochs):
        net.train()
        tb, vb = _batches(*train, batch_size, g), _batches(*val, batch_size, g)
        loss_sum = 0.0
        for i, (xt, yt) in enumerate(tb):
            p = net.probs().detach().cpu().numpy()
            choices = [int(rng.choice(n, p=_norm(p[k, :n]))) for k, n in enumerate(sizes)]
            net.set_single(choices)
            loss_sum += _weight_step(net, w_opt, sched, xt, yt)
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
            info["expected_latency_ms"] = float(expected_latency(net, latency_table, base_latency_ms).detach())
        if progress:
            progress(ep + 1, info)
    res.arch = net.derive()
    if latency_table is not None and latency_target_ms is not None and constrained_derive:
        try:
            constrained = derive_under_latency(net, latency_table, base_latency_ms, latency_target_ms,
                                               min_ms=derive_window * latency_target_ms)
        except NasforgeError:  # no arch_of (darts cells): keep the argmax derivation
            constrained = None
        if constrained is not None:
            res.info["argmax_arch"] = str(res.arch)
            res.arch = constrained
    res.seconds = time.perf_counter() - t0
    if latency_table is not None:
        res.info["expected_latency_ms"] = float(expected_latency(net, latency_table, base_latency_ms).detach())
        res.info["predicted_latency_ms"] = path_latency(net, latency_table, res.arch, base_latency_ms)
    return res


def derive_under_latency(net: Supernet, table: Tensor, base_ms: float, target_ms: float,
                         bins: int = 2000, min_ms: float | None = None) -> Architecture:
    """The most probable path (max sum of log-probabilities) whose table latency is at most ``target_ms``
    and at least ``min_ms`` (so that the result lands near the target; when no path lies in that window, the
    window slides down to end at the dearest path under the target):
    a knapsack over units by dynamic programming on latency discretised into ``bins`` steps up to the target.
    Argmax per unit ignores the budget (a path can land far from the target even when E[lat] meets it);
    this keeps ProxylessNAS' probabilities and the hard constraint. Falls back to the cheapest path.
    """
    sizes = net.unit_sizes()
    logp = torch.log(net.probs().detach().cpu().clamp_min(1e-12))
    budget = target_ms - base_ms
    lat = table.detach().cpu()
    if budget <= 0:
        return net.arch_of([int(lat[k, :n].argmin()) for k, n in enumerate(sizes)])
    step = budget / bins
    neg = float("-inf")
    best = np.full(bins + 1, neg)
    best[0] = 0.0
    picks: list[np.ndarray] = []
    for k, n in enumerate(sizes):
        new = np.full(bins + 1, neg)
        pick = np.full(bins + 1, -1, dtype=np.int64)
        for i in range(n):
            w = math.ceil(float(lat[k, i]) / step - 1e-9)
            if w > bins:
                continue
            cand = np.full(bins + 1, neg)
            cand[w:] = best[: bins + 1 - w] + float(logp[k, i])
            better = cand > new
            new[better], pick[better] = cand[better], i
        best = new
        picks.append(pick)
    if not np.isfinite(best).any():
        return net.arch_of([int(lat[k, :n].argmin()) for k, n in enumerate(sizes)])
    lo = 0 if min_ms is None else max(0, min(bins, math.ceil((min_ms - base_ms) / step)))
    if not np.isfinite(best[lo:]).any():  # no path in [min, target]: the same-width band below the dearest one
        top = int(np.flatnonzero(np.isfinite(best))[-1])
        lo = max(0, top - (bins - lo))
    b = lo + int(np.argmax(best[lo:]))
    choices = [0] * len(sizes)
    for k in range(len(sizes) - 1, -1, -1):
        i = int(picks[k][b])
        choices[k] = i
        b -= math.ceil(float(lat[k, i]) / step - 1e-9)
    return net.arch_of(choices)


def _norm(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 0, None)
    return p / p.sum()


def proxyless_alpha_step(net: Supernet, x: Tensor, y: Tensor, rng: np.random.Generator,
                         opt: torch.optim.Optimizer, latency_table: Tensor | None = None, base_ms: float = 0.0,
                         target_ms: float | None = None, beta: float = 0.6) -> dict[str, float]:
    """One architecture step: sample two candidates per decision, gate one, and turn the gate gradients
    into alpha gradients, dL/dalpha_i = sum_j dL/dg_j p_j (delta_ij - p_i) over the pair (renormalised).
    """
    p = net.probs().detach().cpu().numpy()
    pairs: list[tuple[int, int]] = []
    chosen: list[int] = []
    for k, n in enumerate(net.unit_sizes()):
        pk = _norm(p[k, :n])
        pair = (0, 0)
        if n > 1:
            a0, a1 = rng.choice(n, size=2, replace=False, p=pk)
            pair = (int(a0), int(a1))
        q = _norm(pk[list(pair)]) if n > 1 else np.array([1.0, 0.0])
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
        factor = (e / target_ms) ** beta if float(e.detach()) > target_ms else e * 0 + 1.0
        (lat_grad,) = torch.autograd.grad(factor, net.alpha, allow_unused=True)
        grad = grad * float(factor.detach()) + (0 if lat_grad is None else float(ce.detach()) * lat_grad)
        out["expected_latency_ms"] = float(e.detach())
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
            net.fix(net.sample(rng))
            loss_sum += _weight_step(net, opt, sched, xt, yt)
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
            acc = correct / len(x)
        except Exception as e:  # a candidate that fails is recorded, the search goes on
            return Result.failure(f"{type(e).__name__}: {e}", time.perf_counter() - t0)
        return Result(acc, {"val_acc": acc}, {}, time.perf_counter() - t0)


def block_inputs(net: Supernet, input_shape: Sequence[int]) -> dict[int, tuple[int, ...]]:
    """The input shape (batch 1) every choice block sees, from one forward pass on a path where every
    unit runs a non-zero candidate (so every block is called)."""
    shapes: dict[int, tuple[int, ...]] = {}
    hooks = [blk.register_forward_pre_hook(lambda m, inp: shapes.__setitem__(id(m), tuple(inp[0].shape)))
             for group in net.groups for blk in group]
    dev = net.alpha.device
    was = net.training
    net.eval()
    net.set_single([next(i for i, z in enumerate(g[0].is_zero) if not z) for g in net.groups])
    try:
        with torch.no_grad():
            net(torch.zeros(1, *input_shape, device=dev))
    finally:
        for h in hooks:
            h.remove()
        net.train(was)
    return shapes


def measure_choice_latency(net: Supernet, input_shape: Sequence[int], repeats: int = 10, warmup: int = 2,
                           calibrate: int = 24, seed: int = 0, rounds: int = 5, threads: int = 1,
                           min_time_s: float = 3.0, max_fit_err: float = 0.05, attempts: int = 3,
                           info: dict[str, Any] | None = None) -> tuple[Tensor, float]:
    """Host-measured latency table (ms, batch 1): each candidate of every choice block timed on the input shape
    it sees and summed per (unit, choice), plus the base (everything but the choice blocks: the stand-alone
    network of the cheapest path minus that path's entries, clamped at 0).

    Timings interleave all modules over at least ``rounds`` rounds lasting at least ``min_time_s`` and keep the
    minimum (``hardware.measure_latencies``): on a shared host a single burst can be 2x off. Ops timed one by
    one still miss what running them inside a network costs (per-layer overhead, caches), so with
    ``calibrate > 0`` the table is then fitted to that many random whole stand-alone networks plus the cheapest
    and dearest path (``calibrate_table``). A slow spell of the host during the measurement shows as a poor fit,
    so while the fit's mean relative error exceeds ``max_fit_err`` the whole table is measured again, up to
    ``attempts`` times in all, keeping the best fit. ``info``, when given, receives the fit's figures.
    """
    if calibrate <= 0:
        table = _op_table(net, input_shape, repeats, warmup, rounds, threads, min_time_s)
        return table, _base_of_cheapest(net, table, input_shape, repeats, warmup, rounds, threads, min_time_s)
    fits: list[tuple[float, Tensor, float, dict[str, Any]]] = []
    for _ in range(max(1, attempts)):
        table = _op_table(net, input_shape, repeats, warmup, rounds, threads, min_time_s)
        fit: dict[str, Any] = {}
        t, base = calibrate_table(net, table, 0.0, input_shape, calibrate, seed, repeats, warmup, rounds, threads,
                                  fit, min_time_s)
        fits.append((fit["calibration_mean_rel_err"], t, base, fit))
        if fit["calibration_mean_rel_err"] <= max_fit_err:
            break
    _, t, base, fit = min(fits, key=lambda f: f[0])  # the best fit (the first of equals)
    if info is not None:
        info.update(fit, calibration_attempts=len(fits))
    return t, base


def _op_table(net: Supernet, input_shape: Sequence[int], repeats: int, warmup: int, rounds: int, threads: int,
              min_time_s: float) -> Tensor:
    """Every non-zero candidate timed (interleaved, minimum) on the input its block sees, summed per unit."""
    from nasforge.hardware import measure_latencies

    shapes = block_inputs(net, input_shape)
    table = torch.zeros(len(net.groups), max(net.unit_sizes()))
    ops: dict[tuple[int, int, tuple[int, ...]], torch.nn.Module] = {}
    for k, group in enumerate(net.groups):
        for blk in group:
            for i, op in enumerate(blk.ops):
                if not blk.is_zero[i]:
                    ops.setdefault((k, i, shapes[id(blk)]), op)
    keys = list(ops)
    stats = measure_latencies([ops[key] for key in keys], [key[2] for key in keys], str(net.alpha.device), threads,
                              warmup, repeats, rounds, min_time_s=min_time_s)
    ms = {key: st.min_ms for key, st in zip(keys, stats, strict=True)}
    for k, group in enumerate(net.groups):
        for blk in group:
            for i in range(len(blk.ops)):
                if not blk.is_zero[i]:
                    table[k, i] += ms[(k, i, shapes[id(blk)])]
    return table


def _base_of_cheapest(net: Supernet, table: Tensor, input_shape: Sequence[int], repeats: int, warmup: int,
                      rounds: int, threads: int, min_time_s: float) -> float:
    """The stand-alone network of the cheapest path, measured, minus that path's table entries (>= 0)."""
    from nasforge.hardware import measure_latencies

    cheap = [int(table[k, :n].argmin()) for k, n in enumerate(net.unit_sizes())]
    std = net.to_standalone(net.arch_of(cheap))
    (whole,) = measure_latencies([std], (1, *input_shape), str(net.alpha.device), threads, warmup, repeats, rounds,
                                 min_time_s=min_time_s)
    return max(0.0, whole.min_ms - sum(float(table[k, c]) for k, c in enumerate(cheap)))


def calibrate_table(net: Supernet, table: Tensor, base: float, input_shape: Sequence[int], n: int = 24,
                    seed: int = 0, repeats: int = 10, warmup: int = 2, rounds: int = 5, threads: int = 1,
                    info: dict[str, Any] | None = None, min_time_s: float = 3.0) -> tuple[Tensor, float]:
    """Fit a per-op latency table to measured whole stand-alone networks, ``measured ~ a * predicted + b``
    (least squares over ``n`` random paths plus the cheapest and dearest), measured interleaved.

    ``info`` receives ``calibration_networks``, the slope and offset, and the fit's mean and largest relative
    error on those networks (``calibration_mean_rel_err``, ``calibration_max_rel_err``).
    """
    from nasforge.hardware import measure_latencies

    rng = np.random.default_rng(seed)
    sizes = net.unit_sizes()
    archs = [net.sample(rng) for _ in range(n)]
    # the extremes spread the fit; supernets whose archs are derived, not chosen per unit, have none
    with contextlib.suppress(NasforgeError):
        for pick in (torch.argmin, torch.argmax):
            archs.append(net.arch_of([int(pick(table[k, :m])) for k, m in enumerate(sizes)]))
    nets = [net.to_standalone(a) for a in archs]
    stats = measure_latencies(nets, (1, *input_shape), str(net.alpha.device), threads, warmup, repeats, rounds,
                              min_time_s=min_time_s)
    m_arr = np.asarray([st.min_ms for st in stats], dtype=float)
    p_arr = np.asarray([path_latency(net, table, a, base) for a in archs], dtype=float)
    a, b = np.polyfit(p_arr, m_arr, 1) if np.ptp(p_arr) > 0 else (0.0, 0.0)
    # the offset goes into the base (it may turn negative: only whole-path sums are latencies); if that would
    # price some path at <= 0, or there is no usable slope, fall back to a plain ratio
    lo = latency_range(table, sizes, base)[0]
    if not a > 0 or float(a) * lo + float(b) <= 0:
        a, b = float(m_arr.mean() / max(float(p_arr.mean()), 1e-9)), 0.0
    rel = (float(a) * p_arr + float(b)) / m_arr - 1
    if info is not None:
        info.update(calibration_networks=len(archs), calibration_slope=float(a), calibration_offset_ms=float(b),
                    calibration_mean_rel_err=float(np.abs(rel).mean()),
                    calibration_max_rel_err=float(np.abs(rel).max()))
    return table * float(a), float(a) * base + float(b)


def table_from_lut(net: Supernet, lut: Any, input_shape: Sequence[int]) -> tuple[Tensor, float]:
    """A latency table from a ``nasforge.hardware.LatencyTable``: every candidate's spec priced on the input
    shape its block sees (``lut.op_latency``); zero and identity candidates cost 0. The base is the
    table's constant plus the blocks outside the choice blocks of the network of the derived arch.
    """
    shapes = block_inputs(net, input_shape)
    table = torch.zeros(len(net.groups), max(net.unit_sizes()))
    for k, group in enumerate(net.groups):
        for blk in group:
            for i, spec in enumerate(blk.specs):
                if spec is not None and type(spec).__name__ != "Identity":
                    table[k, i] += float(lut.op_latency(spec, shapes[id(blk)][1:]))
    base = float(lut.constant_ms)
    arch = net.derive()
    try:
        whole = float(lut.bind(net.space).predict(arch))
    except (NasforgeError, AttributeError):  # the table cannot price the whole network: its constant only
        return table, base
    return table, max(0.0, whole - path_latency(net, table, arch))


# -- memory of one training step ------------------------------------------------------------------------


def _saved_bytes(net: Supernet, fn: Callable[[], Tensor]) -> int:
    """Bytes of the distinct tensors autograd saves for backward while ``fn`` runs its forward (parameters
    excluded): the activation memory a training step holds at its peak, between forward and backward."""
    params = {p.untyped_storage().data_ptr() for p in net.parameters()}
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if ptr not in params and ptr not in seen:
            seen[ptr] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = fn()
    loss.backward()
    return sum(seen.values())


def _cuda_peak(fn: Callable[[], Tensor], device: torch.device) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn().backward()
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device))


def step_peak_memory(net: Supernet, method: str, x: Tensor, y: Tensor, seed: int = 0) -> dict[str, Any]:
    """Peak memory of one training step of ``method`` on batch (x, y), measured.

    CUDA: ``torch.cuda.max_memory_allocated`` over forward + backward (weights, gradients and activations).
    CPU: bytes of the activations autograd saves for backward (distinct storages, parameters excluded),
    counted with ``saved_tensors_hooks`` during the forward. DARTS' step is one mixed forward (all
    candidates); ProxylessNAS' is the larger of its weight step (one sampled path) and its architecture
    step (two sampled paths under binary gates); SPOS' is one uniformly sampled path.
    """
    rng = np.random.default_rng(seed)
    sizes = net.unit_sizes()
    net.train()

    def darts_fwd() -> Tensor:
        net.set_darts()
        return F.cross_entropy(net(x), y)

    def single_fwd() -> Tensor:
        net.set_single([int(rng.integers(n)) for n in sizes])
        return F.cross_entropy(net(x), y)

    def gates_fwd() -> Tensor:
        pairs: list[tuple[int, int]] = []
        for n in sizes:
            a, b = rng.choice(n, size=2, replace=False) if n > 1 else (0, 0)
            pairs.append((int(a), int(b)))
        net.set_gates(pairs, [p[0] for p in pairs])
        return F.cross_entropy(net(x), y)

    steps = {"darts": [darts_fwd], "proxyless": [single_fwd, gates_fwd], "spos": [single_fwd]}
    if method not in steps:
        raise NasforgeError(f"unknown one-shot method {method!r}; allowed: {', '.join(steps)}")
    dev = x.device
    peaks = []
    for fn in steps[method]:
        net.zero_grad(set_to_none=True)
        peaks.append(_cuda_peak(fn, dev) if dev.type == "cuda" else _saved_bytes(net, fn))
    net.zero_grad(set_to_none=True)
    kind = "cuda max_memory_allocated" if dev.type == "cuda" else "autograd saved activations"
    return {"peak_memory_bytes": int(max(peaks)), "peak_memory_kind": kind}
