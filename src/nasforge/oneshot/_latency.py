"""Latency tables of a supernet (``[units, choices]`` in ms, batch 1, plus a base for everything outside the
choice blocks): measured on the host (``measure_choice_latency``, fitted to whole networks by
``calibrate_table``) or priced from a ``nasforge.hardware.LatencyTable`` (``table_from_lut``); and what a
table says of a path (``path_latency``), of the supernet's distribution (``expected_latency``) and of the
space (``latency_range``)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nasforge.errors import NasforgeError
from nasforge.oneshot._supernet import Supernet
from nasforge.spaces import Architecture


def expected_latency(net: Supernet, table: Tensor, base_ms: float = 0.0) -> Tensor:
    """E[lat] = base + sum over units of sum_i p_i * LUT(unit, i) (differentiable in alpha)."""
    p = net.probs()
    return base_ms + (p * table.to(p.device)).sum()


def path_latency(net: Supernet, table: Tensor, arch: Architecture, base_ms: float = 0.0) -> float:
    """The table's latency of one architecture: base + its candidate's entry in every unit."""
    return base_ms + float(sum(float(table[k, c]) for k, c in enumerate(net.choices_of(arch))))


def latency_range(table: Tensor, sizes: Sequence[int], base_ms: float = 0.0) -> tuple[float, float]:
    """(smallest, largest) latency any path can have: base + sum of per-unit minima (maxima)."""
    lo = base_ms + sum(float(table[k, :n].min()) for k, n in enumerate(sizes))
    hi = base_ms + sum(float(table[k, :n].max()) for k, n in enumerate(sizes))
    return lo, hi


def block_inputs(net: Supernet, input_shape: Sequence[int]) -> dict[int, tuple[int, ...]]:
    """The input shape (batch 1) every choice block sees, from one forward pass on a path where every
    unit runs a non-zero candidate (so every block is called)."""
    shapes: dict[int, tuple[int, ...]] = {}
    hooks = [blk.register_forward_pre_hook(lambda m, inp: shapes.__setitem__(id(m), tuple(inp[0].shape)))
             for group in net.groups for blk in group]
    dev = net.alpha.device
    was = net.training
    net.eval()
    net.set_single([next(i for i, z in enumerate(g[0].is_zero) if not z) for g in net.groups])
    try:
        with torch.no_grad():
            net(torch.zeros(1, *input_shape, device=dev))
    finally:
        for h in hooks:
            h.remove()
        net.train(was)
    return shapes


def measure_choice_latency(net: Supernet, input_shape: Sequence[int], repeats: int = 10, warmup: int = 2,
                           calibrate: int = 24, seed: int = 0, rounds: int = 5, threads: int = 1,
                           min_time_s: float = 3.0, max_fit_err: float = 0.05, attempts: int = 3,
                           info: dict[str, Any] | None = None) -> tuple[Tensor, float]:
    """Host-measured latency table (ms, batch 1): each candidate of every choice block timed on the input shape
    it sees and summed per (unit, choice), plus the base (everything but the choice blocks: the stand-alone
    network of the cheapest path minus that path's entries, clamped at 0).

    Timings interleave all modules over at least ``rounds`` rounds lasting at least ``min_time_s`` and keep the
    minimum (``hardware.measure_latencies``): on a shared host a single burst can be 2x off. Ops timed one by
    one still miss what running them inside a network costs (per-layer overhead, caches), so with
    ``calibrate > 0`` the table is then fitted to that many random whole stand-alone networks plus the cheapest
    and dearest path (``calibrate_table``). A slow spell of the host during the measurement shows as a poor fit,
    so while the fit's mean relative error exceeds ``max_fit_err`` the whole table is measured again, up to
    ``attempts`` times in all, keeping the best fit. ``info``, when given, receives the fit's figures.
    """
    if calibrate <= 0:
        table = _op_table(net, input_shape, repeats, warmup, rounds, threads, min_time_s)
        return table, _base_of_cheapest(net, table, input_shape, repeats, warmup, rounds, threads, min_time_s)
    fits: list[tuple[float, Tensor, float, dict[str, Any]]] = []
    for _ in range(max(1, attempts)):
        table = _op_table(net, input_shape, repeats, warmup, rounds, threads, min_time_s)
        fit: dict[str, Any] = {}
        t, base = calibrate_table(net, table, 0.0, input_shape, calibrate, seed, repeats, warmup, rounds, threads,
                                  fit, min_time_s)
        fits.append((fit["calibration_mean_rel_err"], t, base, fit))
        if fit["calibration_mean_rel_err"] <= max_fit_err:
            break
    _, t, base, fit = min(fits, key=lambda f: f[0])  # the best fit (the first of equals)
    if info is not None:
        info.update(fit, calibration_attempts=len(fits))
    return t, base


def _op_table(net: Supernet, input_shape: Sequence[int], repeats: int, warmup: int, rounds: int, threads: int,
              min_time_s: float) -> Tensor:
    """Every non-zero candidate timed (interleaved, minimum) on the input its block sees, summed per unit."""
    from nasforge.hardware import measure_latencies

    shapes = block_inputs(net, input_shape)
    table = torch.zeros(len(net.groups), max(net.unit_sizes()))
    ops: dict[tuple[int, int, tuple[int, ...]], torch.nn.Module] = {}
    for k, group in enumerate(net.groups):
        for blk in group:
            for i, op in enumerate(blk.ops):
                if not blk.is_zero[i]:
                    ops.setdefault((k, i, shapes[id(blk)]), op)
    keys = list(ops)
    stats = measure_latencies([ops[key] for key in keys], [key[2] for key in keys], str(net.alpha.device), threads,
                              warmup, repeats, rounds, min_time_s=min_time_s)
    ms = {key: st.min_ms for key, st in zip(keys, stats, strict=True)}
    for k, group in enumerate(net.groups):
        for blk in group:
            for i in range(len(blk.ops)):
                if not blk.is_zero[i]:
                    table[k, i] += ms[(k, i, shapes[id(blk)])]
    return table


def _base_of_cheapest(net: Supernet, table: Tensor, input_shape: Sequence[int], repeats: int, warmup: int,
                      rounds: int, threads: int, min_time_s: float) -> float:
    """The stand-alone network of the cheapest path, measured, minus that path's table entries (>= 0)."""
    from nasforge.hardware import measure_latencies

    cheap = [int(table[k, :n].argmin()) for k, n in enumerate(net.unit_sizes())]
    std = net.to_standalone(net.arch_of(cheap))
    (whole,) = measure_latencies([std], (1, *input_shape), str(net.alpha.device), threads, warmup, repeats, rounds,
                                 min_time_s=min_time_s)
    return max(0.0, whole.min_ms - sum(float(table[k, c]) for k, c in enumerate(cheap)))


def calibrate_table(net: Supernet, table: Tensor, base: float, input_shape: Sequence[int], n: int = 24,
                    seed: int = 0, repeats: int = 10, warmup: int = 2, rounds: int = 5, threads: int = 1,
                    info: dict[str, Any] | None = None, min_time_s: float = 3.0) -> tuple[Tensor, float]:
    """Fit a per-op latency table to measured whole stand-alone networks, ``measured ~ a * predicted + b``
    (least squares over ``n`` random paths plus the cheapest and dearest), measured interleaved.

    ``info`` receives ``calibration_networks``, the slope and offset, and the fit's mean and largest relative
    error on those networks (``calibration_mean_rel_err``, ``calibration_max_rel_err``).
    """
    from nasforge.hardware import measure_latencies

    rng = np.random.default_rng(seed)
    sizes = net.unit_sizes()
    archs = [net.sample(rng) for _ in range(n)]
    # the extremes spread the fit; supernets whose archs are derived, not chosen per unit, have none
    with contextlib.suppress(NasforgeError):
        for pick in (torch.argmin, torch.argmax):
            archs.append(net.arch_of([int(pick(table[k, :m])) for k, m in enumerate(sizes)]))
    nets = [net.to_standalone(a) for a in archs]
    stats = measure_latencies(nets, (1, *input_shape), str(net.alpha.device), threads, warmup, repeats, rounds,
                              min_time_s=min_time_s)
    m_arr = np.asarray([st.min_ms for st in stats], dtype=float)
    p_arr = np.asarray([path_latency(net, table, a, base) for a in archs], dtype=float)
    a, b = np.polyfit(p_arr, m_arr, 1) if np.ptp(p_arr) > 0 else (0.0, 0.0)
    # the offset goes into the base (it may turn negative: only whole-path sums are latencies); if that would
    # price some path at <= 0, or there is no usable slope, fall back to a plain ratio
    lo = latency_range(table, sizes, base)[0]
    if not a > 0 or float(a) * lo + float(b) <= 0:
        a, b = float(m_arr.mean() / max(float(p_arr.mean()), 1e-9)), 0.0
    rel = (float(a) * p_arr + float(b)) / m_arr - 1
    if info is not None:
        info.update(calibration_networks=len(archs), calibration_slope=float(a), calibration_offset_ms=float(b),
                    calibration_mean_rel_err=float(np.abs(rel).mean()),
                    calibration_max_rel_err=float(np.abs(rel).max()))
    return table * float(a), float(a) * base + float(b)


def table_from_lut(net: Supernet, lut: Any, input_shape: Sequence[int]) -> tuple[Tensor, float]:
    """A latency table from a ``nasforge.hardware.LatencyTable``: every candidate's spec priced on the input
    shape its block sees (``lut.op_latency``); zero and identity candidates cost 0. The base is the
    table's constant plus the blocks outside the choice blocks of the network of the derived arch.
    """
    shapes = block_inputs(net, input_shape)
    table = torch.zeros(len(net.groups), max(net.unit_sizes()))
    for k, group in enumerate(net.groups):
        for blk in group:
            for i, spec in enumerate(blk.specs):
                if spec is not None and type(spec).__name__ != "Identity":
                    table[k, i] += float(lut.op_latency(spec, shapes[id(blk)][1:]))
    base = float(lut.constant_ms)
    arch = net.derive()
    try:
        whole = float(lut.bind(net.space).predict(arch))
    except (NasforgeError, AttributeError):  # the table cannot price the whole network: its constant only
        return table, base
    return table, max(0.0, whole - path_latency(net, table, arch))
