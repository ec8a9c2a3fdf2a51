"""One-shot benchmarks: DARTS on NB201 (collapse and remedies: DARTS-PT selection, DARTS+, warm-up, beta-DARTS), DARTS
vs ProxylessNAS step memory, ProxylessNAS on mobilenet against a host latency target, SPOS ranking (Kendall tau).

Every figure is measured in this process; nothing is hard-coded. Pick experiments with flags (default: all):

    .venv/bin/python bench/oneshot.py --darts-nb201      # ~6-10 min on 2 quiet cores
    .venv/bin/python bench/oneshot.py --memory           # ~1 min
    .venv/bin/python bench/oneshot.py --proxyless        # ~3-5 min
    .venv/bin/python bench/oneshot.py --spos             # ~8-12 min (two stand-alone seeds)
    .venv/bin/python bench/oneshot.py --epoch-times [--torch-device cuda]   # ~2 min on CPU

Data: Fashion-MNIST IDX files (``--fashion-dir``, default the loader's), subsets as flags. The NB201 table is
``--nb201-table`` with ``--nb201-arch-column``/``--nb201-metric-column`` (default: the shared CIFAR-10 200-epoch
test accuracies, found relative to the repository). ``--threads`` sets torch's threads (2 only when the
machine is quiet).
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasforge.data import Dataset, load_dataset
from nasforge.hardware import measure_latencies
from nasforge.oneshot import SupernetEstimator, darts, make_supernet, proxyless, spos
from nasforge.oneshot._latency import latency_range, measure_choice_latency, path_latency
from nasforge.oneshot._memory import step_peak_memory
from nasforge.oneshot._training import count_op
from nasforge.spaces import Architecture, SearchSpace, get_space

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_TABLE = SHARED / "nb201_nats_tss" / "nb201_cifar10_test_200ep_mean3seeds.csv"


def fashion(args: argparse.Namespace, n_train: int, n_val: int, res: int, channels: int, seed: int = 0) -> Dataset:
    ds = load_dataset("fashion-mnist", args.fashion_dir, split_seed=seed, subset=(n_train, n_val, n_val), resize=res)
    return ds.with_channels(channels)


def read_table(path: Path, arch_col: str, metric_col: str) -> dict[str, float]:
    with open(path, newline="") as f:
        return {r[arch_col]: float(r[metric_col]) for r in csv.DictReader(f)}  # percent, as the NB201 tables


# -- 1. DARTS on NB201 ----------------------------------------------------------------------------------


def bench_darts_nb201(args: argparse.Namespace) -> None:
    """Plain DARTS (alpha argmax) against the remedy on the same seeds. When the remedy only changes the
    selection (DARTS-PT) it runs on the very supernet plain DARTS trained; DARTS+ (max_skip) is checked on
    plain DARTS' own trajectory and rerun only if it triggers; warm-up/beta-decay need their own training."""
    table = read_table(Path(args.nb201_table), args.nb201_arch_column, args.nb201_metric_column)
    space = get_space("nb201", C=args.darts_C, N=args.darts_N, resolution=args.darts_res)
    ds = fashion(args, args.darts_train, args.darts_val, args.darts_res, 3)
    remedy = (f"selection={args.selection}" + (f" (tune {args.tune_steps} steps/decision)" if args.selection == "pt"
                                               else "")
              + f", warmup={args.warmup}, beta_decay={args.beta_decay}, max_skip={args.max_skip}")
    print(f"== DARTS (1st order) on nb201 C={args.darts_C} N={args.darts_N} {args.darts_res}x{args.darts_res}, "
          f"Fashion-MNIST {len(ds.train)} train / {len(ds.val)} val, {args.darts_epochs} epochs, batch "
          f"{args.darts_batch}, arch lr {args.darts_arch_lr}; remedy: {remedy}")
    train, val = (ds.train.x, ds.train.y), (ds.val.x, ds.val.y)
    common = {"epochs": args.darts_epochs, "batch_size": args.darts_batch, "arch_lr": args.darts_arch_lr}
    same_training = args.warmup == 0 and args.beta_decay == 0
    rows = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        sel = args.selection if same_training else "alpha"
        plain = darts(make_supernet(space, seed=seed), train, val, seed=seed, selection=sel,
                      tune_steps=args.tune_steps, **common)
        plain_arch = plain.info.get("alpha_arch", str(plain.arch))
        skips = [count_op(space, space.parse(a), "skip_connect") for a in plain.derived]
        rem_arch, note = str(plain.arch), "same training, selection by perturbation" if sel == "pt" else ""
        triggered = args.max_skip is not None and any(s > args.max_skip for s in skips)
        if not same_training or triggered:
            rem = darts(make_supernet(space, seed=seed), train, val, seed=seed, selection=args.selection,
                        tune_steps=args.tune_steps, warmup_epochs=args.warmup, beta_decay=args.beta_decay,
                        max_skip=args.max_skip, **common)
            rem_arch, note = str(rem.arch), rem.info.get("stopped_early", "own training")
        elif args.max_skip is not None and sel == "alpha":
            note = "max_skip never triggered: the same run"
        secs = time.perf_counter() - t0
        row = {"seed": seed, "plain": plain_arch, "remedy": rem_arch, "note": note, "seconds": secs}
        row["plain_skips"] = count_op(space, space.parse(plain_arch), "skip_connect")
        row["remedy_skips"] = count_op(space, space.parse(rem_arch), "skip_connect")
        row["plain_acc"] = table.get(plain_arch, math.nan)
        row["remedy_acc"] = table.get(rem_arch, math.nan)
        rows.append(row)
        print(f"seed {seed}: {secs:.0f} s; plain DARTS skips per epoch {skips}")
        print(f"  plain : {plain_arch}  skips {row['plain_skips']}  CIFAR-10 test {row['plain_acc']:.2f} %")
        print(f"  remedy: {rem_arch}  skips {row['remedy_skips']}  CIFAR-10 test {row['remedy_acc']:.2f} %  ({note})")
    plain_mean = float(np.mean([r["plain_acc"] for r in rows]))
    rem_mean = float(np.mean([r["remedy_acc"] for r in rows]))
    collapsed = sum(1 for r in rows if r["plain_skips"] >= 3)
    pfree = sum(1 for r in rows for op in ("skip_connect", "avg_pool_3x3", "none")
                if count_op(space, space.parse(r["plain"]), op)) / max(1, len(rows))
    print(f"mean CIFAR-10 test accuracy in percent (200 ep, looked up): plain {plain_mean:.2f}, remedy {rem_mean:.2f} "
          f"(target >= 93.0); plain collapsed to skips (>= 3 of 6 edges): {collapsed}/{len(rows)} seeds; "
          f"parameter-free op kinds per plain arch: {pfree:.1f}")
    vals = np.array(list(table.values()))
    print(f"  table: best {vals.max():.2f}, mean {vals.mean():.2f}, share >= 93.0: {np.mean(vals >= 93.0):.3f}")


# -- 2. memory of one training step ---------------------------------------------------------------------


def bench_memory(args: argparse.Namespace) -> None:
    print(f"== peak memory of one training step (batch {args.mem_batch}, same supernet and batch per row)")
    cases: list[tuple[str, SearchSpace, dict[str, Any], int]] = [
        ("nb201 C=16 N=1 (5 ops)", get_space("nb201", C=16, N=1, resolution=32), {}, 32),
        ("darts C=16 layers=5 (8 ops)", get_space("darts", C=16, layers=5, resolution=32), {}, 32),
        ("mobilenet 9 (k,e) + skip", get_space("mobilenet", resolutions=[64], widths=[1.0], num_classes=10),
         {"resolution": 64}, 64),
    ]
    g = torch.Generator().manual_seed(0)
    for name, space, opts, res in cases:
        net = make_supernet(space, **opts)
        x = torch.randn(args.mem_batch, 3, res, res, generator=g)
        y = torch.randint(0, 10, (args.mem_batch,), generator=g)
        m = {k: step_peak_memory(net, k, x, y) for k in ("darts", "proxyless", "spos")}
        d, p, s = (m[k]["peak_memory_bytes"] for k in ("darts", "proxyless", "spos"))
        print(f"{name:30s} darts {d / 2**20:8.1f} MiB  proxyless {p / 2**20:7.1f} MiB  spos {s / 2**20:7.1f} MiB  "
              f"proxyless/darts {p / d:.3f}  ({m['darts']['peak_memory_kind']})")


# -- 3. ProxylessNAS on mobilenet with a host latency target --------------------------------------------


def small_mobilenet(args: argparse.Namespace, depths: list[int] | None = None,
                    expands: list[int] | None = None) -> SearchSpace:
    """3 stages (16, 24, 40 channels, stride 2 each), depth 1-2, kernel 3/5 x expand 3/6 per block, head 128:
    4 candidates + skip per optional slot, small enough for a supernet to learn in minutes on a CPU."""
    return get_space("mobilenet", stage_channels=[16, 24, 40], stage_strides=[2, 2, 2], depths=depths or [1, 2],
                     kernels=[3, 5], expands=expands or [3, 6], widths=[1.0], resolutions=[args.mb_res],
                     num_classes=10, in_channels=1, stem_channels=16, first_channels=16, head_channels=128)


def host_ms(space: SearchSpace, archs: list[Architecture], res: int, rounds: int) -> list[float]:
    """Measured host milliseconds of stand-alone networks, interleaved over ``rounds`` lasting at least 3 s
    (minimum), the protocol the table was fitted with."""
    stats = measure_latencies([space.build(a) for a in archs], (1, 1, res, res), rounds=rounds, min_time_s=3.0)
    return [st.min_ms for st in stats]


def nearest_paths(net: Any, table: torch.Tensor, base: float, target: float) -> tuple[float, float]:
    """Table latency of the dearest path at most ``target`` and of the cheapest above it (every path of the
    supernet, summed unit by unit: fine for the few thousand paths of this space)."""
    lat = np.array([base])
    for k, n in enumerate(net.unit_sizes()):
        lat = (lat[:, None] + table[k, :n].numpy()[None, :]).ravel()
    under, over = lat[lat <= target], lat[lat > target]
    return (float(under.max()) if len(under) else math.nan), (float(over.min()) if len(over) else math.nan)


def train_acc(space: SearchSpace, arch: Architecture, ds: Dataset, epochs: int, seed: int) -> float:
    from nasforge.estimators import TrainingEstimator

    r = TrainingEstimator(space, ds, epochs=epochs, batch_size=64, seed=seed, lr=0.05).evaluate(arch)
    return float(r.reward or math.nan) * 100  # percent, for the printed tables


def bench_proxyless(args: argparse.Namespace) -> None:
    space = small_mobilenet(args)
    ds = fashion(args, args.mb_train, args.mb_val, args.mb_res, 1)
    net = make_supernet(space, resolution=args.mb_res, width=1.0, seed=args.mb_seed)
    t0 = time.perf_counter()
    cal: dict[str, float] = {}
    table, base = measure_choice_latency(net, (1, args.mb_res, args.mb_res), calibrate=args.calib_nets,
                                         seed=args.mb_seed, info=cal)
    lo, hi = latency_range(table, net.unit_sizes(), base)
    target = args.target_ms if args.target_ms else lo + args.target_frac * (hi - lo)
    print(f"== ProxylessNAS on mobilenet (3 stages, depth 1-2, k 3/5 x e 3/6 + skip, {args.mb_res}x{args.mb_res}), "
          f"Fashion-MNIST {len(ds.train)}/{len(ds.val)}, {args.mb_epochs} epochs, seed {args.mb_seed}; host table in "
          f"{time.perf_counter() - t0:.1f} s: reachable {lo:.3f}..{hi:.3f} ms, target {target:.3f} ms")
    print(f"  table calibrated on {cal['calibration_networks']} whole networks: measured ~ "
          f"{cal['calibration_slope']:.3f} x ops + {cal['calibration_offset_ms']:.3f} ms, fit error mean "
          f"{100 * cal['calibration_mean_rel_err']:.1f}%, max {100 * cal['calibration_max_rel_err']:.1f}%")
    res = proxyless(net, (ds.train.x, ds.train.y), (ds.val.x, ds.val.y), epochs=args.mb_epochs, batch_size=64,
                    latency_table=table, base_latency_ms=base, latency_target_ms=target, beta=args.beta,
                    arch_lr=args.mb_arch_lr, warmup_epochs=args.mb_warmup, seed=args.mb_seed,
                    progress=lambda e, i: print(f"  epoch {e}: " + ", ".join(f"{k} {v:.3f}" for k, v in i.items())))
    arch = res.arch
    pred = res.info["predicted_latency_ms"]
    # random archs of about the derived one's table latency: measured with it, interleaved, to compare accuracy
    rng = np.random.default_rng(1)
    cands: list[Architecture] = []
    tries = 0
    while len(cands) < 3 * args.peers and tries < 2000:
        tries += 1
        a = space.sample(rng)
        if a != arch and a not in cands and abs(path_latency(net, table, a, base) / pred - 1) <= 0.05:
            cands.append(a)
    others = [space.parse(res.info["argmax_arch"])] if "argmax_arch" in res.info else []
    ms = host_ms(space, [arch, *others, *cands], args.mb_res, args.measure_rounds)
    measured = ms[0]
    if others:
        print(f"argmax per unit {others[0]}: table {path_latency(net, table, others[0], base):.3f} ms, measured "
              f"host {ms[1]:.3f} ms")
    print(f"derived (most probable in [0.95, 1] x target) {arch}  ({res.seconds:.0f} s)")
    print(f"  expected latency {res.info['expected_latency_ms']:.3f} ms, table-predicted {pred:.3f} ms, measured "
          f"host {measured:.3f} ms vs target {target:.3f} ms: {100 * (measured / target - 1):+.1f}% "
          f"(target within +/-10%)")
    again = host_ms(space, [arch], args.mb_res, args.measure_rounds)[0]
    print(f"  measured again alone: {again:.3f} ms ({100 * (again / target - 1):+.1f}% vs target); minimum of the "
          f"two windows (uncontended, as the table): {100 * (min(measured, again) / target - 1):+.1f}%")
    below, above = nearest_paths(net, table, base, target)
    print(f"  the table's paths nearest the target: {below:.3f} ms below ({100 * (below / target - 1):+.1f}%), "
          f"{above:.3f} ms above ({100 * (above / target - 1):+.1f}%)")
    peers = [(a, m) for a, m in zip(cands, ms[1 + len(others):], strict=True) if abs(m / measured - 1) <= 0.1]
    peers = peers[: args.peers]
    acc = train_acc(space, arch, ds, args.mb_train_epochs, 0)
    print(f"  stand-alone {args.mb_train_epochs}-epoch val accuracy: derived {acc:.2f} %")
    accs = []
    for a, m in peers:
        accs.append(train_acc(space, a, ds, args.mb_train_epochs, 0))
        print(f"    random {m:.3f} ms (table {path_latency(net, table, a, base):.3f})  {accs[-1]:.2f}  {a}")
    if accs:
        print(f"  random archs within 10% of its measured latency ({len(accs)} of {len(cands)} within 5% by "
              f"table): mean {np.mean(accs):.2f}, best {max(accs):.2f}; derived ranks "
              f"{1 + sum(a > acc for a in accs)} of {len(accs) + 1}")


# -- 4. SPOS ranking quality ----------------------------------------------------------------------------


def bench_spos(args: argparse.Namespace) -> None:
    from scipy.stats import kendalltau, spearmanr

    space = small_mobilenet(args, args.spos_depths, args.spos_expands)
    ds = fashion(args, args.spos_train, args.spos_val, args.mb_res, 1)
    net = make_supernet(space, resolution=args.mb_res, width=1.0, seed=0)
    seeds = args.spos_seeds
    print(f"== SPOS on mobilenet (as --proxyless, depths {args.spos_depths or [1, 2]}, expands "
          f"{args.spos_expands or [3, 6]}), Fashion-MNIST {len(ds.train)}/{len(ds.val)} at "
          f"{args.mb_res}x{args.mb_res}: supernet {args.spos_epochs} epochs (one uniform path per step, lr 0.05); "
          f"{args.spos_archs} random archs, inherited weights (BN recalibrated on 4 batches) vs stand-alone "
          f"{args.spos_train_epochs} epochs (SGD lr 0.05, cosine), seeds {seeds}")
    res = spos(net, (ds.train.x, ds.train.y), epochs=args.spos_epochs, batch_size=64, seed=0,
               progress=lambda e, i: print(f"  epoch {e}: loss {i['loss']:.3f}"))
    print(f"  supernet trained in {res.seconds:.0f} s")
    est = SupernetEstimator(net, (ds.train.x, ds.train.y), (ds.val.x, ds.val.y), calib_batches=4, batch_size=128)
    rng = np.random.default_rng(2)
    archs: list[Architecture] = []
    while len(archs) < args.spos_archs:
        a = space.sample(rng)
        if a not in archs:
            archs.append(a)
    inherited: list[float] = []
    alone: list[list[float]] = []  # per arch, one accuracy per seed
    t0 = time.perf_counter()
    for a in archs:
        inherited.append(100 * float(est.evaluate(a).reward or math.nan))  # percent, as train_acc
        alone.append([train_acc(space, a, ds, args.spos_train_epochs, s) for s in seeds])
        print(f"  {a}: inherited {inherited[-1]:.2f} %  stand-alone " + " / ".join(f"{v:.2f} %" for v in alone[-1]))
    mean_alone = [float(np.mean(v)) for v in alone]
    tau = kendalltau(inherited, mean_alone)
    rho = spearmanr(inherited, mean_alone)
    print(f"  Kendall tau {tau.statistic:.3f} (p {tau.pvalue:.3f}), Spearman {rho.statistic:.3f} against the mean "
          f"over seeds; {len(archs) * len(seeds)} stand-alone trainings in {time.perf_counter() - t0:.0f} s")
    for i, s in enumerate(seeds):
        print(f"    inherited vs seed {s} alone: tau {kendalltau(inherited, [v[i] for v in alone]).statistic:.3f}")
    if len(seeds) > 1:  # how well the ground truth ranks itself: a ceiling for any estimator at this budget
        pairs = [kendalltau([v[i] for v in alone], [v[j] for v in alone]).statistic
                 for i in range(len(seeds)) for j in range(i + 1, len(seeds))]
        print(f"  stand-alone seed vs seed (noise ceiling): tau {np.mean(pairs):.3f} (mean of {len(pairs)} pairs)")


# -- 5. seconds per epoch of each method ----------------------------------------------------------------


def bench_epoch_times(args: argparse.Namespace) -> None:
    """The same supernet setting and data for DARTS, ProxylessNAS and SPOS, one epoch each after a warm-up
    epoch, on ``--torch-device`` (cpu by default; cuda when one is there)."""
    dev = torch.device(args.torch_device)
    space = small_mobilenet(args)
    ds = fashion(args, args.mb_train, args.mb_val, args.mb_res, 1)
    train = (ds.train.x.to(dev), ds.train.y.to(dev))
    val = (ds.val.x.to(dev), ds.val.y.to(dev))
    probe = make_supernet(space, resolution=args.mb_res, width=1.0, seed=0)
    table, base = measure_choice_latency(probe, (1, args.mb_res, args.mb_res), calibrate=0, min_time_s=1.0)
    lo, hi = latency_range(table, probe.unit_sizes(), base)
    print(f"== seconds per epoch on {dev} (mobilenet as --proxyless, {len(train[0])} train / {len(val[0])} val "
          f"images, batch 64; DARTS and ProxylessNAS also step alpha on val)")
    for method in ("darts", "proxyless", "spos"):
        net = make_supernet(space, resolution=args.mb_res, width=1.0, seed=0).to(dev)
        times = []
        for _ in range(2):  # the first epoch warms up (allocator, kernels): the second is the figure
            if method == "darts":
                r = darts(net, train, val, epochs=1, batch_size=64, seed=0)
            elif method == "proxyless":
                r = proxyless(net, train, val, epochs=1, batch_size=64, seed=0, latency_table=table,
                              base_latency_ms=base, latency_target_ms=(lo + hi) / 2)
            else:
                r = spos(net, train, epochs=1, batch_size=64, seed=0)
            times.append(r.seconds)
        print(f"  {method:10s} {times[1]:7.2f} s/epoch (first epoch {times[0]:.2f} s)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--darts-nb201", action="store_true")
    p.add_argument("--memory", action="store_true")
    p.add_argument("--proxyless", action="store_true")
    p.add_argument("--spos", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--fashion-dir", default=None)
    p.add_argument("--nb201-table", default=str(DEFAULT_TABLE))
    p.add_argument("--nb201-arch-column", default="arch")
    p.add_argument("--nb201-metric-column", default="cifar10_test_200ep")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--darts-C", type=int, default=8)
    p.add_argument("--darts-N", type=int, default=1)
    p.add_argument("--darts-res", type=int, default=16)
    p.add_argument("--darts-train", type=int, default=1000)
    p.add_argument("--darts-val", type=int, default=1000)
    p.add_argument("--darts-epochs", type=int, default=12)
    p.add_argument("--darts-batch", type=int, default=64)
    p.add_argument("--darts-arch-lr", type=float, default=1e-2)
    p.add_argument("--max-skip", type=int, default=None, help="DARTS+ remedy (off by default)")
    p.add_argument("--selection", choices=["alpha", "pt"], default="pt", help="remedy's selection (DARTS-PT)")
    p.add_argument("--tune-steps", type=int, default=16)
    p.add_argument("--warmup", type=int, default=0, help="remedy: weight-only epochs")
    p.add_argument("--beta-decay", type=float, default=0.0, help="remedy: beta-DARTS strength")
    p.add_argument("--mem-batch", type=int, default=16)
    p.add_argument("--mb-res", type=int, default=16)
    p.add_argument("--mb-train", type=int, default=4000)
    p.add_argument("--mb-val", type=int, default=1000)
    p.add_argument("--mb-epochs", type=int, default=10)
    p.add_argument("--mb-warmup", type=int, default=3)
    p.add_argument("--mb-seed", type=int, default=0, help="ProxylessNAS: supernet, table sample and training seed")
    p.add_argument("--mb-arch-lr", type=float, default=1e-2)
    p.add_argument("--mb-train-epochs", type=int, default=3)
    p.add_argument("--target-ms", type=float, default=None)
    p.add_argument("--target-frac", type=float, default=0.4, help="target = lo + frac * (hi - lo) of the table")
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--peers", type=int, default=4)
    p.add_argument("--calib-nets", type=int, default=24, help="whole networks the host table is fitted to")
    p.add_argument("--measure-rounds", type=int, default=8, help="interleaved rounds when timing networks")
    p.add_argument("--spos-train", type=int, default=4000)
    p.add_argument("--spos-val", type=int, default=1000)
    p.add_argument("--spos-epochs", type=int, default=10)
    p.add_argument("--spos-archs", type=int, default=20)
    p.add_argument("--spos-train-epochs", type=int, default=2)
    p.add_argument("--spos-seeds", type=int, nargs="+", default=[0, 1], help="stand-alone training seeds")
    p.add_argument("--spos-depths", type=int, nargs="+", default=None, help="per-stage depth choices (1 2)")
    p.add_argument("--spos-expands", type=int, nargs="+", default=None, help="expand-ratio choices (3 6)")
    p.add_argument("--epoch-times", action="store_true")
    p.add_argument("--torch-device", default="cpu", help="--epoch-times: cpu or cuda")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    chosen = [k for k in ("darts_nb201", "memory", "proxyless", "spos", "epoch_times") if getattr(args, k)]
    for k in chosen or ["memory", "darts_nb201", "proxyless", "spos", "epoch_times"]:
        t0 = time.perf_counter()
        {"darts_nb201": bench_darts_nb201, "memory": bench_memory, "proxyless": bench_proxyless,
         "spos": bench_spos, "epoch_times": bench_epoch_times}[k](args)
        print(f"({k}: {time.perf_counter() - t0:.0f} s wall)\n")


if __name__ == "__main__":
    main()
