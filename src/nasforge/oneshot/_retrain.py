"""A short stand-alone retrain of a derived architecture: what the architecture is worth on its own, apart
from the supernet's shared weights (``retrain_val_acc`` in a one-shot run's summary)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from nasforge.errors import NasforgeError
from nasforge.oneshot._rng import generator, torch_seeded
from nasforge.oneshot._supernet import Supernet
from nasforge.oneshot._training import Batch, accuracy, batches, check_data, sgd, sgd_step
from nasforge.spaces import Architecture


def retrain(net: Supernet, arch: Architecture, train: Batch, val: Batch, epochs: int, batch_size: int = 64,
            lr: float = 0.05, seed: int = 0, progress: Callable[[int, dict[str, float]], None] | None = None
            ) -> dict[str, float]:
    """Train the stand-alone network of ``arch`` from fresh weights (seeded; the supernet's weights are not
    used) for ``epochs`` epochs of SGD (momentum 0.9, Nesterov, weight decay 3e-4, cosine schedule) and
    measure it: ``{"retrain_val_acc": fraction, "retrain_epochs": n, "retrain_seconds": s}``.
    ``progress(epoch, info)`` as the one-shot methods call it (``step``, ``steps``, ``loss``)."""
    check_data(train, val)
    if epochs < 1:
        raise NasforgeError(f"retrain epochs={epochs} must be >= 1")
    t0 = time.perf_counter()
    dev = net.alpha.device
    with torch_seeded(seed, dev):
        model = net.to_standalone(arch).to(dev)
        for m in model.modules():  # fresh weights: the architecture alone, not what the supernet learnt
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()
        g = generator(seed + 1)
        steps = math.ceil(len(train[0]) / batch_size)
        params = list(model.parameters())
        opt, sched = sgd(params, lr, epochs * steps)
        for ep in range(epochs):
            model.train()
            total = 0.0
            for i, (x, y) in enumerate(batches(*train, batch_size, g)):
                total += sgd_step(model, params, opt, sched, x, y)
                if progress:
                    progress(ep + 1, {"step": i + 1, "steps": steps, "loss": total / (i + 1)})
    return {"retrain_val_acc": accuracy(model, val), "retrain_epochs": epochs,
            "retrain_seconds": time.perf_counter() - t0}
