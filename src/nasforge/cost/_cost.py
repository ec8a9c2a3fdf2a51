"""Totals of an IR: params, MACs, other ops, activation memory and peak memory under in-order execution.

Memory model (documented in the README):
- A *buffer* is a tensor an inference engine materialises. Batch norm, activations, dropout, identity and
  views (flatten/reshape) are fused or run in place, so their output shares their input's buffer.
  Every other op (conv, linear, pooling, add, mul, concat, channel shuffle, zero) writes a new buffer.
- ``activations`` is the number of elements over all buffers, the input included.
- A buffer is alive from the step that writes it to the last step that reads it (or any alias of it).
  ``peak_activations`` is the largest total of live buffers at any step. While an op runs, its inputs and
  its output are alive together, and so is every tensor kept for a later add/concat (residuals).
- Bytes = elements x bytes per element of the precision (fp32 = 4, int8 = 1). ``weight_bytes`` is
  params x bytes per element (batch norm folded or not, its 2 params per channel are counted).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from nasforge.cost._ir import ALIAS_OPS, Node, Shape
from nasforge.cost._rules import RULES, OpCost
from nasforge.errors import NasforgeError

BYTES_PER_ELEMENT: dict[str, int] = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}


def bytes_per_element(precision: str) -> int:
    try:
        return BYTES_PER_ELEMENT[precision]
    except KeyError:
        raise NasforgeError(
            f"unknown precision {precision!r}; allowed: {', '.join(BYTES_PER_ELEMENT)}"
        ) from None


@dataclass(frozen=True, slots=True)
class LayerCost:
    """One row of the per-layer table."""

    name: str
    op: str
    in_shape: Shape
    out_shape: Shape
    params: int
    macs: int
    other_ops: int
    live_activations: int = 0  # elements alive while this layer runs (inputs, output, kept tensors): the peak's row

    def live_bytes(self, precision: str = "fp32") -> int:
        return self.live_activations * bytes_per_element(precision)


@dataclass(frozen=True, slots=True)
class Cost:
    """What a network costs per sample (batch 1). Element counts are precision-free; bytes use ``precision``."""

    params: int
    macs: int
    other_ops: int
    activations: int
    peak_activations: int
    input_shape: Shape
    output_shape: Shape
    precision: str = "fp32"
    layers: tuple[LayerCost, ...] = ()
    unknown_ops: tuple[str, ...] = ()

    @property
    def bytes_per_element(self) -> int:
        return bytes_per_element(self.precision)

    @property
    def peak_memory_bytes(self) -> int:
        return self.peak_activations * self.bytes_per_element

    @property
    def activation_bytes(self) -> int:
        return self.activations * self.bytes_per_element

    @property
    def weight_bytes(self) -> int:
        return self.params * self.bytes_per_element

    def at(self, precision: str) -> Cost:
        """The same cost counted at another precision."""
        bytes_per_element(precision)
        return replace(self, precision=precision)

    def to_dict(self, layers: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "params": self.params,
            "macs": self.macs,
            "other_ops": self.other_ops,
            "activations": self.activations,
            "peak_activations": self.peak_activations,
            "peak_memory_bytes": self.peak_memory_bytes,
            "activation_bytes": self.activation_bytes,
            "weight_bytes": self.weight_bytes,
            "precision": self.precision,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "unknown_ops": list(self.unknown_ops),
        }
        if layers:
            d["layers"] = [
                {**asdict(lc), "in_shape": list(lc.in_shape), "out_shape": list(lc.out_shape),
                 "live_bytes": lc.live_bytes(self.precision)}
                for lc in self.layers
            ]
        return d


_warned: set[str] = set()


def _op_cost(node: Node, unknown: list[str]) -> OpCost:
    rule = RULES.get(node.op)
    if rule is None:
        if node.op not in unknown:
            unknown.append(node.op)
        if node.op not in _warned:
            _warned.add(node.op)
            warnings.warn(f"nasforge: no cost rule for op {node.op!r}; counted as zero", stacklevel=3)
        return OpCost(0, 0, 0)
    return rule(node)


def live_and_total(nodes: Sequence[Node]) -> tuple[list[int], int]:
    """(live elements at each step, total elements over all buffers) under in-order execution; see module doc."""
    n = len(nodes)
    buf = list(range(n))
    size = [0] * n
    for i, node in enumerate(nodes):
        if node.op in ALIAS_OPS and node.inputs:
            buf[i] = buf[node.inputs[0]]
        else:
            size[i] = node.out_numel
    last = list(range(n))  # a buffer read by nobody dies at the step that wrote it (the output survives)
    for i, node in enumerate(nodes):
        for j in node.inputs:
            b = buf[j]
            if last[b] < i:
                last[b] = i
    for i in range(n):  # an alias extends the life of its buffer to the alias's own last use
        b = buf[i]
        if b != i and last[b] < last[i]:
            last[b] = last[i]
    freed = [0] * (n + 1)
    total = 0
    for i in range(n):
        if buf[i] == i:
            total += size[i]
            freed[last[i] + 1] += size[i]
    live = 0
    per_step = [0] * n
    for i in range(n):
        live += size[i] if buf[i] == i else 0
        live -= freed[i]
        per_step[i] = live
    return per_step, total


def analyze(nodes: Sequence[Node], precision: str = "fp32", with_layers: bool = True) -> Cost:
    """Reduce an IR to its totals with the rule table."""
    bytes_per_element(precision)
    if not nodes:
        raise NasforgeError("cannot cost an empty graph")
    params = macs = other = 0
    unknown: list[str] = []
    layers: list[LayerCost] = []
    live, total = live_and_total(nodes)
    for i, node in enumerate(nodes):
        c = _op_cost(node, unknown)
        params += c.params
        macs += c.macs
        other += c.other_ops
        if with_layers and node.op != "input":
            layers.append(LayerCost(node.name, node.op, node.in_shapes[0] if node.in_shapes else (),
                                    node.out_shape, c.params, c.macs, c.other_ops, live[i]))
    peak = max(live, default=0)
    return Cost(params, macs, other, total, peak, nodes[0].out_shape, nodes[-1].out_shape, precision,
                tuple(layers), tuple(unknown))


@dataclass(frozen=True, slots=True)
class Part:
    """Totals of one sequential piece (a block) whose input is the previous piece's output.

    ``activations`` excludes the input buffer (it belongs to the previous piece); ``peak`` includes it.
    Search spaces cache a ``Part`` per distinct (block spec, input shape), then chain them: this is the
    fast analytic path (microseconds per architecture).
    """

    params: int
    macs: int
    other_ops: int
    activations: int
    peak: int
    in_shape: Shape
    out_shape: Shape

    @staticmethod
    def of(nodes: Sequence[Node]) -> Part:
        c = analyze(nodes, with_layers=False)
        return Part(c.params, c.macs, c.other_ops, c.activations - nodes[0].out_numel, c.peak_activations,
                    nodes[0].out_shape, nodes[-1].out_shape)


def chain(parts: Sequence[Part], precision: str = "fp32") -> Cost:
    """Cost of pieces run one after another (only the boundary tensor is alive between them)."""
    if not parts:
        raise NasforgeError("cannot cost an empty chain")
    first = parts[0].in_shape
    total = 1
    for s in first:
        total *= s
    params = macs = other = 0
    peak = 0
    for p in parts:
        params += p.params
        macs += p.macs
        other += p.other_ops
        total += p.activations
        if p.peak > peak:
            peak = p.peak
    return Cost(params, macs, other, total, peak, first, parts[-1].out_shape, precision)
