"""A tiny surrogate for categorical decisions: kernel ridge regression on decision matches.

The kernel counts matching decisions m and adds ``pair`` x m(m-1)/2 (the pairwise one-hot
interactions), rewards are rank-transformed to normal scores so one broken architecture does not
dominate the fit. Cheap (one n x n solve), deterministic, and knows nothing about any space.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy.stats import norm, rankdata
from threadpoolctl import ThreadpoolController


@cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def match_kernel(a: np.ndarray, b: np.ndarray, pair: float) -> np.ndarray:
    m = (a[:, None, :] == b[None, :, :]).sum(-1).astype(float)
    return m + pair * m * (m - 1) / 2.0


def kernel_ridge_scores(x: np.ndarray, y: np.ndarray, xc: np.ndarray, pair: float = 0.3,
                        ridge: float = 1.0) -> np.ndarray:
    """Predicted normal scores of the candidates ``xc`` (rows of choice indices) from told ``x``, ``y``."""
    z = norm.ppf((rankdata(y) - 0.5) / len(y))
    k = match_kernel(x, x, pair) + ridge * np.eye(len(y))
    with _controller().limit(limits=1, user_api="blas"):  # threaded BLAS on a small solve is 100x slower
        alpha = np.linalg.solve(k, z)
    return np.asarray(match_kernel(xc, x, pair) @ alpha)
