"""Latency predictor accuracy on the HELP NB201 table: ours vs the naive baseline, every device column.

    .venv/bin/python bench/latency_predictor.py [--csv PATH] [--sizes 1000,100,20] [--seeds 0] [--columns a,b]

For each device column (taken from the file's header, never a fixed list) and training size N: train on N
random rows, test on all other rows; print within +/-10%, within +/-5% and Spearman of ours and of the
naive baseline (gradient boosting on one-hot ops, squared loss on log latency, 100 trees), same split.
Also prints a noise ceiling estimated from pairs of architectures whose cells are the same computation
(the two intermediate nodes swapped): what a perfect predictor of the true latency could score.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from nasforge.hardware._predictor import encode, fit_on_table, parse_archs, read_latency_table
from nasforge.spaces import get_space

DEFAULT_CSV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "help_latency" / "nb201_latency_help.csv"
CPU_PHONE = ("pixel3", "raspi4", "gold_6240", "silver_4114")


def nb201_iso_ceiling(archs: list, y: np.ndarray) -> float:
    """Noise ceiling from NB201 cells that are the same computation (nodes 1 and 2 swapped): with iid log
    noise, a pair's log difference / sqrt(2) is one measurement's deviation from the true latency, so the
    share of pairs where that is within 10% estimates what a perfect predictor could score."""
    groups: dict[tuple, list[float]] = {}
    for a, v in zip(archs, y, strict=True):
        e01, e02, e12, e03, e13, e23 = a.choices
        key = (tuple(sorted([(e01, e13), (e02, e23)])), e03) if e12 == 0 else tuple(a.choices)
        groups.setdefault(key, []).append(float(v))
    d = np.array([np.log(max(g[0], 1e-9) / max(g[1], 1e-9)) for g in groups.values() if len(g) == 2])
    return float(np.mean(np.abs(np.exp(d / np.sqrt(2)) - 1) <= 0.10))


def main() -> None:
    t0 = time.perf_counter()
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", default=str(DEFAULT_CSV))
    ap.add_argument("--arch-col", default="arch_str")
    ap.add_argument("--sizes", default="1000,100,20")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--columns", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import csv

    with open(args.csv) as f:
        header = next(csv.reader(f))
    cols = [c for c in (args.columns.split(",") if args.columns else header) if c not in (args.arch_col, "arch_index")]
    sizes = [int(s) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    sp = get_space("nb201")
    texts, ys = read_latency_table(args.csv, args.arch_col, cols)
    archs = parse_archs(sp, texts)
    t = time.perf_counter()
    full = encode(sp, archs)
    naive_x = encode(sp, archs, ("onehot",))
    print(f"features of {len(archs)} archs: {full[0].shape[1]} columns in {time.perf_counter() - t:.1f} s")
    print(f"{'column':<15} {'N':>5} | {'ours w10':>8} {'w5':>6} {'rho':>6} | {'naive w10':>9} {'w5':>6} {'rho':>6} | "
          f"{'ceiling':>7}")
    summary: dict[int, dict[str, list[float]]] = {
        n: {"ours": [], "naive": [], "ours_cp": [], "naive_cp": [], "ours_real": [], "naive_real": []} for n in sizes}
    integer_cols = [c for c in cols if np.all(ys[c] == np.round(ys[c]))]  # whole-ms columns in the source
    for c in cols:
        y = ys[c]
        ceil = nb201_iso_ceiling(archs, y)
        for n in sizes:
            o = [fit_on_table(sp, archs, y, n, s, encoded=full).metrics for s in seeds]
            b = [fit_on_table(sp, archs, y, n, s, encoded=naive_x, naive=True).metrics for s in seeds]

            def m(rows: list[dict[str, float]], k: str) -> float:
                return float(np.mean([r[k] for r in rows]))

            print(f"{c:<15} {n:>5} | {m(o, 'within_10pct'):8.3f} {m(o, 'within_5pct'):6.3f} {m(o, 'spearman'):6.3f} | "
                  f"{m(b, 'within_10pct'):9.3f} {m(b, 'within_5pct'):6.3f} {m(b, 'spearman'):6.3f} | {ceil:7.3f}",
                  flush=True)
            summary[n]["ours"].append(m(o, "within_10pct"))
            summary[n]["naive"].append(m(b, "within_10pct"))
            if c not in integer_cols:
                summary[n]["ours_real"].append(m(o, "within_10pct"))
                summary[n]["naive_real"].append(m(b, "within_10pct"))
            if c in CPU_PHONE:
                summary[n]["ours_cp"].append(m(o, "within_10pct"))
                summary[n]["naive_cp"].append(m(b, "within_10pct"))
    for n in sizes:
        s = summary[n]
        line = f"N={n:<5} mean within 10% over {len(s['ours'])} columns: ours {np.mean(s['ours']):.3f}, " \
               f"naive {np.mean(s['naive']):.3f}"
        if s["ours_real"]:
            line += f"; non-integer columns ({len(s['ours_real'])}): ours {np.mean(s['ours_real']):.3f}, " \
                    f"naive {np.mean(s['naive_real']):.3f}"
        if s["ours_cp"]:
            line += f"; CPU/phone columns ({len(s['ours_cp'])}): ours {np.mean(s['ours_cp']):.3f}, " \
                    f"naive {np.mean(s['naive_cp']):.3f}"
        print(line)
    print(f"integer (whole-ms) columns left out of the non-integer mean: {', '.join(integer_cols) or 'none'}; "
          f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
