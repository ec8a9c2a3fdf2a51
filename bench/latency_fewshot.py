"""Few-shot latency on unseen devices by transfer: leave-one-device-out over every device column of a HELP table.

    .venv/bin/python bench/latency_fewshot.py [--csv PATH --arch-col COL --space nb201|none] [--ks 5,10,20,50,100]
                                              [--seeds 5]

For each device column (taken from the file's header, never a fixed list): the prior = all other device columns,
the target = this column; k architectures measured (5 seeded random choices, and the active choice), the transfer
model (``TransferModel``) predicts all other rows. Prints per device and k: Spearman and within +/-10% (mean over the
random seeds, and active), the within-10% noise ceiling (NB201 same-computation pairs; n/a for other spaces), and
the means. Defaults: the NB201 table, then the FBNet table (keyed by its op list; no space in nasforge, so the keys
are used verbatim and there is no ceiling).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from nasforge.hardware._transfer import LatencyPrior, TransferModel, choose_reference, noise_ceiling, read_columns
from nasforge.spaces import get_space

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "help_latency"
DEFAULT = [(DATA / "nb201_latency_help.csv", "arch_str", "nb201"), (DATA / "fbnet_latency_help.csv", "op_idx_list",
                                                                     "none")]


def w10(p: np.ndarray, t: np.ndarray) -> float:
    return float(np.mean(np.abs(p / np.maximum(t, 1e-6) - 1) <= 0.10))


def run(csv: Path, arch_col: str, space_name: str, ks: list[int], seeds: int) -> None:
    t0 = time.perf_counter()
    space = None if space_name == "none" else get_space(space_name)
    keys, cols, ms = read_columns(csv, arch_col)
    if space is not None:
        keys = [str(space.parse(k)) for k in keys]
    print(f"\n== {csv.name}: {len(keys)} archs, {len(cols)} device columns; prior = the other columns ==")
    print(f"{'device':<15} {'ceil':>5} | " + " | ".join(f"k={k:<3} rho r/a   w10 r/a  " for k in ks))
    summary: dict[tuple[int, str], list[tuple[float, float]]] = {}
    ratios: dict[str, tuple[float, float]] = {}
    for j, c in enumerate(cols):
        y = ms[:, j]
        prior = LatencyPrior(keys, [x for i, x in enumerate(cols) if i != j], np.delete(ms, j, axis=1))
        ceil = noise_ceiling(space, keys, y)
        cells = []
        for k in ks:
            for how, ss in (("random", range(seeds)), ("active", range(1))):
                rho, w = [], []
                for s in ss:
                    tr = choose_reference(prior, k, how, s)
                    te = np.setdiff1d(np.arange(len(keys)), tr)
                    p = TransferModel(prior).fit(tr, y[tr]).predict_rows(te)
                    rho.append(float(spearmanr(p, y[te]).statistic))
                    w.append(w10(p, y[te]))
                summary.setdefault((k, how), []).append((float(np.mean(rho)), float(np.mean(w))))
            (rr, wr), (ra, wa) = summary[(k, "random")][-1], summary[(k, "active")][-1]
            cells.append(f"{rr:.3f}/{ra:.3f} {wr:.2f}/{wa:.2f}")
            if k == 20 and ceil:
                ratios[c] = (wr / ceil, wa / ceil)
        print(f"{c:<15} {f'{ceil:.3f}' if ceil is not None else 'n/a':>5} | " + " | ".join(cells), flush=True)
    print("mean over devices (random 5 seeds / active):")
    for k in ks:
        (rr, wr), (ra, wa) = (np.mean(summary[(k, h)], axis=0) for h in ("random", "active"))
        print(f"  k={k:<3} spearman {rr:.3f} / {ra:.3f}   within_10pct {wr:.3f} / {wa:.3f}")
    for i, how in enumerate(("random (mean of seeds)", "active")):
        if ratios:
            below = {c: r[i] for c, r in ratios.items() if r[i] < 0.9}
            print(f"k=20 within_10pct / noise ceiling, {how}: min {min(r[i] for r in ratios.values()):.2f}; "
                  f"below 0.9 on {len(below)} of {len(ratios)} devices: "
                  + (", ".join(f"{c} {r:.2f}" for c, r in sorted(below.items())) or "none"))
    print(f"({time.perf_counter() - t0:.0f} s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", default="")
    ap.add_argument("--arch-col", default="arch_str")
    ap.add_argument("--space", default="nb201", help="space of the arch strings, or 'none' (keys verbatim)")
    ap.add_argument("--ks", default="5,10,20,50,100")
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    tables = [(Path(args.csv), args.arch_col, args.space)] if args.csv else DEFAULT
    for csv, col, sp in tables:
        run(csv, col, sp, ks, args.seeds)


if __name__ == "__main__":
    main()
