"""What every one-shot method shares: the result type, data checks and batching, the weight optimiser, the
seeded training loop (``Loop``: generator, schedule, per-step progress, timing) and accuracy measurements.

Randomness: batches come from a ``torch.Generator`` and path sampling from a ``numpy.random.Generator``, both
seeded from the run's seed; draws torch makes on its own (dropout) come from its default RNG forked for the
run (``torch_seeded``), so the same seed gives the same result and the caller's RNG is untouched.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from nasforge.errors import NasforgeError
from nasforge.oneshot._rng import generator, torch_seeded
from nasforge.oneshot._supernet import Supernet
from nasforge.spaces import Architecture, SearchSpace

Batch = tuple[Tensor, Tensor]
Progress = Callable[[int, dict[str, float]], None]
"""Called as ``progress(epoch, info)`` after every training step: ``epoch`` (1-based) is the epoch in progress,
``info`` holds ``step`` and ``steps`` (of this epoch) and the running mean ``loss``; the call after an
epoch's last step also carries the epoch's figures (e.g. ``supernet_val_acc``)."""

ALPHA_STILL = 0.02
"""Below this largest change of any candidate's probability (start to end of the search), the architecture
parameters barely moved and the derived architecture is decided by noise: the initial alpha (1e-3 x randn)
already spreads probabilities by ~1e-3, and a change of 0.02 is a tenth of the uniform probability of NB201's
five candidates, which is too small to carry the argmax across the few batches a run sees. A search whose
alpha learns moves its leading candidates by 0.1 or more (measured on digits, README)."""


@dataclass
class OneShotResult:
    """What a one-shot search gives: the derived architecture, its history and what the run measured."""

    method: str
    arch: Architecture
    epochs: int
    seconds: float
    history: list[list[list[float]]] = field(default_factory=list)  # per epoch: probs per decision
    derived: list[str] = field(default_factory=list)  # derived arch string after each epoch
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def batches(x: Tensor, y: Tensor, batch_size: int, g: torch.Generator) -> list[Batch]:
    """The data in shuffled mini-batches (order from ``g``)."""
    idx = torch.randperm(len(x), generator=g).to(x.device)
    return [(x[idx[i:i + batch_size]], y[idx[i:i + batch_size]]) for i in range(0, len(x), batch_size)]


def check_data(train: Batch, val: Batch) -> None:
    for name, (x, y) in (("train", train), ("val", val)):
        if len(x) == 0 or len(x) != len(y):
            raise NasforgeError(f"{name} data must be non-empty tensors of equal length, got {len(x)} and {len(y)}")


def count_op(space: SearchSpace, arch: Architecture, op: str) -> int:
    """How many decisions of ``arch`` chose the value ``op``."""
    return sum(1 for d, c in zip(space.decisions(), arch.choices, strict=True) if d.choices[c] == op)


def sgd(params: list[torch.nn.Parameter], lr: float, total_steps: int
        ) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.CosineAnnealingLR]:
    """The weight optimiser of every one-shot training (supernets and the retrain): SGD, momentum 0.9, Nesterov,
    weight decay 3e-4, cosine schedule from ``lr`` to ``lr / 100`` over ``total_steps``."""
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=3e-4, nesterov=True)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total_steps), eta_min=lr * 0.01)


def sgd_step(model: torch.nn.Module, params: list[torch.nn.Parameter], opt: torch.optim.Optimizer,
             sched: torch.optim.lr_scheduler.LRScheduler, x: Tensor, y: Tensor) -> float:
    """One step of ``opt`` on the cross-entropy of ``model(x)``, gradients of ``params`` clipped at norm 5, then
    one step of the schedule; the loss."""
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 5.0)
    opt.step()
    sched.step()
    return float(loss.detach())


class Loop:
    """The training preamble and loop every method shares, written once.

    Checks the data, seeds the batch order (``torch.Generator``) and path sampling (``rng``), sets up SGD
    (momentum 0.9, Nesterov, weight decay 3e-4, gradients clipped at 5) with a cosine schedule over all steps,
    and times the run. ``with loop.seeded(): for ep in loop.epochs(): ...`` runs the epochs with torch's own
    draws seeded; ``loop.step_done(...)`` reports each step's progress, ``loop.epoch_done(...)`` records the
    epoch and ``loop.finish()`` gives the result.
    """

    def __init__(self, net: Supernet, method: str, train: Batch, val: Batch, epochs: int, batch_size: int,
                 lr: float, seed: int, progress: Progress | None = None, learns_alpha: bool = True) -> None:
        check_data(train, val)
        if epochs < 1 or batch_size < 1:
            raise NasforgeError(f"epochs={epochs} and batch_size={batch_size} must be >= 1")
        self.net, self.train, self.val = net, train, val
        self.n_epochs, self.batch_size, self.seed = epochs, batch_size, seed
        self.rng = np.random.default_rng(seed)
        self.g = generator(seed)
        self.steps = math.ceil(len(train[0]) / batch_size)
        self.opt, self.sched = sgd(net.weight_parameters(), lr, epochs * self.steps)
        self.progress = progress
        self.learns_alpha = learns_alpha  # SPOS samples paths uniformly: no probabilities to record or judge
        self.result = OneShotResult(method, net.derive(), 0, 0.0)
        self.start_probs = net.probs().detach().cpu().clone()
        self.t0 = time.perf_counter()
        self._loss = 0.0
        self._done = 0

    def seeded(self) -> AbstractContextManager[None]:
        """Torch's own draws (dropout) seeded from the run's seed while training; the caller's RNG restored."""
        return torch_seeded(self.seed, self.net.alpha.device)

    def epochs(self) -> Iterator[int]:
        """The epoch indices (0-based), the supernet in train mode and the step count reset for each."""
        for ep in range(self.n_epochs):
            self.net.train()
            self._loss, self._done = 0.0, 0
            yield ep

    def batches(self, data: Batch) -> list[Batch]:
        return batches(*data, self.batch_size, self.g)

    def weight_step(self, x: Tensor, y: Tensor) -> float:
        """One SGD step of the supernet's weights on the path it is set to; the loss."""
        return sgd_step(self.net, self.net.weight_parameters(), self.opt, self.sched, x, y)

    def step_done(self, ep: int, loss: float) -> None:
        """Count one step of epoch ``ep`` (0-based) and report progress (running mean loss)."""
        self._loss += loss
        self._done += 1
        if self.progress and self._done < self.steps:
            self.progress(ep + 1, {"step": self._done, "steps": self.steps, "loss": self._loss / self._done})

    def epoch_done(self, ep: int, **figures: float) -> None:
        """Record the epoch's probabilities and derived architecture (methods that learn alpha); report the
        epoch's figures."""
        if self.learns_alpha:
            self.result.history.append(self.net.probs().detach().cpu().tolist())
            self.result.derived.append(str(self.net.derive()))
        self.result.epochs = ep + 1
        if self.progress:
            self.progress(ep + 1, {"step": self._done, "steps": self.steps,
                                   "loss": self._loss / max(1, self._done), **figures})

    def finish(self) -> OneShotResult:
        """The result with its time and, for methods that learn alpha, how far the probabilities moved (and a
        warning when that is below ``ALPHA_STILL``)."""
        res = self.result
        res.seconds = time.perf_counter() - self.t0
        if self.learns_alpha:
            moved = alpha_moved(self.start_probs, self.net.probs().detach().cpu())
            res.info["alpha_max_prob_change"] = moved
            if moved < ALPHA_STILL:
                res.warnings.append(
                    f"architecture parameters barely moved (largest probability change {moved:.3g} < "
                    f"{ALPHA_STILL}): the derived architecture is close to arbitrary; raise the alpha learning "
                    "rate or the epochs")
        return res


def alpha_moved(start: Tensor, end: Tensor) -> float:
    """The largest change of any candidate's probability between two ``probs()`` tables."""
    return float((end - start).abs().max()) if start.numel() else 0.0


@torch.no_grad()
def mixed_accuracy(net: Supernet, val: Batch, batch_size: int = 256, temperature: float = 1.0) -> float:
    """Validation accuracy (a fraction) of the mixed (DARTS) supernet with batch statistics, running stats
    untouched: what the supernet itself has learnt, all candidates weighted by their probabilities (at the
    softmax ``temperature`` it trains with)."""
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    was = net.training
    for m in bns:
        m.momentum = 0.0  # batch statistics without moving the running ones
    net.train()
    net.set_darts(temperature)
    acc = _accuracy(net, val, batch_size)
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom
    net.train(was)
    return acc


@torch.no_grad()
def accuracy(net: torch.nn.Module, val: Batch, batch_size: int = 256) -> float:
    """Validation accuracy (a fraction) of ``net`` in eval mode (running batch-norm statistics)."""
    was = net.training
    net.eval()
    acc = _accuracy(net, val, batch_size)
    net.train(was)
    return acc


def _accuracy(net: torch.nn.Module, val: Batch, batch_size: int) -> float:
    """The fraction of ``val`` that ``net`` classifies right, in whatever mode it is set to."""
    x, y = val
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((net(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    return correct / len(x)
