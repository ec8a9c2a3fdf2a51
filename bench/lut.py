"""Lookup-table accuracy on this host: blocks timed interleaved (``build_table``) against the former protocol,
every block timed in its own burst (``measure_latency`` one block after the other), built in the same process.

    .venv/bin/python bench/lut.py [--builds 3] [--held 12] [--resolution 64]

Each build measures both tables back to back (order alternating), then times ``--held`` held-aside whole
networks interleaved (``measure_latencies``, 8 rounds) and prints the median and largest |error| of each
table's prediction (block sum + constant fitted on 5 networks) against them.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nasforge.hardware import LatencyTable, measure_latencies, measure_latency
from nasforge.hardware._lut import Entry, blocks_of, build_table, coverage_archs, distinct_blocks, network_of, spec_key
from nasforge.spaces import SearchSpace, get_space


def burst_table(space: SearchSpace, warmup: int, repeats: int, seed: int) -> LatencyTable:
    """The former protocol: each distinct block in one burst of calls (no timed warm-up), then the constant on 5
    networks."""
    blocks = distinct_blocks(space, coverage_archs(space, 3000, seed))
    rng = np.random.default_rng(seed)
    nets = [network_of(space, space.sample(rng)) for _ in range(5)]
    for n in nets:
        for spec, shape in blocks_of(n):
            blocks.setdefault(spec_key(spec, shape), (spec, shape))
    entries = {k: Entry(measure_latency(spec.build(), (1, *shape), warmup=warmup, repeats=repeats,
                                        min_warmup_s=0).min_ms) for k, (spec, shape) in blocks.items()}
    table = LatencyTable(entries, "cpu", "torch", 1, "nasforge", space.name, {})
    table.bind(space)
    table.fit_constant(nets, [measure_latency(n.build(), (1, *n.input_shape), warmup=warmup, repeats=repeats,
                                              min_warmup_s=0).min_ms
                              for n in nets])
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--builds", type=int, default=3)
    p.add_argument("--held", type=int, default=12)
    p.add_argument("--resolution", type=int, default=64)
    args = p.parse_args()
    torch.set_num_threads(1)
    opts = {"stage_channels": (16, 24, 32), "stage_strides": (2, 2, 2), "depths": (1, 2), "kernels": (3, 5),
            "expands": (3, 6), "widths": (0.5,), "resolutions": (args.resolution,), "head_channels": 64,
            "stem_channels": 16, "first_channels": 8, "num_classes": 10}
    space = get_space("mobilenet", **opts)
    print(f"== lookup tables for a tiny mobilenet space at {args.resolution}x{args.resolution} (warmup 3, "
          f"repeats 15, min), {args.held} held-aside networks timed interleaved, {args.builds} builds")
    errs: dict[str, list[float]] = {"interleaved": [], "burst": []}
    for b in range(args.builds):
        tables: dict[str, LatencyTable] = {}
        secs: dict[str, float] = {}
        for name in (["interleaved", "burst"] if b % 2 == 0 else ["burst", "interleaved"]):
            t0 = time.perf_counter()
            tables[name] = (build_table(space, warmup=3, repeats=15, samples=3000, fit_networks=5, seed=b)
                            if name == "interleaved" else burst_table(space, 3, 15, b))
            secs[name] = time.perf_counter() - t0
        rng = np.random.default_rng(1000 + b)
        held = [space.sample(rng) for _ in range(args.held)]
        nets = [network_of(space, a) for a in held]
        ms = [s.min_ms for s in measure_latencies([n.build() for n in nets], (1, *nets[0].input_shape), rounds=8,
                                                  min_time_s=3.0)]
        row = []
        for name, t in tables.items():
            e = np.abs(np.array([t.predict(a) for a in held]) / np.array(ms) - 1)
            errs[name].extend(e.tolist())
            row.append(f"{name} median |err| {100 * np.median(e):5.1f}% max {100 * e.max():5.1f}% "
                       f"({secs[name]:.1f} s)")
        print(f"build {b}: " + "; ".join(row))
    for name, e in errs.items():
        print(f"all builds, {name:11s}: median |err| {100 * np.median(e):.1f}%, 90th pct "
              f"{100 * np.percentile(e, 90):.1f}%, within 10%: {np.mean(np.array(e) <= 0.1):.2f}")


if __name__ == "__main__":
    main()
