"""Latency on a new device from a few measurements, by transfer from devices already measured.

The prior is a table of latencies of the same space on other devices: rows keyed by canonical architecture
strings, one column per device, from one or several CSV files (``LatencyPrior``). With k architectures measured on
the target device, ``TransferModel`` predicts the target's latency of every architecture in the prior.

The model (chosen by measurement, ``bench/latency_fewshot.py``): latency is a sum of per-layer costs, so a new
device's latency of an architecture is close to an affine combination of other devices' latencies **in
milliseconds** (not in log space: there the combination is wrong for cells whose cost is dominated by a few ops).
We fit ``target ~ a + sum_j w_j * source_j`` by ridge regression on the k measurements with relative error
(each residual divided by the measured latency, as the within-10% metric counts it); the candidates are ridge at a
grid of penalties and each single source device alone, and the one with the smallest leave-one-out relative error
on the k measurements is kept (exact LOO through the hat matrix, no refits).

``choose_reference`` picks which k architectures to measure: ``active`` = k strata along the first principal
direction of the prior's standardised log latencies, one seeded-random architecture from each (spread over the whole
range of cost as the source devices see it); ``random`` = a seeded random sample. Both are deterministic for a
seed. Measured against random, k-means and farthest-point picks on the HELP NB201 table (``bench/RESULTS.md``).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge.errors import NasforgeError

if TYPE_CHECKING:
    from nasforge.spaces import SearchSpace

FLOOR_MS = 1e-6
CHOOSERS = ("active", "random")
#: ridge penalties tried (on columns scaled to mean 1); single-source fits are tried beside them
ALPHAS = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0)


# -- reading tables -------------------------------------------------------------------------------------------


def _is_row_number(values: list[str]) -> bool:
    """A column 0..n-1 or 1..n in order is a row number (``arch_index``), not a device."""
    try:
        ints = [int(v) for v in values]
    except ValueError:
        return False
    return bool(ints) and ints[0] in (0, 1) and all(b == a + 1 for a, b in pairwise(ints))


def read_csv(path: str | os.PathLike[str], what: str = "table") -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CSV file; a missing, non-UTF-8, empty or ragged file is one line."""
    p = Path(path)
    if not p.is_file():
        raise NasforgeError(f"{what} {str(p)!r} not found (expected a CSV file with a header row)")
    try:
        with p.open(newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r]
    except UnicodeDecodeError:
        raise NasforgeError(f"{what} {str(p)!r} is not UTF-8 text (expected a CSV file)") from None
    except csv.Error as e:
        raise NasforgeError(f"{what} {str(p)!r} is not a readable CSV ({e})") from None
    if not rows:
        raise NasforgeError(f"{what} {p.name} is empty (expected a header row)")
    header = [h.strip() for h in rows[0]]
    if len(rows) < 2:
        raise NasforgeError(f"{what} {p.name} has no rows")
    for line, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise NasforgeError(f"{what} {p.name} line {line} has {len(r)} fields, the header {len(header)}")
    return header, rows[1:]


def read_columns(path: str | os.PathLike[str], arch_col: str, columns: Sequence[str] | None = None,
                 what: str = "table", exclude: Sequence[str] = ()) -> tuple[list[str], list[str], np.ndarray]:
    """(arch strings, column names, ms matrix) of a CSV. ``columns=None``: every column whose values are all
    numbers, except the arch column, row numbers and ``exclude``; named columns must be numeric (else one line
    naming the column and line)."""
    header, body = read_csv(path, what)
    name = Path(path).name
    if arch_col not in header:
        raise NasforgeError(f"arch column {arch_col!r} not in {what} {name}; columns: {', '.join(header)}")
    ia = header.index(arch_col)
    if columns is None:
        names = [h for i, h in enumerate(header) if i != ia and h not in exclude and _numeric([r[i] for r in body])
                 and not _is_row_number([r[i] for r in body])]
    else:
        names = [c for c in columns if c not in exclude]
        for c in names:
            if c not in header:
                raise NasforgeError(f"unknown device column {c!r} in {what} {name}; columns: {', '.join(header)}")
    out = np.empty((len(body), len(names)))
    for j, c in enumerate(names):
        i = header.index(c)
        for line, r in enumerate(body, start=2):
            try:
                v = float(r[i])
            except ValueError:
                raise NasforgeError(f"{what} {name} line {line}: column {c!r} is not numeric ({r[i]!r})") from None
            if not math.isfinite(v) or v < 0:
                raise NasforgeError(f"{what} {name} line {line}: column {c!r} is {v} (must be finite, >= 0 ms)")
            out[line - 2, j] = v
    return [r[ia].strip() for r in body], names, out


def _numeric(values: list[str]) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except ValueError:
        return False


def canonical_keys(space: SearchSpace | None, texts: Sequence[str], where: str) -> list[str]:
    """Canonical strings of ``texts`` in ``space`` (verbatim without a space); a foreign string is one line."""
    if space is None:
        return [t.strip() for t in texts]
    out = []
    cache: dict[str, str] = {}
    for i, t in enumerate(texts):
        c = cache.get(t)
        if c is None:
            try:
                c = str(space.parse(t))
            except NasforgeError as e:
                raise NasforgeError(f"{where} row {i + 1}: arch {t!r} is not an architecture of space "
                                    f"{space.name!r} ({e})") from None
            cache[t] = c
        out.append(c)
    return out


# -- the prior ------------------------------------------------------------------------------------------------


@dataclass
class LatencyPrior:
    """Latencies (ms) of architectures on source devices: ``ms[i, j]`` of ``keys[i]`` on ``columns[j]``."""

    keys: list[str]
    columns: list[str]
    ms: np.ndarray
    index: dict[str, int] = field(init=False, repr=False)
    _embedding: dict[int, np.ndarray] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.ms = np.asarray(self.ms, dtype=float)
        if self.ms.shape != (len(self.keys), len(self.columns)) or not self.columns:
            raise NasforgeError(f"the prior needs one latency per (architecture, column); got {self.ms.shape} for "
                                f"{len(self.keys)} archs x {len(self.columns)} columns")
        self.index = {}
        for i, k in enumerate(self.keys):
            self.index.setdefault(k, i)  # a repeated architecture: its first row

    @staticmethod
    def read(paths: Sequence[str | os.PathLike[str]], arch_col: str, columns: Sequence[str] | None = None,
             space: SearchSpace | None = None, exclude: Sequence[str] = ()) -> LatencyPrior:
        """Columns from one or several CSVs, joined on the canonical architecture string.

        ``columns``: names to take (each must exist in at least one file); ``None`` = every numeric column.
        ``exclude``: names left out (the target column when the prior is the target's own table). Several files
        are joined on the architectures they all hold; columns of the same name in two files get ``file:`` tags.
        """
        if not paths:
            raise NasforgeError("give at least one prior table")
        parts: list[tuple[str, list[str], list[str], np.ndarray]] = []
        for path in paths:
            if columns is None:
                texts, names, ms = read_columns(path, arch_col, None, "prior table", exclude)
            else:
                header, _ = read_csv(path, "prior table")
                want = [c for c in columns if c in header and c != arch_col]
                texts, names, ms = read_columns(path, arch_col, want, "prior table", exclude)
            keys = canonical_keys(space, texts, f"prior table {Path(path).name}")
            parts.append((Path(path).name, keys, names, ms))
        if columns is not None:
            have = {c for _, _, names, _ in parts for c in names}
            missing = [c for c in columns if c not in have and c not in exclude]
            if missing:
                raise NasforgeError(f"prior column {missing[0]!r} is in none of the prior tables")
        parts = [p for p in parts if p[2]]
        if not parts:
            raise NasforgeError("the prior tables hold no device column (after leaving out the target column)")
        if len(parts) == 1:
            _, keys, names, ms = parts[0]
            return LatencyPrior(keys, names, ms)
        common = set(parts[0][1])
        for _, keys, _, _ in parts[1:]:
            common &= set(keys)
        if not common:
            raise NasforgeError("the prior tables share no architecture; they must be tables of the same space")
        keys = [k for k in dict.fromkeys(parts[0][1]) if k in common]
        counts: dict[str, int] = {}
        for _, _, names, _ in parts:
            for c in names:
                counts[c] = counts.get(c, 0) + 1
        cols, blocks = [], []
        for fname, pkeys, names, ms in parts:
            idx: dict[str, int] = {}
            for i, k in enumerate(pkeys):
                idx.setdefault(k, i)
            rows = [idx[k] for k in keys]
            blocks.append(ms[rows])
            cols += [c if counts[c] == 1 else f"{fname}:{c}" for c in names]
        return LatencyPrior(keys, cols, np.concatenate(blocks, axis=1))

    def rows(self, keys: Sequence[str], what: str = "the target table") -> np.ndarray:
        """Row indices of ``keys``; architectures the prior lacks are one error naming how many."""
        missing = [k for k in keys if k not in self.index]
        if missing:
            raise NasforgeError(f"the prior covers {len(keys) - len(missing)} of the {len(keys)} architectures of "
                                f"{what}: {len(missing)} missing (e.g. {missing[0]!r}); the prior must hold every "
                                "architecture to predict")
        return np.asarray([self.index[k] for k in keys], dtype=np.int64)

    def embedding(self, dims: int = 8) -> np.ndarray:
        """Rows as points: standardised log latencies projected on the top ``dims`` principal directions
        (computed once per prior)."""
        cached = self._embedding.get(dims)
        if cached is not None:
            return cached
        L = np.log(np.maximum(self.ms, 1e-3))
        Z = (L - L.mean(0)) / np.maximum(L.std(0), 1e-12)
        _, _, vt = np.linalg.svd(Z[:: max(1, len(Z) // 5000)], full_matrices=False)
        Z = Z @ vt[:dims].T  # principal directions first (all of them when there are fewer than dims)
        self._embedding[dims] = Z
        return Z


# -- which architectures to measure ---------------------------------------------------------------------------


def choose_reference(prior: LatencyPrior, k: int, how: str = "active", seed: int = 0) -> np.ndarray:
    """Row indices of the k architectures of ``prior`` to measure on the new device (``choose_positions`` on the
    prior's embedding; a repeated architecture counts once). Deterministic for a seed."""
    uniq = np.asarray(sorted(prior.index.values()), dtype=np.int64)
    return np.sort(uniq[choose_positions(prior.embedding()[uniq], k, how, seed)])


def choose_positions(Z: np.ndarray, k: int, how: str = "active", seed: int = 0) -> np.ndarray:
    """Sorted positions of k of the points ``Z`` (one row per candidate, first column = the prior's first
    principal direction). ``active``: cut the candidates into k equal strata along that direction (overall
    size/speed as all source devices see it) and take one seeded-random point of each: the k span the whole range,
    which pins the affine map's slope, without the outliers a farthest-point rule takes. ``random``: a seeded
    sample. Both deterministic for a seed."""
    if how not in CHOOSERS:
        raise NasforgeError(f"unknown choice {how!r}; allowed: {', '.join(CHOOSERS)}")
    if not 1 <= k <= len(Z):
        raise NasforgeError(f"k = {k} must be between 1 and the {len(Z)} architectures to choose from")
    rng = np.random.default_rng(seed)
    if how == "random":
        return np.sort(rng.choice(len(Z), size=k, replace=False))
    order = np.argsort(Z[:, 0], kind="stable")
    return np.sort(np.asarray([int(part[rng.integers(len(part))]) for part in np.array_split(order, k)]))


# -- the transfer model ---------------------------------------------------------------------------------------


@dataclass
class Fit:
    """What ``TransferModel.fit`` chose: the sources used, intercept and weights (on raw ms), LOO error."""

    kind: str
    columns: list[str]
    intercept: float
    weights: list[float]
    loo_rel_rmse: float


class TransferModel:
    """target ms ~ a + sum_j w_j * source_j ms, fitted on k measured rows of the prior (see the module doc)."""

    def __init__(self, prior: LatencyPrior) -> None:
        self.prior = prior
        self.scale = np.maximum(prior.ms.mean(0), FLOOR_MS)
        self.fit_: Fit | None = None

    def fit(self, rows: Sequence[int], ms: Sequence[float] | np.ndarray) -> TransferModel:
        """``rows`` of the prior measured on the target as ``ms``."""
        t = np.asarray(ms, dtype=float)
        r = np.asarray(rows, dtype=np.int64)
        if len(r) != len(t) or len(t) < 3:
            raise NasforgeError(f"transfer needs at least 3 measured architectures, one latency each; got {len(r)} "
                                f"rows and {len(t)} latencies")
        if not np.all(np.isfinite(t)) or np.any(t < 0):
            raise NasforgeError("measured latencies must be finite and >= 0 ms")
        F = self.prior.ms[r] / self.scale
        best: tuple[float, str, list[int], np.ndarray] | None = None
        for a in ALPHAS:
            e, w = _ridge_rel_loo(F, t, a)
            if best is None or e < best[0]:
                best = (e, f"ridge(alpha={a:g})", list(range(F.shape[1])), w)
        for j in range(F.shape[1]):
            e, w = _ridge_rel_loo(F[:, [j]], t, 0.0)
            if best is None or e < best[0]:
                best = (e, "single source", [j], w)
        assert best is not None
        e, kind, cols, w = best
        weights = [float(w[1 + i] / self.scale[c]) for i, c in enumerate(cols)]
        self.fit_ = Fit(kind, [self.prior.columns[c] for c in cols], float(w[0]), weights, float(math.sqrt(e)))
        self._cols = np.asarray(cols, dtype=np.int64)
        return self

    def predict_rows(self, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Predicted target ms of prior rows (all rows by default), floored at a tiny positive value."""
        if self.fit_ is None:
            raise NasforgeError("the transfer model is not fitted; call fit(rows, ms) first")
        S = self.prior.ms if rows is None else self.prior.ms[np.asarray(rows, dtype=np.int64)]
        p = self.fit_.intercept + S[:, self._cols] @ np.asarray(self.fit_.weights)
        return np.maximum(p, FLOOR_MS)

    def predict(self, keys: Sequence[str]) -> np.ndarray:
        return self.predict_rows(self.prior.rows(keys, "the architectures asked for"))

    def describe(self) -> dict[str, Any]:
        assert self.fit_ is not None
        f = self.fit_
        return {"kind": f.kind, "intercept_ms": f.intercept, "loo_rel_rmse": f.loo_rel_rmse,
                "weights": dict(zip(f.columns, f.weights, strict=True))}


def _ridge_rel_loo(F: np.ndarray, t: np.ndarray, alpha: float) -> tuple[float, np.ndarray]:
    """Ridge of ``t`` on ``[1, F]`` minimising relative squared error (intercept not penalised):
    (mean squared leave-one-out relative error, coefficients [a, w...])."""
    W = 1.0 / np.maximum(t, FLOOR_MS)
    A = np.c_[np.ones(len(t)), F] * W[:, None]
    b = t * W
    P = np.eye(A.shape[1]) * alpha
    P[0, 0] = 0.0
    try:
        G = np.linalg.inv(A.T @ A + P + 1e-12 * np.eye(A.shape[1]))
    except np.linalg.LinAlgError:  # a constant source column: no unique fit
        G = np.linalg.pinv(A.T @ A + P)
    w = G @ (A.T @ b)
    h = np.einsum("ij,jk,ik->i", A, G, A)
    res = (b - A @ w) / np.maximum(1.0 - h, 1e-6)
    return float(np.mean(res ** 2)), w


# -- noise ceiling --------------------------------------------------------------------------------------------


def noise_ceiling(space: SearchSpace | None, keys: Sequence[str], ms: np.ndarray, tol: float = 0.10,
                  min_pairs: int = 20) -> float | None:
    """Share within +/-``tol`` a perfect predictor of the true latency could score, from pairs of architectures the
    space says are the same computation (``space.same_computation_key``); ``None`` where the space cannot tell.

    With iid log noise a pair's log ratio / sqrt(2) is one measurement's deviation from the truth.
    """
    fn = getattr(space, "same_computation_key", None)
    if space is None or not callable(fn):
        return None
    groups: dict[Any, list[float]] = {}
    for k, v in zip(keys, ms, strict=True):
        groups.setdefault(fn(space.parse(k)), []).append(float(v))
    d = np.array([math.log(max(g[0], 1e-9) / max(g[1], 1e-9)) for g in groups.values() if len(g) == 2])
    if len(d) < min_pairs:
        return None
    return float(np.mean(np.abs(np.exp(d / math.sqrt(2)) - 1) <= tol))
