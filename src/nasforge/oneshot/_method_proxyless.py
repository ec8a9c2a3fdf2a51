"""ProxylessNAS (Cai et al., ICLR 2019): one sampled path per weight step, two sampled candidates per unit
under binary gates per architecture step, an expected-latency loss against a target and a derivation that
keeps the result under it."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from nasforge.errors import NasforgeError
from nasforge.oneshot._latency import expected_latency, path_latency
from nasforge.oneshot._supernet import Supernet
from nasforge.oneshot._training import Batch, Loop, OneShotResult, Progress
from nasforge.spaces import Architecture


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
    if latency_target_ms is not None and latency_table is None:
        raise NasforgeError("a latency target needs a latency model (a table of per-choice latencies)")
    if not 0 <= derive_window <= 1:
        raise NasforgeError(f"derive_window={derive_window} must be in [0, 1] (a fraction of the latency target)")
    loop = Loop(net, "proxyless", train, val, epochs, batch_size, lr, seed, progress)
    a_opt = torch.optim.Adam([net.alpha], lr=arch_lr, betas=(0.0, 0.999), eps=1e-8)
    sizes = net.unit_sizes()
    res, rng = loop.result, loop.rng
    with loop.seeded():
        for ep in loop.epochs():
            tb, vb = loop.batches(train), loop.batches(val)
            for i, (xt, yt) in enumerate(tb):
                p = net.probs().detach().cpu().numpy()
                net.set_single([int(rng.choice(n, p=_norm(p[k, :n]))) for k, n in enumerate(sizes)])
                loss = loop.weight_step(xt, yt)
                if ep >= warmup_epochs:
                    xv, yv = vb[i % len(vb)]
                    proxyless_alpha_step(net, xv, yv, rng, a_opt, latency_table, base_latency_ms,
                                         latency_target_ms, beta)
                loop.step_done(ep, loss)
            figures = {}
            if latency_table is not None:
                figures["expected_latency_ms"] = float(expected_latency(net, latency_table, base_latency_ms).detach())
            loop.epoch_done(ep, **figures)
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
    if latency_table is not None:
        res.info["expected_latency_ms"] = float(expected_latency(net, latency_table, base_latency_ms).detach())
        res.info["predicted_latency_ms"] = path_latency(net, latency_table, res.arch, base_latency_ms)
    return loop.finish()


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
