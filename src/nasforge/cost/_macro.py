"""A coarse builder for the fast cost of a cell: whole ops (from cached parts) instead of their layers.

A cell's ``emit2`` drives either a ``GraphBuilder`` (every layer) or this ``MacroBuilder`` (one step per
op, add, concat or zero) through the same calls, so both see the same schedule (``blocks._cells.apply`` turns
an op spec into its ``Part`` and keep-alive peak). ``finish`` returns the
cell's totals with the peak of the README memory model: while an op runs, every buffer alive before and
read after it is alive too, on top of the op's own peak (computed once per op and input shape, with the
op's input freed after its last read inside the op, or held to the end when a later step reads it).
Tests check the result equals the full emission.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from nasforge.cost._cost import Part
from nasforge.cost._ir import Shape, conv_out


class MacroBuilder:
    """Records a cell's schedule at op granularity; handles are buffer-backed values like ``GraphBuilder``'s."""

    def __init__(self, input_shape: Sequence[int]) -> None:
        self.shapes: list[Shape] = []  # per value
        self.buf: list[int] = []  # value -> buffer
        self.size: list[int] = []  # per buffer
        self.born: list[int] = []  # per buffer: the step that writes it
        self.steps: list[tuple[tuple[int, ...], int | None, Part | None, int]] = []  # reads, out buffer, op, keep-peak
        self.params = self.macs = self.other = self.acts = 0
        self.inputs = 0
        self.add("input", [], input_shape)

    # -- the GraphBuilder calls cells make ------------------------------------------------------------
    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        yield

    def shape(self, x: int) -> Shape:
        return self.shapes[x]

    def _value(self, shape: Shape, buf: int) -> int:
        self.shapes.append(shape)
        self.buf.append(buf)
        return len(self.shapes) - 1

    def _new_buffer(self, shape: Shape) -> int:
        self.size.append(math.prod(shape))
        self.born.append(len(self.steps))
        return len(self.size) - 1

    def add(self, op: str, inputs: Sequence[int], out_shape: Sequence[int], name: str | None = None,
            **attrs: Any) -> int:
        """Only the two ops ``_cell_part`` adds itself: a second input, and the keep-alive alias."""
        shape = tuple(int(s) for s in out_shape)
        reads = tuple(self.buf[i] for i in inputs)
        if op == "input":
            b = self._new_buffer(shape)
            self.inputs += self.size[b]
            self.steps.append((reads, b, None, 0))
            return self._value(shape, b)
        if op == "identity":
            self.steps.append((reads, None, None, 0))
            return self._value(shape, reads[0])
        raise ValueError(f"MacroBuilder cannot add op {op!r}")

    def op(self, part: Part, kept: int, x: int) -> int:
        """Run a whole op on ``x``: its totals ``part`` and ``kept``, its peak when its input stays alive to the end."""
        self.params += part.params
        self.macs += part.macs
        self.other += part.other_ops
        self.acts += part.activations
        b = len(self.size)
        self.size.append(math.prod(part.out_shape))
        self.born.append(len(self.steps))
        self.steps.append(((self.buf[x],), b, part, kept))
        return self._value(part.out_shape, b)

    def _combine(self, xs: Sequence[int], shape: Shape, other: int) -> int:
        b = self._new_buffer(shape)
        self.acts += self.size[b]
        self.other += other
        self.steps.append((tuple(self.buf[x] for x in xs), b, None, 0))
        return self._value(shape, b)

    def add_(self, a: int, b: int, name: str | None = None) -> int:
        shape = self.shapes[a]
        return self._combine([a, b], shape, math.prod(shape))

    def mul(self, a: int, b: int, name: str | None = None) -> int:
        """Elementwise (broadcast) product shaped like ``a``, e.g. attention weights (C, 1, 1) on a map."""
        shape = self.shapes[a]
        return self._combine([a, b], shape, math.prod(shape))

    def cat(self, xs: Sequence[int], name: str | None = None) -> int:
        first = self.shapes[xs[0]]
        return self._combine(xs, (sum(self.shapes[x][0] for x in xs), *first[1:]), 0)

    def zero(self, x: int, stride: int = 1, out_channels: int | None = None, name: str | None = None) -> int:
        c, h, w = self.shapes[x]
        ho, wo = (h, w) if stride == 1 else (conv_out(h, 1, stride, 0), conv_out(w, 1, stride, 0))
        return self._combine([x], (out_channels or c, ho, wo), 0)

    # -- the totals ---------------------------------------------------------------------------------
    def finish(self, out: int) -> Part:
        n = len(self.steps)
        last = list(self.born)
        for t, (reads, _, _, _) in enumerate(self.steps):
            for b in reads:
                if last[b] < t:
                    last[b] = t
        # across[t]: buffers written before step t and read after it (alive through the whole step)
        diff = [0] * (n + 1)
        for b, sz in enumerate(self.size):
            if last[b] > self.born[b] + 1:
                diff[self.born[b] + 1] += sz
                diff[last[b]] -= sz
        peak = across = 0
        for t, (reads, ob, part, kept) in enumerate(self.steps):
            across += diff[t]
            rs = set(reads)
            held = sum(self.size[b] for b in rs if last[b] > t)  # inputs read again later: in ``across``
            ext = across - held
            if part is not None:
                live = ext + (kept if held else part.peak)
            else:
                live = ext + sum(self.size[b] for b in rs) + (self.size[ob] if ob is not None else 0)
            if live > peak:
                peak = live
        return Part(self.params, self.macs, self.other, self.acts, peak, self.shapes[0], self.shapes[out])

