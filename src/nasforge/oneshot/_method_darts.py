"""DARTS (Liu et al., ICLR 2019): alternate architecture steps on validation batches and weight steps on
training batches of the mixed supernet; remedies for its collapse onto parameter-free ops (DARTS+, warm-up,
beta-DARTS) and DARTS-PT's perturbation-based selection."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nasforge.errors import NasforgeError
from nasforge.oneshot._rng import generator
from nasforge.oneshot._supernet import Supernet
from nasforge.oneshot._training import Batch, Loop, OneShotResult, Progress, batches, count_op, mixed_accuracy
from nasforge.spaces import Architecture


def darts(net: Supernet, train: Batch, val: Batch, epochs: int = 10, batch_size: int = 64, lr: float = 0.025,
          arch_lr: float = 3e-4, arch_weight_decay: float = 1e-3, order: int = 1, seed: int = 0,
          max_skip: int | None = None, warmup_epochs: int = 0, beta_decay: float = 0.0, selection: str = "alpha",
          tune_steps: int = 10, temperature_end: float = 1.0, progress: Progress | None = None) -> OneShotResult:
    """DARTS: alternate alpha steps (Adam, ``arch_lr``) on val batches and weight steps on train batches.

    The paper's ``arch_lr`` 3e-4 suits its ~20,000 alpha steps; a run of a few hundred steps needs a larger
    one or alpha barely moves (``OneShotResult.warnings`` says so). After every epoch the mixed supernet's
    validation accuracy is measured (``info["supernet_val_acc"]``, a fraction, also per epoch in progress).
    ``order=2`` uses the unrolled (second-order) alpha gradient with a finite-difference Hessian-vector
    product. Remedies for DARTS' collapse onto parameter-free ops, each off by default:
    - ``max_skip`` (DARTS+): stop as soon as the derived architecture holds more than ``max_skip`` skip
      connections, and return the last one that did not;
    - ``warmup_epochs`` (as PC-DARTS and ProxylessNAS): train only the weights for the first epochs, so
      parametric ops are not judged while still untrained;
    - ``beta_decay`` (beta-DARTS): add ``lambda * mean_edges(logsumexp(alpha))`` to the architecture loss,
      ``lambda`` rising linearly to ``beta_decay`` over the epochs, which keeps alpha from running away;
    - ``temperature_end`` < 1 (as SNAS and GDAS anneal theirs): the mixed op's softmax temperature falls
      geometrically from 1 to ``temperature_end`` over the run, so the mixture the weights train in ends close
      to the derived path and the inherited weights fit the derived network;
    - ``selection="pt"`` (DARTS-PT): derive by ``perturbation_select`` on the validation data (``tune_steps``
      weight steps after each decision) instead of alpha's argmax; ``info["alpha_arch"]`` keeps the latter.
    """
    if selection not in ("alpha", "pt"):
        raise NasforgeError(f"DARTS selection must be alpha or pt, got {selection!r}")
    if order not in (1, 2):
        raise NasforgeError(f"DARTS order must be 1 or 2, got {order}")
    if not 0 <= warmup_epochs < epochs:
        raise NasforgeError(f"warmup_epochs={warmup_epochs} must be in 0..{epochs - 1} (epochs={epochs})")
    if arch_lr < 0:
        raise NasforgeError(f"arch_lr={arch_lr} must be >= 0")
    if not 0 < temperature_end <= 1:
        raise NasforgeError(f"temperature_end={temperature_end} must be in (0, 1] (1 = no annealing)")
    loop = Loop(net, "darts", train, val, epochs, batch_size, lr, seed, progress)
    a_opt = torch.optim.Adam([net.alpha], lr=arch_lr, betas=(0.5, 0.999), weight_decay=arch_weight_decay)
    res = loop.result
    best_ok = net.derive()
    with loop.seeded():
        for ep in loop.epochs():
            tb, vb = loop.batches(train), loop.batches(val)
            lam = beta_decay * (ep + 1) / epochs
            for i, (xt, yt) in enumerate(tb):
                xv, yv = vb[i % len(vb)]
                tau = temperature_end ** ((ep * loop.steps + i) / max(1, epochs * loop.steps - 1))
                if ep >= warmup_epochs:
                    a_opt.zero_grad()
                    if order == 1:
                        net.set_darts(tau)
                        F.cross_entropy(net(xv), yv).backward()
                    else:
                        _unrolled_alpha_grad(net, (xt, yt), (xv, yv), loop.opt.param_groups[0]["lr"], tau)
                    if lam > 0:
                        reg = lam * torch.logsumexp(net.alpha + net.alpha_mask, dim=-1).mean()
                        (g_reg,) = torch.autograd.grad(reg, net.alpha)
                        net.alpha.grad = g_reg if net.alpha.grad is None else net.alpha.grad + g_reg
                    a_opt.step()
                net.set_darts(tau)
                loss = loop.weight_step(xt, yt)
                net.alpha.grad = None
                loop.step_done(ep, loss)
            arch = net.derive()
            acc = mixed_accuracy(net, val, temperature=tau)
            res.info.setdefault("supernet_val_acc_per_epoch", []).append(acc)
            loop.epoch_done(ep, supernet_val_acc=acc, skip=count_op(net.space, arch, "skip_connect"))
            if max_skip is not None and count_op(net.space, arch, "skip_connect") > max_skip:
                res.info["stopped_early"] = f"epoch {ep + 1}: {count_op(net.space, arch, 'skip_connect')} skips"
                break
            best_ok = arch
        res.info["supernet_val_acc"] = res.info["supernet_val_acc_per_epoch"][-1]
        res.arch = best_ok if max_skip is not None else net.derive()
        if selection == "pt":
            res.info["alpha_arch"] = str(res.arch)
            res.arch, res.info["pt_log"] = perturbation_select(net, val, seed=seed, train=train,
                                                                tune_steps=tune_steps, lr=0.01)
    return loop.finish()


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
    g = generator(seed)
    mask = net.alpha_mask.clone()
    opt = torch.optim.SGD(net.weight_parameters(), lr=lr, momentum=0.9, weight_decay=3e-4)
    pending: list[Batch] = []
    log: list[dict[str, Any]] = []
    try:
        for k in rng.permutation(len(net.groups)).tolist():
            live = [i for i in range(net.unit_sizes()[k]) if net.alpha_mask[k, i] == 0]
            if len(live) < 2:
                continue
            base = mixed_accuracy(net, val, batch_size)
            drops = {}
            for i in live:
                net.alpha_mask[k, i] = float("-inf")
                drops[i] = base - mixed_accuracy(net, val, batch_size)
                net.alpha_mask[k, i] = 0.0
            best = max(live, key=lambda i: (drops[i], -i))
            net.alpha_mask[k, :] = float("-inf")
            net.alpha_mask[k, best] = 0.0
            log.append({"unit": net.unit_names[k], "base_acc": base, "chosen": net.unit_labels[k][best],
                        "drops": {net.unit_labels[k][i]: d for i, d in drops.items()}})
            if train is not None:
                for _ in range(tune_steps):
                    if not pending:
                        pending = batches(*train, 64, g)
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


def _unrolled_alpha_grad(net: Supernet, train: Batch, val: Batch, xi: float, tau: float = 1.0,
                         eps_scale: float = 0.01) -> None:
    """Second-order DARTS: grad_a L_val(w - xi grad_w L_train(w, a), a) with a finite-difference HVP."""
    params = net.weight_parameters()
    net.set_darts(tau)
    raw = torch.autograd.grad(F.cross_entropy(net(train[0]), train[1]), params, allow_unused=True)
    gw = [torch.zeros_like(p) if g is None else g for p, g in zip(params, raw, strict=True)]
    backup = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, g in zip(params, gw, strict=True):
            p.sub_(xi * g)
    net.set_darts(tau)
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
        net.set_darts(tau)
        hv.append(torch.autograd.grad(F.cross_entropy(net(train[0]), train[1]), net.alpha)[0])
    with torch.no_grad():
        for p, b in zip(params, backup, strict=True):
            p.copy_(b)
    net.alpha.grad = ga - xi * (hv[0] - hv[1]) / (2 * eps)
