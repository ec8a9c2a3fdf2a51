"""The table workflows behind ``nasforge latency fit | suggest | measure --archs``: few measurements on a new device.

``fit_table``: train on k rows of a measured table (chosen at random or actively), with or without a prior of other
devices, and report on all other rows (within 10% / 5%, Spearman, Kendall, rmse, and the noise ceiling where the
space can tell). ``suggest``: the k architectures to measure. ``measure_list``: time such a list on this host.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.errors import NasforgeError
from nasforge.hardware._predictor import LatencyPredictor, ModelConfig, latency_metrics, read_latency_table
from nasforge.hardware._transfer import (
    CHOOSERS,
    LatencyPrior,
    TransferModel,
    canonical_keys,
    choose_positions,
    noise_ceiling,
    read_csv,
)
from nasforge.spaces import Architecture, SearchSpace

#: architectures whose transfer predictions teach the saved predictor's trees (for archs outside the prior)
FALLBACK_ROWS = 2000
SUGGEST_POOL = 5000


def _same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def fit_table(space: SearchSpace, table: str | os.PathLike[str], arch_col: str, target_col: str, n_train: int,
              prior_tables: Sequence[str | os.PathLike[str]] = (), prior_cols: Sequence[str] | None = None,
              choose: str = "random", seed: int = 0, naive: bool = False, want_predictor: bool = False,
              prior_arch_col: str | None = None) -> tuple[dict[str, Any], LatencyPredictor | None]:
    """Metrics (``within_10pct``, ``within_5pct``, ``spearman``, ``kendall``, ``rmse``, ``n_train``, ``n_test``,
    ``noise_ceiling_10pct``; with a prior also ``transfer``: what was fitted) and, if asked, the predictor to save."""
    from scipy.stats import kendalltau

    if choose not in CHOOSERS:
        raise NasforgeError(f"unknown --choose {choose!r}; allowed: {', '.join(CHOOSERS)}")
    texts, cols = read_latency_table(table, arch_col, [target_col])
    y = cols[target_col]
    n = len(texts)
    low = 3 if prior_tables else 2
    if not low <= n_train < n:
        raise NasforgeError(f"--train {n_train} must be between {low} and {n - 1} (the table has {n} rows; at least "
                            "one is left to test on)")
    keys = canonical_keys(space, texts, f"table {Path(table).name}")
    info: dict[str, Any] = {}
    pred: LatencyPredictor | None = None
    if prior_tables:
        exclude = [target_col] if any(_same_file(p, table) for p in prior_tables) else []
        prior = LatencyPrior.read(prior_tables, prior_arch_col or arch_col, prior_cols, space, exclude)
        rows = prior.rows(keys, f"table {Path(table).name}")
        tr = choose_positions(prior.embedding()[rows], n_train, choose, seed)
        te = np.setdiff1d(np.arange(n), tr)
        model = TransferModel(prior).fit(rows[tr], y[tr])
        p = model.predict_rows(rows[te])
        info["transfer"] = {**model.describe(), "prior_columns": prior.columns, "choose": choose,
                            "reference": [keys[i] for i in tr]}
        if want_predictor:
            pred = _predictor_of(space, model, {keys[i]: float(y[i]) for i in tr}, seed)
    else:
        archs = [space.parse(k) for k in keys]
        if choose == "active":
            tr = choose_positions(_cost_embedding(space, archs), n_train, "active", seed)
        else:
            tr = np.sort(np.random.default_rng(seed).permutation(n)[:n_train])
        te = np.setdiff1d(np.arange(n), tr)
        pred = LatencyPredictor.naive(space, seed) if naive else LatencyPredictor(space, model=ModelConfig(seed=seed))
        pred.fit([archs[i] for i in tr], y[tr])
        p = pred.predict_many([archs[i] for i in te])
    m = latency_metrics(p, y[te])
    tau = kendalltau(p, y[te]).statistic if len(te) > 1 else float("nan")
    d: dict[str, Any] = {**m, "kendall": float(tau), "n_train": len(tr), "n_test": len(te),
                         "noise_ceiling_10pct": noise_ceiling(space, keys, y), **info}
    return d, pred


def _predictor_of(space: SearchSpace, model: TransferModel, measured: dict[str, float], seed: int) -> LatencyPredictor:
    """A saveable predictor: the transfer predictions of every prior architecture as its lookup (measured ones
    as measured), and trees fitted on a sample of those predictions for architectures outside the prior."""
    prior = model.prior
    allp = model.predict_rows()
    lookup = {k: float(allp[i]) for k, i in prior.index.items()}
    lookup.update(measured)
    uniq = np.asarray(sorted(prior.index.values()))
    pick = np.sort(np.random.default_rng(seed).permutation(uniq)[:FALLBACK_ROWS])
    archs = [space.parse(prior.keys[i]) for i in pick]
    pred = LatencyPredictor(space, model=ModelConfig(n_estimators=200, learning_rate=0.1, seed=seed))
    pred.fit(archs, allp[pick])
    pred.lookup = lookup
    return pred


def _cost_embedding(space: SearchSpace, archs: Sequence[Architecture]) -> np.ndarray:
    """Architectures as points without a prior: standardised analytic cost and per-choice counts."""
    from nasforge.hardware._predictor import encode

    X, _ = encode(space, archs, ("counts", "cost"))
    return np.asarray((X - X.mean(0)) / np.maximum(X.std(0), 1e-12))


def suggest(space: SearchSpace, k: int, prior_tables: Sequence[str | os.PathLike[str]] = (), arch_col: str = "arch",
            prior_cols: Sequence[str] | None = None, choose: str = "active", seed: int = 0) -> list[str]:
    """Canonical strings of the k architectures to measure on a new device (deterministic for a seed)."""
    if choose not in CHOOSERS:
        raise NasforgeError(f"unknown --choose {choose!r}; allowed: {', '.join(CHOOSERS)}")
    if prior_tables:
        prior = LatencyPrior.read(prior_tables, arch_col, prior_cols, space)
        uniq = np.asarray(sorted(prior.index.values()))
        if not 1 <= k <= len(uniq):
            raise NasforgeError(f"--k {k} must be between 1 and the {len(uniq)} architectures of the prior")
        pos = choose_positions(prior.embedding()[uniq], k, choose, seed)
        return [prior.keys[i] for i in uniq[pos]]
    rng = np.random.default_rng(seed)
    if space.size() <= SUGGEST_POOL:
        pool = list(space.enumerate())
    else:
        pool = list(dict.fromkeys(space.sample(rng) for _ in range(SUGGEST_POOL)))
    if not 1 <= k <= len(pool):
        raise NasforgeError(f"--k {k} must be between 1 and {len(pool)}")
    Z = _cost_embedding(space, pool) if choose == "active" else np.zeros((len(pool), 1))
    pos = choose_positions(Z, k, choose, seed)
    return [str(pool[i]) for i in pos]


def measure_list(space: SearchSpace, path: str | os.PathLike[str], out: str | os.PathLike[str] | None,
                 column: str = "host_ms", device: str = "host", runtime: str = "torch", threads: int = 1,
                 warmup: int = 10, repeats: int = 50) -> list[dict[str, Any]]:
    """Median latency (ms) of every architecture of a CSV list (column ``arch``, or the only column), one after
    another; the table ``arch,<column>`` is written to ``out`` (atomically) once all are measured."""
    from nasforge._files import write_atomic
    from nasforge.hardware._latency import measure_latency

    header, body = read_csv(path, "arch list")
    if "arch" in header:
        ia = header.index("arch")
    elif len(header) == 1:
        ia = 0
    else:
        raise NasforgeError(f"arch list {Path(path).name} needs a column 'arch'; columns: {', '.join(header)}")
    if not column or "," in column or '"' in column:
        raise NasforgeError(f"--column {column!r} must be a plain name (no commas or quotes)")
    keys = canonical_keys(space, [r[ia] for r in body], f"arch list {Path(path).name}")
    rows = []
    for k in keys:
        a = space.parse(k)
        stats = measure_latency(space.build(a), (1, *space.input_shape(a)), device, runtime, threads, warmup, repeats)
        rows.append({"arch": k, column: stats.median_ms})
    if out is not None:
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["arch", column])
        for r in rows:
            w.writerow([r["arch"], repr(r[column])])
        write_atomic(out, buf.getvalue())
    return rows
