"""Single-path one-shot (SPOS, Guo et al., ECCV 2020): train the supernet on one uniformly sampled path per
step; a search then scores architectures with the inherited weights (``SupernetEstimator``)."""

from __future__ import annotations

from nasforge.oneshot._supernet import Supernet
from nasforge.oneshot._training import Batch, Loop, OneShotResult, Progress


def spos(net: Supernet, train: Batch, epochs: int = 10, batch_size: int = 64, lr: float = 0.05, seed: int = 0,
         progress: Progress | None = None) -> OneShotResult:
    """Single-path one-shot: train the supernet on one uniformly sampled path per step."""
    loop = Loop(net, "spos", train, train, epochs, batch_size, lr, seed, progress, learns_alpha=False)
    with loop.seeded():
        for ep in loop.epochs():
            for xt, yt in loop.batches(train):
                net.fix(net.sample(loop.rng))
                loop.step_done(ep, loop.weight_step(xt, yt))
            loop.epoch_done(ep)
    return loop.finish()
