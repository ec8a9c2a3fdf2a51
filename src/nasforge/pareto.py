"""Pareto fronts and hypervolume, through moocore (the computing is the library's, not ours).

Every function takes points as rows of objective values to **minimise** (negate a reward first). Used by the
multi-objective strategies (selection), the runner (a run's front and its hypervolume history), the benchmark
(the score) and the report. ``hypervolume`` counts only the part of the space that the points dominate inside
the box below ``ref``; points not strictly better than ``ref`` in every objective add nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import moocore
import numpy as np

ArrayLike = np.ndarray | Sequence[Sequence[float]]


def _points(points: ArrayLike) -> np.ndarray:
    p = np.asarray(points, dtype=float)
    if p.ndim != 2:
        p = p.reshape(len(p), -1) if p.size else np.zeros((0, 1))
    return p


def nondominated(points: ArrayLike) -> np.ndarray:
    """Boolean mask of the non-dominated rows; of exact duplicates only the first is kept."""
    p = _points(points)
    if len(p) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(p, keep_weakly=False), dtype=bool)


def pareto_ranks(points: ArrayLike) -> np.ndarray:
    """Non-dominated sorting: 0 for the first front, 1 for the front once that is removed, ...; duplicates tie."""
    p = _points(points)
    if len(p) == 0:
        return np.zeros(0, dtype=int)
    return np.asarray(moocore.pareto_rank(p), dtype=int)


def hypervolume(points: ArrayLike, ref: Sequence[float] | np.ndarray) -> float:
    """The hypervolume of ``points`` (minimisation) up to the reference point ``ref``; 0 for no points."""
    p = _points(points)
    r = np.asarray(ref, dtype=float)
    if len(p) == 0:
        return 0.0
    p = p[np.all(p < r, axis=1)]
    if len(p) == 0:
        return 0.0
    return float(moocore.hypervolume(p, ref=r))


def hv_contributions(points: ArrayLike, ref: Sequence[float] | np.ndarray) -> np.ndarray:
    """Each point's exclusive hypervolume (0 for dominated or duplicated points)."""
    p = _points(points)
    if len(p) == 0:
        return np.zeros(0)
    return np.asarray(moocore.hv_contributions(p, ref=np.asarray(ref, dtype=float)), dtype=float)


def crowding_distance(points: ArrayLike) -> np.ndarray:
    """NSGA-II crowding distance within one front: the sum over objectives of the normalised gap between each
    point's two neighbours; the extremes of every objective get infinity."""
    p = _points(points)
    n, m = p.shape
    d = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(p[:, j], kind="stable")
        lo, hi = p[order[0], j], p[order[-1], j]
        d[order[0]] = d[order[-1]] = np.inf
        if hi > lo:
            d[order[1:-1]] += (p[order[2:], j] - p[order[:-2], j]) / (hi - lo)
    return d


def normalise(points: ArrayLike, lo: Sequence[float] | np.ndarray, hi: Sequence[float] | np.ndarray) -> np.ndarray:
    """Min-max normalisation per objective to [0, 1] over the given bounds (a constant objective maps to 0)."""
    p = _points(points)
    lo_a, hi_a = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    span = np.where(hi_a > lo_a, hi_a - lo_a, 1.0)
    return (p - lo_a) / span


def hypervolume_history(points: ArrayLike, ref: Sequence[float] | np.ndarray) -> list[float]:
    """The hypervolume of the first k points for k = 1..n (NaN rows, e.g. failed trials, add nothing)."""
    p = _points(points)
    out: list[float] = []
    front = np.zeros((0, p.shape[1] if p.ndim == 2 else 1))
    hv = 0.0
    r = np.asarray(ref, dtype=float)
    for row in p:
        if np.all(np.isfinite(row)) and np.all(row < r) and not (
                len(front) and np.any(np.all(front <= row, axis=1))):
            front = np.vstack([front, row])
            front = front[nondominated(front)]
            hv = hypervolume(front, r)
        out.append(hv)
    return out
