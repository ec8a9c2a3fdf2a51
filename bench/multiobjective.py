"""Multi-objective search quality on NB201 CIFAR-10 x HELP latencies (the protocol of issue 15), via the harness.

Joins, by arch string, reward = 12-epoch ``cifar10-val`` (nb201_12ep_acc_minibench.csv, arch ``cellstr``), final =
200-epoch ``cifar10_test_200ep`` (nb201_cifar10_test_200ep_mean3seeds.csv, arch ``arch``) and latency columns of
help_latency/nb201_latency_help.csv (arch ``arch_str``; ms), taken by name (``--devices``, default below; any
column of that file may be named). For each device: ``run_mo_benchmark`` with ``--minimize-col`` = the device's
column, scores = hypervolume of the run's front over the true front's (min-max normalised, reference = worst
corner), mean +/- std (ddof=1) over seeds at 25/50/100/200 queries, and which nasforge strategy is at or above
``optuna-motpe`` per budget.

    nice -n 10 .venv/bin/python bench/multiobjective.py [--devices fpga,pixel3,raspi4,eyeriss] [--seeds 30]
        [--workers 2] [--strategies nsga2,pareto-local,mo-surrogate,random,optuna-nsga2,optuna-motpe]
        [--data ../shared/data] [--json OUT.json] [--reference-json EARLIER.json]

``--reference-json`` adds the rows of strategies that an earlier run of this script (same seeds and budgets) wrote
with ``--json`` and that this run does not run (e.g. the slow Optuna references, which are deterministic per seed,
run once while the nasforge strategies are tuned).
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
from nasforge.jobs._benchmark import Stat
from nasforge.jobs._mo_benchmark import MOBenchmarkResult, default_mo_strategies, format_mo_table, run_mo_benchmark
from nasforge.spaces import get_space

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEVICES = "fpga,pixel3,raspi4,eyeriss"  # defaults of this script only; --devices takes any column names


def read_col(path: Path, arch_col: str, cols: list[str]) -> dict[str, list[str]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in cols if c not in (reader.fieldnames or [])]
        if missing:
            raise SystemExit(f"{path.name} has no column(s) {', '.join(missing)}; columns: "
                             f"{', '.join(reader.fieldnames or [])}")
        return {row[arch_col]: [row[c] for c in cols] for row in reader}


def join(data: Path, latency_csv: Path, devices: list[str], out: Path) -> Path:
    nb = data / "nb201_nats_tss"
    reward = read_col(nb / "nb201_12ep_acc_minibench.csv", "cellstr", ["cifar10-val"])
    final = read_col(nb / "nb201_cifar10_test_200ep_mean3seeds.csv", "arch", ["cifar10_test_200ep"])
    lat = read_col(latency_csv, "arch_str", devices)
    if not (set(reward) == set(final) == set(lat)):
        raise SystemExit("the NB201 and latency tables do not cover the same architectures")
    path = out / "nb201_latency_joined.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "reward", "final", *devices])
        for a in reward:
            w.writerow([a, reward[a][0], final[a][0], *lat[a]])
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", default=DEVICES, help="comma-separated latency columns of the latency table")
    ap.add_argument("--data", default=str(DATA), help="folder with nb201_nats_tss/ and help_latency/")
    ap.add_argument("--latency-table", default=None, help="CSV with arch_str and the device columns "
                    "(default DATA/help_latency/nb201_latency_help.csv)")
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--budgets", default="25,50,100,200")
    ap.add_argument("--strategies", default=None, help="default: every multi-objective strategy, random and the "
                    "Optuna references")
    ap.add_argument("--json", default=None)
    ap.add_argument("--reference-json", default=None, help="comma-separated JSON files of earlier runs")
    args = ap.parse_args()
    earlier: list[dict[str, dict]] = [json.loads(Path(p).read_text())  # type: ignore[type-arg]
                                      for p in (args.reference_json or "").split(",") if p]
    torch.set_num_threads(1)
    data = Path(args.data)
    lat_csv = Path(args.latency_table) if args.latency_table else data / "help_latency" / "nb201_latency_help.csv"
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    names = ([s for s in args.strategies.split(",") if s] if args.strategies is not None
             else default_mo_strategies())  # --strategies '' with --reference-json: only compare earlier runs
    budgets = [int(b) for b in args.budgets.split(",")]
    space = get_space("nb201")
    results: dict[str, object] = {}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        joined = join(data, lat_csv, devices, Path(tmp))
        table = TabularEstimator(joined, "arch", "reward", final_col="final", space=space)
        for dev in devices:
            t0 = time.perf_counter()
            if names:
                res = run_mo_benchmark(space, table, dev, names, budgets, args.seeds, workers=args.workers)
            else:
                res = MOBenchmarkResult({}, math.nan, {})
            wall = time.perf_counter() - t0
            for old in (e.get(dev, {}) for e in earlier):
                if old and old["settings"]["seeds"] == args.seeds and old["settings"]["budgets"] == budgets:
                    res.true_hv = old["true_hv"]
                    for n, row in old["strategies"].items():
                        if n not in res.strategies:
                            res.strategies[n] = {k: Stat(v["mean"], v["std"], v["n"]) for k, v in row.items()}
                            res.overhead_ms[n] = old.get("overhead_ms", {}).get(n, math.nan)
            print(f"\n== {dev}: {len(names)} strategies x {args.seeds} seeds, {args.workers} workers: "
                  f"{wall:.0f} s wall")
            print(format_mo_table(res))
            ref = res.strategies.get("optuna-motpe")
            ours = {n: row for n, row in res.strategies.items() if not n.startswith("optuna-") and n != "random"}
            if ref and ours:
                for key, r in ref.items():
                    name, row = max(ours.items(), key=lambda kv: kv[1][key].mean if kv[1][key].n else -math.inf)
                    print(f"  {key:>4}: best nasforge {name} {row[key].mean:.4f} vs optuna-motpe {r.mean:.4f} "
                          f"({'at or above' if row[key].mean >= r.mean else 'BELOW'}; diff "
                          f"{row[key].mean - r.mean:+.4f}, se {math.hypot(row[key].std, r.std) / math.sqrt(r.n):.4f})")
            results[dev] = {**res.to_dict(), "wall_s": wall}
            if args.json:  # after every device, so a long run keeps what it has
                Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"\ntotal wall {time.perf_counter() - t_all:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
