"""The one-shot job's defaults sized to the data: what a run uses for the options the user left out.

Per dataset (README, "One-shot defaults"): the supernet's size (small images need a small supernet, not a
32-px CIFAR cell stack fed upsampled 8x8 digits), the batch size, the weight learning rate and torch's
intra-op threads (``None``: torch's default). The DARTS
architecture learning rate follows from the run's length: ``ALPHA_TRAVEL / alpha steps`` (clipped to
[3e-4, 0.3]). Adam moves every alpha by about its learning rate per step, so this keeps how far alpha can move
over a run the same whatever the epochs and data size: the DARTS paper's 3e-4 over ~20,000 steps travels
6, which over the 63 steps of 3 digits epochs left every probability at 0.20. DARTS also anneals its softmax
temperature to ``temperature_end`` so that the weights end up trained for the derived path (its
inherited-weight accuracy then means something). Measured on digits (bench/RESULTS.md); the other rows are
scaled from it and from the papers' settings, not measured here.
"""

from __future__ import annotations

import math
from typing import Any

ALPHA_TRAVEL = 19.0
"""Total alpha movement a DARTS run is sized for (arch_lr x alpha steps): 0.3 x 63 steps, measured on digits
(3 epochs: the probabilities move by up to ~0.5 and the derived net keeps its accuracy; 3e-4 moved them 0.003)."""

ARCH_LR_RANGE = (3e-4, 0.3)

METHOD_LR = {"darts": 0.025, "proxyless": 0.025, "spos": 0.05}
"""Weight learning rate per method (the papers' and the library's defaults; SGD, cosine schedule)."""

DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    # 8x8 grey digits, ~1,300 training images: a small supernet at the native resolution
    # one intra-op thread: its tiny convolutions gain nothing from two, and on a busy host two threads spin
    # (3 DARTS epochs: 35 s wall with 1 thread against 160 s with 2, the same host and load; bench/RESULTS.md)
    "digits": {"space_options": {"nb201": {"C": 8, "N": 1}, "darts": {"C": 8, "layers": 5}},
               "batch_size": 64, "lr": METHOD_LR, "temperature_end": 0.1, "threads": 1},
    # 28x28 grey, 54,000 training images: NB201's width, one cell per stage
    "fashion-mnist": {"space_options": {"nb201": {"C": 16, "N": 1}, "darts": {"C": 16, "layers": 5}},
                      "batch_size": 64, "lr": METHOD_LR, "temperature_end": 0.1, "threads": None},
    # 32x32 colour: the papers' search settings (NB201 C=16 N=5, DARTS C=16 8 layers)
    "cifar10": {"space_options": {}, "batch_size": 64, "lr": METHOD_LR, "temperature_end": 0.1, "threads": None},
}
FALLBACK: dict[str, Any] = {"space_options": {}, "batch_size": 64, "lr": METHOD_LR, "temperature_end": 1.0,
                            "threads": None}
"""Datasets not in the table: the methods' own defaults (the papers'), torch's thread count."""


def dataset_defaults(dataset: str) -> dict[str, Any]:
    """The defaults of ``dataset`` (the fallback, the library's method defaults, for others)."""
    return DATASET_DEFAULTS.get(dataset, FALLBACK)


def space_defaults(dataset: str, space: str, given: dict[str, Any]) -> dict[str, Any]:
    """The space options a run of ``space`` on ``dataset`` adds to the ``given`` ones (which win)."""
    extra = dataset_defaults(dataset)["space_options"].get(space, {})
    return {k: v for k, v in extra.items() if k not in given}


def darts_arch_lr(epochs: int, warmup_epochs: int, train_images: int, batch_size: int) -> float:
    """DARTS' alpha learning rate for a run: ``ALPHA_TRAVEL`` over its alpha steps, clipped to ``ARCH_LR_RANGE``."""
    steps = max(1, (epochs - warmup_epochs) * math.ceil(train_images / batch_size))
    lo, hi = ARCH_LR_RANGE
    return float(min(hi, max(lo, ALPHA_TRAVEL / steps)))
