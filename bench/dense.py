"""Searched dense topologies vs fixed ones, at the same training budget, on the built-in multi-scale data.

Usage: ``nice -n 10 .venv/bin/python bench/dense.py [--task detection segmentation] [--seeds 0 1 2] [--budget 6]
[--search-epochs 2] [--epochs 6] [--counts 256 64 64] [--threads 1]``

Detection (``nasfpn``, FCOS head, tiny backbone, the same channels and head for every neck): a regularized-
evolution search over the merging cells (``--budget`` candidates trained ``--search-epochs`` each, reward
validation mAP@0.5) picks one cell list; then, per seed, the searched cells, (a) no neck, (b) the plain FPN and
(c) a random cell list (drawn with that seed) are each trained from scratch for ``--epochs`` with that seed and
scored on the test canvases (objects from source images never seen in training): mAP@0.5 mean and std over seeds.
Segmentation (``lattice``): the same for the searched path vs the fixed down-then-up path (``down-up``) and a
random path; test mean IoU. Then, for the searched NAS-FPN vs the plain FPN: MACs and peak memory (analytic, fp32)
and measured host latency at batch 1 on one thread (interleaved, ``measure_latencies``).
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np
import torch

from nasforge.data import load_dense_dataset
from nasforge.estimators import DenseTrainingEstimator
from nasforge.hardware import measure_latencies
from nasforge.spaces import Architecture, SearchSpace, get_space
from nasforge.strategies import get_strategy

SPACES = {"detection": ("nasfpn", {"channels": 16, "head_convs": 1, "cells": 5}),
          "segmentation": ("lattice", {"layers": 6, "levels": 3, "base_channels": 8})}


def search(space: SearchSpace, est: DenseTrainingEstimator, budget: int, seed: int) -> tuple[Architecture, float]:
    """Regularized evolution (ask/tell) for ``budget`` candidates; the best by validation reward."""
    strat = get_strategy("evolution", space, seed=seed)
    best: tuple[Architecture, float] | None = None
    for i in range(budget):
        arch = strat.ask()
        res = est.evaluate(arch)
        strat.tell(arch, res)
        r = res.reward if res.reward is not None else -1.0
        print(f"  search {i + 1}/{budget}: {r:.4f} {arch}", flush=True)
        if best is None or r > best[1]:
            best = (arch, r)
    assert best is not None
    return best


def final(space: SearchSpace, arch: Architecture, data: Any, seed: int, epochs: int, batch_size: int,
          threads: int) -> tuple[float, dict[str, Any]]:
    est = DenseTrainingEstimator(space, data, epochs=epochs, batch_size=batch_size, seed=seed, num_threads=threads)
    res, _ = est.final_evaluate(arch)
    if res.status != "ok":
        raise RuntimeError(f"{arch}: {res.error}")
    key = "test_map50" if data.task == "detection" else "test_miou"
    return float(res.metrics[key]), res.metrics


def run_task(task: str, args: argparse.Namespace) -> dict[str, Any]:
    name, opts = SPACES[task]
    data = load_dense_dataset("multiscale", task, seed=0, canvas=args.canvas, counts=tuple(args.counts))
    fit: dict[str, SearchSpace] = {}

    def space(**extra: Any) -> SearchSpace:
        key = repr(sorted(extra.items()))
        if key not in fit:
            fit[key] = get_space(name, **opts, **extra).for_data(data.input_shape, data.num_classes, task=task)
        return fit[key]

    cells = space()
    print(f"{task}: {name} {opts}, data {data.summary()}", flush=True)
    t0 = time.perf_counter()
    est = DenseTrainingEstimator(cells, data, epochs=args.search_epochs, batch_size=args.batch_size, seed=0,
                                 num_threads=args.threads)
    searched, val = search(cells, est, args.budget, seed=0)
    search_s = time.perf_counter() - t0
    print(f"  searched: {searched} (val {val:.4f}) in {search_s:.0f} s", flush=True)
    if task == "detection":
        fixed = {"no neck": (space(neck="none"), None), "plain FPN": (space(neck="fpn"), None)}
    else:
        fixed = {"down-up path": (cells, cells.named_archs()["down-up"])}
    rows: dict[str, list[float]] = {"searched": [], **{k: [] for k in fixed}, "random": []}
    t1 = time.perf_counter()
    for seed in args.seeds:
        runs: list[tuple[str, SearchSpace, Architecture]] = [("searched", cells, searched)]
        for label, (sp, arch) in fixed.items():
            runs.append((label, sp, arch if arch is not None else sp.decode([])))
        runs.append(("random", cells, cells.sample(np.random.default_rng(1000 + seed))))
        for label, sp, arch in runs:
            score, _ = final(sp, arch, data, seed, args.epochs, args.batch_size, args.threads)
            rows[label].append(score)
            print(f"  seed {seed} {label:12s} {score:.4f}  {arch}", flush=True)
    final_s = time.perf_counter() - t1
    metric = "test mAP@0.5" if task == "detection" else "test mIoU"
    print(f"\n{task}: {metric} over seeds {args.seeds} ({args.epochs} epochs each)")
    for label, v in rows.items():
        print(f"  {label:12s} {np.mean(v):.4f} +- {np.std(v, ddof=1) if len(v) > 1 else math.nan:.4f}  "
              f"({', '.join(f'{x:.4f}' for x in v)})")
    print(f"  search {search_s:.0f} s, final trainings {final_s:.0f} s", flush=True)
    out: dict[str, Any] = {"rows": rows, "searched": str(searched)}
    if task == "detection":
        fpn = space(neck="fpn")
        pairs = [("searched NAS-FPN", cells, searched), ("plain FPN", fpn, fpn.decode([]))]
        mods = [sp.build(a, num_classes=data.num_classes).eval() for _, sp, a in pairs]
        lat = measure_latencies(mods, (1, *cells.input_shape(searched)), threads=1, min_time_s=args.latency_seconds)
        print("\n  network            MACs        peak B (fp32)  layers  latency min/median ms")
        base = None
        for (label, sp, a), st in zip(pairs, lat, strict=True):
            c = sp.network_spec(a).cost(layers=True)
            n_layers = len(c.layers) if getattr(c, "layers", None) else 0
            ratio = (c.macs, c.peak_memory_bytes, st.min_ms)
            base = base or ratio
            print(f"  {label:18s} {c.macs:>11,} {c.peak_memory_bytes:>13,}  {n_layers:>6}  {st.min_ms:.3f}/"
                  f"{st.median_ms:.3f}   (x{ratio[0] / base[0]:.2f} MACs, x{ratio[1] / base[1]:.2f} peak, "
                  f"x{ratio[2] / base[2]:.2f} latency vs the first row)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", nargs="+", default=["detection", "segmentation"], choices=list(SPACES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--budget", type=int, default=6)
    ap.add_argument("--search-epochs", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--counts", type=int, nargs=3, default=[256, 64, 64])
    ap.add_argument("--canvas", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--latency-seconds", type=float, default=2.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    for task in args.task:
        run_task(task, args)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
