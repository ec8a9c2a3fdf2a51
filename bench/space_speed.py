"""Sample + mutate + analytic cost per architecture for every registered space (archs/s, one core).

Usage: ``.venv/bin/python bench/space_speed.py [--seconds 2] [--warmup 20000]``

For each space: the rate of ``cost(mutate(sample()))`` over the first 2,000 architectures (cold caches)
and again after ``--warmup`` more (warm caches: the steady state of a long search), the rate of
``sample`` alone, and, where the space exposes its network spec,
the rate of the uncached per-layer analysis of the same architectures (the baseline the caches beat).
Target: > 10,000 archs/s for nb201 and mobilenet. CPU time (``time.process_time``) is measured, so a
busy machine distorts the figures less than wall time would.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.spaces import SearchSpace, get_space, list_spaces

REPO = Path(__file__).resolve().parents[1]
OPTIONS: dict[str, dict[str, Any]] = {"config": {"path": str(REPO / "examples" / "spaces" / "tiny_mcu.yaml")}}


def rate(fn: Callable[[], object], seconds: float, at_most: int | None = None) -> float:
    """Calls per CPU second of ``fn`` over about ``seconds`` (or ``at_most`` calls)."""
    n = 0
    t0 = time.process_time()
    while True:
        for _ in range(100):
            fn()
        n += 100
        dt = time.process_time() - t0
        if dt >= seconds or (at_most is not None and n >= at_most):
            return n / dt


def full_analysis(sp: SearchSpace) -> Callable[[Any], object] | None:
    """The uncached per-layer cost of an architecture, when the space exposes its ``NetworkSpec``."""
    if type(sp).network_spec is SearchSpace.network_spec:
        return None
    return lambda a: sp.network_spec(a).cost(layers=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--warmup", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"{'space':<10} {'size':>12} {'cold/s':>9} {'warm/s':>9} {'sample/s':>9} {'full-IR/s':>10} {'cached x':>9}")
    for name in list_spaces():
        sp = get_space(name, **OPTIONS.get(name, {}))
        rng = np.random.default_rng(args.seed)

        def step(sp: SearchSpace = sp, rng: np.random.Generator = rng) -> object:
            return sp.cost(sp.mutate(sp.sample(rng), rng))

        cold = rate(step, args.seconds, at_most=2000)
        t0 = time.process_time()
        for i in range(args.warmup):  # at most --warmup archs or 5 CPU seconds (slow spaces stay cold)
            step()
            if i % 100 == 0 and time.process_time() - t0 > 5:
                break
        warm = rate(step, args.seconds)
        samp = rate(lambda sp=sp, rng=rng: sp.sample(rng), args.seconds / 2)
        full = full_analysis(sp)
        base = "-"
        ratio = "-"
        if full is not None:
            archs = [sp.sample(rng) for _ in range(200)]
            it = iter(archs * 1000)
            b = rate(lambda full=full, it=it: full(next(it)), args.seconds / 2)
            base, ratio = f"{b:,.0f}", f"{warm / b:.0f}x"
        size = sp.size()
        size_s = f"{size:,}" if size < 10**12 else f"{float(size):.2e}"
        print(f"{name:<10} {size_s:>12} {cold:>9,.0f} {warm:>9,.0f} {samp:>9,.0f} {base:>10} {ratio:>9}", flush=True)


if __name__ == "__main__":
    main()
