"""Irregular topologies cost more than their MACs say: NAS-FPN vs a plain FPN vs no neck, same backbone and head.

Usage: ``.venv/bin/python bench/dense_cost.py [--resolution 128] [--channels 32 128] [--seconds 3]``

For each neck width (``channels``): the ``nasfpn`` space's no-neck and plain-FPN baselines, the published NAS-FPN
cells and 3 random cell lists (seeds 0-2), all on the tiny backbone with the same FCOS head. Printed per network:
params, MACs, peak activation memory (fp32, the analytic cost, equal to the traced one), the peak while the neck
and head run (the same memory model over their layers only: the whole network's peak is often the backbone's
stem), the number of layers (IR nodes), and host latency at batch 1 on one thread (``measure_latencies``: the
networks interleaved for at least ``--seconds``, the minimum and median of the timed calls). The last columns
divide MACs, neck memory and latency by the plain FPN's: a latency ratio above the MAC ratio is time the MAC count
does not see (resampling, merges, many small layers, memory traffic).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nasforge.cost._ir import ALIAS_OPS, GraphBuilder, Node
from nasforge.hardware import measure_latencies
from nasforge.spaces import Architecture, get_space


def live_by_step(nodes: list[Node]) -> list[int]:
    """Live elements at each step under the README memory model (``cost._cost.peak_and_total``, step by step)."""
    n = len(nodes)
    buf = list(range(n))
    size = [0] * n
    for i, node in enumerate(nodes):
        if node.op in ALIAS_OPS and node.inputs:
            buf[i] = buf[node.inputs[0]]
        else:
            size[i] = node.out_numel
    last = list(range(n))
    for i, node in enumerate(nodes):
        for j in node.inputs:
            last[buf[j]] = max(last[buf[j]], i)
    for i in range(n):
        last[buf[i]] = max(last[buf[i]], last[i])
    freed = [0] * (n + 1)
    for i in range(n):
        if buf[i] == i:
            freed[last[i] + 1] += size[i]
    live, out = 0, []
    for i in range(n):
        live += size[i] if buf[i] == i else 0
        live -= freed[i]
        out.append(live)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--channels", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    for ch in args.channels:
        opts = {"resolution": args.resolution, "channels": ch, "num_classes": 10}
        nets: list[tuple[str, object, Architecture]] = []
        for neck in ("none", "fpn"):
            sp = get_space("nasfpn", neck=neck, **opts)
            nets.append((f"{neck} (baseline)", sp, sp.named_archs()[neck]))
        cells = get_space("nasfpn", **opts)
        nets.append(("NAS-FPN published", cells, cells.named_archs()["published"]))
        for seed in range(3):
            nets.append((f"random cells seed {seed}", cells, cells.sample(np.random.default_rng(seed))))
        models = [sp.build(a).eval() for _, sp, a in nets]  # type: ignore[attr-defined]
        stats = measure_latencies(models, (1, 3, args.resolution, args.resolution), threads=1,
                                  min_time_s=args.seconds)
        rows = []
        for (label, sp, a), st in zip(nets, stats, strict=True):
            c = sp.cost(a)  # type: ignore[attr-defined]
            g = GraphBuilder(sp.input_shape(a))  # type: ignore[attr-defined]
            sp.network_spec(a).emit(g, 0)  # type: ignore[attr-defined]
            live = live_by_step(g.nodes)
            assert max(live) == c.peak_activations
            neck = max(v for v, nd in zip(live, g.nodes, strict=True) if not nd.name.startswith(("input", "backbone")))
            rows.append((label, str(a), c, len(g.nodes) - 1, st, neck * c.bytes_per_element))
        fpn_c, fpn_st, fpn_neck = rows[1][2], rows[1][4], rows[1][5]
        print(f"\nchannels={ch}, input 3x{args.resolution}x{args.resolution}, tiny backbone, FCOS head "
              f"(2 convs per tower), batch 1, 1 thread")
        print(f"{'network':<22} {'params':>9} {'MMACs':>8} {'peak KiB':>9} {'neck KiB':>9} {'layers':>6} "
              f"{'min ms':>7} {'median ms':>9} {'MACs/FPN':>8} {'neck mem/FPN':>12} {'min ms/FPN':>10}")
        for label, _, c, n, st, neck in rows:
            print(f"{label:<22} {c.params:>9,} {c.macs / 1e6:>8.2f} {c.peak_memory_bytes / 1024:>9.1f} "
                  f"{neck / 1024:>9.1f} {n:>6} {st.min_ms:>7.3f} {st.median_ms:>9.3f} {c.macs / fpn_c.macs:>8.3f} "
                  f"{neck / fpn_neck:>12.3f} {st.min_ms / fpn_st.min_ms:>10.3f}")
        print("arch strings: " + "; ".join(f"{label}: {text}" for label, text, *_ in rows[2:]))
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
