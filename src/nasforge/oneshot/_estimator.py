"""Scoring architectures with a trained supernet's inherited weights (an ``Estimator``: SPOS' search, and the
derived architecture of every method)."""

from __future__ import annotations

import time

import torch

from nasforge.estimators import Result
from nasforge.oneshot._rng import generator
from nasforge.oneshot._supernet import Supernet, recalibrate_bn
from nasforge.oneshot._training import Batch, accuracy, batches
from nasforge.spaces import Architecture


class SupernetEstimator:
    """An ``Estimator`` that scores an architecture with the supernet's inherited weights.

    Batch-norm statistics are recalibrated on ``calib_batches`` train batches (the same ones for every
    architecture, drawn from ``seed``) for each architecture (they are not shared across paths), then
    validation accuracy (a fraction) is the reward.
    """

    def __init__(self, net: Supernet, train: Batch, val: Batch, calib_batches: int = 4, batch_size: int = 256,
                 seed: int = 0) -> None:
        self.net = net
        self.calib = [b[0] for b in batches(*train, batch_size, generator(seed))[:calib_batches]]
        self.val = val
        self.batch_size = batch_size

    @torch.no_grad()
    def evaluate(self, arch: Architecture) -> Result:
        t0 = time.perf_counter()
        try:
            self.net.fix(arch)
            recalibrate_bn(self.net, self.calib)
            acc = accuracy(self.net, self.val, self.batch_size)
        except Exception as e:  # a candidate that fails is recorded, the search goes on
            return Result.failure(f"{type(e).__name__}: {e}", time.perf_counter() - t0)
        return Result(acc, {"val_acc": acc}, {}, time.perf_counter() - t0)
