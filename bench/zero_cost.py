"""Zero-cost proxies on the NB201 archs of NASLib's zc_nasbench201.json: our scores vs the recorded ones.

For each proxy: Spearman of our score with the recorded 200-epoch ``val_accuracy``, the same for the
recorded score of that proxy, the gap (must be <= 0.05), and seconds per architecture. Also Spearman of our
synflow with the recorded synflow (must be >= 0.9). Inputs: one batch of 32 CIFAR-shaped standard-normal
tensors with random labels (``--inputs random``, the default) or Fashion-MNIST images resized to 32x32 and
repeated to 3 channels (``--inputs fashion-mnist``). Non-finite scores rank last, as in NASLib.

    .venv/bin/python bench/zero_cost.py [--limit N] [--dataset cifar10] [--json PATH] [--data PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from nasforge.estimators._zero_cost import PROXIES, random_batch
from nasforge.spaces import get_space

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "naslib_zc_subsets" / "zc_nasbench201.json"
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
# our proxy -> the key NASLib recorded it under
RECORDED = {"synflow": "synflow", "jacob_cov": "jacov", "snip": "snip", "grad_norm": "grad_norm",
            "params": "params", "macs": "flops", "naswot": None}


def nb201_string(enc: str) -> str:
    """NASLib's NB201 encoding '(a,b,c,d,e,f)' as an NB201 string (note the t2/t3 swap, see PROVENANCE.md)."""
    t = [NASLIB_OPS[int(v)] for v in enc.strip("()").split(",")]
    return f"|{t[0]}~0|+|{t[1]}~0|{t[3]}~1|+|{t[2]}~0|{t[4]}~1|{t[5]}~2|"


def rank_safe(values: list[float]) -> np.ndarray:
    """Non-finite scores below every finite one (NASLib stores them as -1e8)."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    low = (v[finite].min() - 1.0) if finite.any() else 0.0
    return np.where(finite, v, low)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--dataset", default="cifar10", help="key of the json: cifar10, cifar100, ImageNet16-120")
    ap.add_argument("--limit", type=int, default=0, help="only the first N archs (0 = all)")
    ap.add_argument("--proxies", default=",".join(RECORDED))
    ap.add_argument("--inputs", default="random", choices=("random", "fashion-mnist"))
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="write the per-arch scores here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.data.is_file():
        print(f"missing {args.data}", file=sys.stderr)
        return 2
    table = json.loads(args.data.read_text())["nasbench201"][args.dataset]
    encs = list(table)[: args.limit or None]
    proxies = [p for p in args.proxies.split(",") if p]
    space = get_space("nb201")
    if args.inputs == "random":
        x, y = random_batch((3, 32, 32), args.batch_size, 10, args.seed)
        what = f"{args.batch_size} standard-normal 3x32x32 tensors, random labels (seed {args.seed})"
    else:
        from nasforge.data import load_dataset

        ds = load_dataset("fashion-mnist", subset=(args.batch_size, 1, 1), split_seed=args.seed, resize=32)
        ds = ds.with_channels(3)
        x, y = ds.train.x, ds.train.y
        what = f"{len(y)} Fashion-MNIST training images resized to 32x32, 3 channels (split seed {args.seed})"
    print(f"{len(encs)} NB201 archs ({args.dataset}); inputs: {what}; torch threads {args.threads}")
    ours: dict[str, list[float]] = {p: [] for p in proxies}
    secs: dict[str, float] = dict.fromkeys(proxies, 0.0)
    t_start = time.perf_counter()
    for i, enc in enumerate(encs):
        arch = space.parse(nb201_string(enc))
        torch.manual_seed(args.seed)
        model = space.build(arch, num_classes=10)
        for p in proxies:
            t0 = time.perf_counter()
            ours[p].append(PROXIES[p](model, x, y))
            secs[p] += time.perf_counter() - t0
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{len(encs)} archs, {time.perf_counter() - t_start:.0f} s", flush=True)
    acc = [table[e]["val_accuracy"] for e in encs]
    print(f"\n{'proxy':<10} {'ours~acc':>9} {'recorded~acc':>13} {'gap':>7} {'ok':>4} {'s/arch':>8}")
    failed = False
    for p in proxies:
        rho = spearmanr(rank_safe(ours[p]), acc)[0]
        key = RECORDED.get(p)
        if key is None:
            print(f"{p:<10} {rho:9.3f} {'-':>13} {'-':>7} {'-':>4} {secs[p] / len(encs):8.3f}")
            continue
        rec = spearmanr(rank_safe([table[e][key] for e in encs]), acc)[0]
        ok = rho >= rec - 0.05
        failed |= not ok
        print(f"{p:<10} {rho:9.3f} {rec:13.3f} {rho - rec:+7.3f} {'yes' if ok else 'NO':>4} "
              f"{secs[p] / len(encs):8.3f}")
    if "synflow" in ours:
        same = spearmanr(rank_safe(ours["synflow"]), rank_safe([table[e]["synflow"] for e in encs]))[0]
        failed |= same < 0.9
        print(f"\nsynflow ours vs recorded synflow: Spearman {same:.3f} (need >= 0.9)")
    print(f"total {time.perf_counter() - t_start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"encodings": encs, "val_accuracy": acc,
                                         "scores": {p: [v if math.isfinite(v) else None for v in ours[p]]
                                                    for p in proxies}}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
