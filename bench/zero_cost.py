"""Zero-cost proxies on the NB201 archs of NASLib's zc_nasbench201.json: our scores vs the recorded ones.

For each proxy: Spearman of our score with the recorded 200-epoch ``val_accuracy``, the same for the
recorded score of that proxy, the gap (must be <= 0.05), and seconds per architecture. Also Spearman of our
synflow with the recorded synflow (must be >= 0.9). NASLib fed one batch of 32 real CIFAR-10 images; the
data-dependent proxies here see one batch of 32 CIFAR-shaped standard-normal tensors with random labels
(``random``) and/or 32 Fashion-MNIST training images resized to 32x32 and repeated to 3 channels
(``fashion-mnist``); synflow, params and MACs depend on the shape only. Weights: ``torch.manual_seed(seed)``
before each build. Non-finite scores rank last, as in NASLib (-1e8).

    .venv/bin/python bench/zero_cost.py [--limit N] [--inputs random,fashion-mnist] [--json PATH]
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

from nasforge.estimators._zero_cost import PROXIES, grad_norm_and_snip, random_batch
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


DATA_FREE = ("synflow", "params", "macs")  # depend on the input shape only
FIRST_ONLY = ("naswot",)  # no recorded score to compare with: run on the first input kind only


def make_batch(kind: str, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    if kind == "random":
        x, y = random_batch((3, 32, 32), batch_size, 10, seed)
        return x, y, f"{batch_size} standard-normal 3x32x32 tensors with random labels (seed {seed})"
    if kind == "fashion-mnist":
        from nasforge.data import load_dataset

        ds = load_dataset("fashion-mnist", subset=(batch_size, 1, 1), split_seed=seed, resize=32).with_channels(3)
        return ds.train.x, ds.train.y, (f"{batch_size} Fashion-MNIST training images resized to 32x32, "
                                        f"3 channels (split seed {seed})")
    raise SystemExit(f"unknown inputs {kind!r}; allowed: random, fashion-mnist")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--dataset", default="cifar10", help="key of the json: cifar10, cifar100, ImageNet16-120")
    ap.add_argument("--limit", type=int, default=0, help="only the first N archs (0 = all)")
    ap.add_argument("--proxies", default=",".join(RECORDED))
    ap.add_argument("--inputs", default="random,fashion-mnist",
                    help="comma list of input batches for the data-dependent proxies: random, fashion-mnist")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="write the per-arch scores here (every 25 archs)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.data.is_file():
        print(f"missing {args.data}", file=sys.stderr)
        return 2
    table = json.loads(args.data.read_text())["nasbench201"][args.dataset]
    encs = list(table)[: args.limit or None]
    proxies = [p for p in args.proxies.split(",") if p]
    kinds = [k for k in args.inputs.split(",") if k]
    space = get_space("nb201")
    batches = {k: make_batch(k, args.batch_size, args.seed) for k in kinds}
    print(f"{len(encs)} NB201 archs ({args.dataset}); torch threads {args.threads}; weights seeded {args.seed}")
    for k, (_, _, what) in batches.items():
        print(f"  inputs {k}: {what}")
    # runs: (proxy, input kind); data-free proxies run once on the first kind's shape
    runs = [(p, k) for p in proxies for k in (kinds[:1] if p in DATA_FREE + FIRST_ONLY else kinds)]
    shared = "grad_norm" in proxies and "snip" in proxies  # one backward pass gives both
    ours: dict[tuple[str, str], list[float]] = {r: [] for r in runs}
    secs: dict[tuple[str, str], float] = dict.fromkeys(runs, 0.0)
    t_start = time.perf_counter()

    def dump() -> None:
        if args.json:
            args.json.write_text(json.dumps({"encodings": encs[: len(ours[runs[0]])], "scores": {
                f"{p}@{k}": [v if math.isfinite(v) else None for v in vals] for (p, k), vals in ours.items()}}))

    for i, enc in enumerate(encs):
        arch = space.parse(nb201_string(enc))
        torch.manual_seed(args.seed)
        model = space.build(arch, num_classes=10)
        for p, k in runs:
            x, y, _ = batches[k]
            if shared and p == "snip":
                continue  # filled by the grad_norm pass
            t0 = time.perf_counter()
            if shared and p == "grad_norm":
                gn, sn = grad_norm_and_snip(model, x, y)
                ours[(p, k)].append(gn)
                ours[("snip", k)].append(sn)
            else:
                ours[(p, k)].append(PROXIES[p](model, x, y))
            secs[(p, k)] += time.perf_counter() - t0
        if (i + 1) % 25 == 0:
            dump()
            print(f"  {i + 1}/{len(encs)} archs, {time.perf_counter() - t_start:.0f} s", flush=True)
    dump()
    acc = [table[e]["val_accuracy"] for e in encs]  # percent in NASLib's file; only its ranks are used
    print(f"\n{'proxy':<10} {'inputs':<14} {'ours~acc':>9} {'recorded~acc':>13} {'gap':>7} {'ok':>4} {'s/arch':>8}")
    verdict: dict[str, bool] = {}
    for p, k in runs:
        rho = spearmanr(rank_safe(ours[(p, k)]), acc)[0]
        shown = "(shape only)" if p in DATA_FREE else k
        key = RECORDED.get(p)
        if key is None:
            print(f"{p:<10} {shown:<14} {rho:9.3f} {'-':>13} {'-':>7} {'-':>4} {secs[(p, k)] / len(encs):8.3f}")
            continue
        rec = spearmanr(rank_safe([table[e][key] for e in encs]), acc)[0]
        ok = bool(rho >= rec - 0.05)
        verdict[k] = verdict.get(k, True) and ok
        if p in DATA_FREE:
            for other in kinds[1:]:
                verdict[other] = verdict.get(other, True) and ok
        t = secs[("grad_norm", k)] if shared and p == "snip" else secs[(p, k)]
        print(f"{p:<10} {shown:<14} {rho:9.3f} {rec:13.3f} {rho - rec:+7.3f} {'yes' if ok else 'NO':>4} "
              f"{t / len(encs):8.3f}")
    if ("synflow", kinds[0]) in ours:
        same = spearmanr(rank_safe(ours[("synflow", kinds[0])]),
                         rank_safe([table[e]["synflow"] for e in encs]))[0]
        print(f"\nsynflow ours vs recorded synflow: Spearman {same:.3f} (need >= 0.9)")
        verdict = {k: v and same >= 0.9 for k, v in verdict.items()}
    if shared:
        print("grad_norm and snip share one backward pass: their s/arch is that pass")
    for k, v in verdict.items():
        print(f"all recorded proxies within 0.05 with inputs {k}: {'yes' if v else 'NO'}")
    print(f"total {time.perf_counter() - t_start:.0f} s")
    return 0 if any(verdict.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
