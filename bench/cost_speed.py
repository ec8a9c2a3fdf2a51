"""Cost of one MobileNetV2-sized architecture: analytic (cached fast path, cold, per-layer) vs tracing vs torchprofile.

Architectures vary: MobileNetV2's layout (17 inverted residuals) with a random kernel {3,5,7} and expand ratio
{3,4,6} per block (the first block keeps expand 1), at 224x224, 1000 classes. Every timing builds the
architecture's ``NetworkSpec`` from its choices first, as a search space does.

- analytic warm: ``NetworkSpec.cost()`` (per-block ``Part`` cache, ``part_of``) on fresh random archs after the
  cache has seen the block choices (in a search, blocks repeat across candidates);
- analytic cold: the same with the per-block cache cleared before every arch;
- analytic per-layer: ``cost(layers=True)``, the full IR with per-layer rows, no cache;
- traced: ``nasforge.profile(module)`` on the built module (build time reported apart);
- torchprofile: ``profile_macs(module, x)`` on the same module (if installed).

All in one process, one thread; ratios are against analytic warm. Times are CPU seconds of this process
(``time.process_time``), which a busy shared machine inflates far less than wall time; wall time is printed too.

    .venv/bin/python bench/cost_speed.py [--archs 2000] [--traced 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch

from nasforge.blocks import ConvBNAct, InvertedResidual, NetworkSpec
from nasforge.blocks._spec import Flatten, GlobalPool, Linear, part_of
from nasforge.cost import profile

# MobileNetV2: (expand, channels, blocks, stride) per stage
MBV2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
KERNELS, EXPANDS = (3, 5, 7), (3, 4, 6)


def random_choices(rng: np.random.Generator) -> list[tuple[int, int]]:
    n = sum(b for _, _, b, _ in MBV2)
    return [(int(rng.choice(KERNELS)), int(rng.choice(EXPANDS))) for _ in range(n)]


def network(choices: list[tuple[int, int]]) -> NetworkSpec:
    stages, cin, i = [], 32, 0
    for t, c, n, s in MBV2:
        blocks = []
        for b in range(n):
            k, e = choices[i]
            i += 1
            blocks.append(InvertedResidual(cin, c, s if b == 0 else 1, 1 if t == 1 else e, k))
            cin = c
        stages.append(tuple(blocks))
    return NetworkSpec("mbv2-random", (3, 224, 224), (ConvBNAct(3, 32, 3, 2, act="relu6"),), tuple(stages),
                       (ConvBNAct(320, 1280, 1, act="relu6"), GlobalPool(), Flatten(), Linear(1280, 1000)))


Clock = tuple[float, float]  # (CPU seconds, wall seconds)


def now() -> Clock:
    return (time.process_time(), time.perf_counter())


def since(t0: Clock, n: int = 1) -> Clock:
    t1 = now()
    return ((t1[0] - t0[0]) / n, (t1[1] - t0[1]) / n)


def per_arch(fn: Callable[[list[tuple[int, int]]], object], archs: list[list[tuple[int, int]]]) -> Clock:
    t0 = now()
    for a in archs:
        fn(a)
    return since(t0, len(archs))


def add(a: Clock, b: Clock) -> Clock:
    return (a[0] + b[0], a[1] + b[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=2000, help="random archs for the analytic timings")
    ap.add_argument("--traced", type=int, default=3, help="random archs for tracing and torchprofile")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)

    warmup = [random_choices(rng) for _ in range(500)]
    for a in warmup:  # fill the per-block cache with the block choices
        network(a).cost()
    archs = [random_choices(rng) for _ in range(args.archs)]
    distinct = len({tuple(a) for a in archs})
    warm = per_arch(lambda a: network(a).cost(), archs)

    def cold_cost(a: list[tuple[int, int]]) -> object:
        part_of.cache_clear()
        return network(a).cost()

    few = archs[: max(1, args.archs // 10)]
    cold = per_arch(cold_cost, few)
    layers = per_arch(lambda a: network(a).cost(layers=True), few)

    rows: list[tuple[str, Clock]] = [("analytic warm (cached blocks)", warm), ("analytic cold (cache cleared)", cold),
                                     ("analytic per-layer (no cache)", layers)]
    build_s = trace_s = tp_s = (0.0, 0.0)
    checked = []
    try:
        import torchprofile
    except ImportError:
        torchprofile = None
    for a in archs[: args.traced]:
        spec = network(a)
        t0 = now()
        m = spec.build().eval()
        build_s = add(build_s, since(t0))
        t1 = now()
        c = profile(m, spec.input_shape)
        trace_s = add(trace_s, since(t1))
        ours = spec.cost()
        checked.append(c.macs == ours.macs and c.params == ours.params and c.peak_activations == ours.peak_activations)
        if torchprofile is not None:
            x = torch.randn(1, *spec.input_shape)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t3 = now()
                theirs = torchprofile.profile_macs(m, x)
                tp_s = add(tp_s, since(t3))
            extra = sum(math.prod(r.out_shape) for r in c.layers if r.op in ("batchnorm", "adaptive_avgpool"))
            checked.append(theirs == c.macs + extra)
    n = args.traced
    rows += [("traced (nasforge.profile, module built)", (trace_s[0] / n, trace_s[1] / n)),
             ("  building the module (apart)", (build_s[0] / n, build_s[1] / n))]
    if torchprofile is not None:
        rows.append(("torchprofile.profile_macs", (tp_s[0] / n, tp_s[1] / n)))

    print(f"MobileNetV2-sized random archs at 224x224 (17 blocks, kernel {KERNELS}, expand {EXPANDS}); "
          f"{len(archs)} analytic archs ({distinct} distinct), {n} traced; torch threads 1")
    print(f"{'path':42s} {'CPU/arch':>12s} {'x analytic warm':>16s} {'wall/arch':>12s}")
    for name, (cpu, wall) in rows:
        print(f"{name:42s} {cpu * 1e6:10.1f}us {cpu / warm[0]:16.1f} {wall * 1e6:10.1f}us")
    print(f"analytic == traced (params, MACs, peak) and torchprofile == ours + BN/avgpool outputs: {all(checked)}")
    ratio = tp_s[0] / n / warm[0] if torchprofile is not None else float("nan")
    print(f"target: analytic warm < 100 us CPU: {warm[0] * 1e6 < 100}; torchprofile / analytic warm >= 1000: "
          f"{ratio >= 1000} ({ratio:.0f}x)")


if __name__ == "__main__":
    main()
