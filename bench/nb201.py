"""NAS-Bench-201 CIFAR-10 search-quality benchmark (the protocol of issue 4), run through the harness.

Joins three tables of ../shared/data/nb201_nats_tss by arch string (see its PROVENANCE.md):
reward = 12-epoch ``cifar10-val`` (nb201_12ep_acc_minibench.csv, arch ``cellstr``), final = 200-epoch
``cifar10_test_200ep`` (nb201_cifar10_test_200ep_mean3seeds.csv, arch ``arch``), time = ``train-all-time``
(total 200-epoch training seconds, nats_tss_cifar10-valid_200ep_mean3seeds_full_metrics.csv, arch ``arch_str``)
x 12/200, simulated budget 12,000 s. The tables hold percent; ``TabularEstimator`` reads them as fractions
(its stated rule), and this script prints those fractions x 100 as percent, to compare with the anchors and
bench/RESULTS.md, which are in percent. Prints mean +/- std (ddof=1) over seeds at 25/50/100/200 queries and
under the time budget, checks the random/evolution anchors, the wall time, and per ask+tell overhead at
1000 trials beside Optuna TPE's.

    .venv/bin/python bench/nb201.py [--seeds 100] [--workers 2] [--strategies random,evolution,reinforce,local]
        [--slow bo,optuna-tpe] [--slow-seeds 100] [--json OUT.json] [--plot OUT.png]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import tempfile
import time
from pathlib import Path

import torch

from nasforge.estimators import TabularEstimator
from nasforge.jobs._benchmark import format_table, make_strategy, plot, run_benchmark
from nasforge.spaces import get_space

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nb201_nats_tss"
# published means and stds, in percent
ANCHORS = {("random", "100"): (93.73, 0.32), ("evolution", "100"): (93.90, 0.45),
           ("random", "12000s"): (93.75, None), ("evolution", "12000s"): (93.92, 0.30),
           ("optuna-tpe", "25"): (93.42, None), ("optuna-tpe", "50"): (93.91, None),
           ("optuna-tpe", "100"): (94.16, 0.24), ("optuna-tpe", "200"): (94.25, None),
           ("optuna-tpe", "12000s"): (94.15, None)}


def read_col(path: Path, arch_col: str, col: str) -> dict[str, str]:
    with path.open(newline="") as f:
        return {row[arch_col]: row[col] for row in csv.DictReader(f)}


def join(out: Path) -> Path:
    reward = read_col(DATA / "nb201_12ep_acc_minibench.csv", "cellstr", "cifar10-val")
    final = read_col(DATA / "nb201_cifar10_test_200ep_mean3seeds.csv", "arch", "cifar10_test_200ep")
    secs = read_col(DATA / "nats_tss_cifar10-valid_200ep_mean3seeds_full_metrics.csv", "arch_str", "train-all-time")
    if not (set(reward) == set(final) == set(secs)):
        raise SystemExit("the three NB201 tables do not cover the same architectures")
    path = out / "nb201_joined.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "reward", "final", "train_seconds_200ep"])
        for a in reward:
            w.writerow([a, reward[a], final[a], secs[a]])
    return path


def overhead_ms(space, names: list[str], trials: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Mean ms per ask+tell over a run of ``trials`` trials (toy reward: the sum of choices)."""
    from nasforge.estimators import Result

    out = {}
    for name in names:
        s = make_strategy(name, space, 0)
        t0 = time.perf_counter()
        for _ in range(trials):
            a = s.ask()
            s.tell(a, Result(float(sum(a.choices))))
        out[name] = 1e3 * (time.perf_counter() - t0) / trials
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--strategies", default="random,evolution,reinforce,local,surrogate")
    ap.add_argument("--slow", default="bo,optuna-tpe", help="strategies timed separately (may be empty)")
    ap.add_argument("--slow-seeds", type=int, default=100)
    ap.add_argument("--overhead-trials", type=int, default=1000)
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not DATA.exists():
        raise SystemExit(f"data not found: {DATA}")
    space = get_space("nb201")
    with tempfile.TemporaryDirectory() as tmp:
        table = TabularEstimator(join(Path(tmp)), "arch", "reward", final_col="final",
                                 time_col="train_seconds_200ep", time_scale=12 / 200, space=space)
    budgets = [25, 50, 100, 200]
    fast = [s for s in args.strategies.split(",") if s]
    slow = [s for s in args.slow.split(",") if s]
    t0 = time.perf_counter()
    res = run_benchmark(space, table, fast, budgets, args.seeds, time_budget=12000.0, workers=args.workers)
    wall_fast = time.perf_counter() - t0
    print(f"== fast group: {len(fast)} strategies x {args.seeds} seeds x up to 200 queries (+12,000 s budget), "
          f"{args.workers} workers: {wall_fast:.1f} s wall")
    print(format_table(res))
    results = {"fast": res.to_dict(), "fast_wall_s": wall_fast}
    if slow:
        t0 = time.perf_counter()
        res_slow = run_benchmark(space, table, slow, budgets, args.slow_seeds, time_budget=12000.0,
                                 workers=args.workers)
        wall_slow = time.perf_counter() - t0
        print(f"\n== slow group: {len(slow)} strategies x {args.slow_seeds} seeds: {wall_slow:.1f} s wall")
        print(format_table(res_slow))
        if "optuna" in res_slow.settings:
            o = res_slow.settings["optuna"]
            print(f"optuna {o['version']}: optuna-tpe = {o['optuna-tpe']}; optuna-gp = {o['optuna-gp']}")
        results.update(slow=res_slow.to_dict(), slow_wall_s=wall_slow)
        res.strategies.update(res_slow.strategies)
    print("\n== anchors (issue 4; mean +/- std of the final, in percent; z = diff / standard error)")
    for (name, key), (m, sd) in ANCHORS.items():
        st = res.strategies.get(name, {}).get(key)
        if st is None or not st.n:
            continue
        mean, std = 100 * st.mean, 100 * st.std  # the fractions in percent, as the anchors
        se = math.sqrt(std**2 / st.n + ((sd or std) ** 2) / args.seeds)
        print(f"{name:>10} @{key:>6}: {mean:.2f} +/- {std:.2f} %  anchor {m:.2f}"
              f"{'' if sd is None else f' +/- {sd:.2f}'} %  z={(mean - m) / se:+.2f}")
    ref = res.strategies.get("optuna-tpe")
    ours = {n: row for n, row in res.strategies.items() if not n.startswith("optuna-")}
    if ref and ours:
        print("\n== best nasforge strategy vs Optuna TPE (mean final, in percent)")
        for key, r in ref.items():
            name, row = max(ours.items(), key=lambda kv: kv[1][key].mean if kv[1][key].n else -math.inf)
            print(f"{key:>7}: {name} {100 * row[key].mean:.2f} % vs TPE {100 * r.mean:.2f} % "
                  f"({'at or above' if row[key].mean >= r.mean else 'below'})")
    names = [n for n in ("random", "evolution", "local", "optuna-tpe") if n in fast + slow or n == "optuna-tpe"]
    oh = overhead_ms(space, names, args.overhead_trials)
    print(f"\n== overhead per ask+tell over {args.overhead_trials} trials (ms): "
          + ", ".join(f"{n} {v:.3f}" for n, v in oh.items()))
    results["overhead_ms_1000"] = oh
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.plot:
        plot(res, args.plot)


if __name__ == "__main__":
    main()
