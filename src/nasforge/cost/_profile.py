"""``profile``: one entry point for anything that has a cost (a module, a block/network spec, an IR)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nasforge.cost._cost import Cost, analyze
from nasforge.cost._ir import GraphBuilder
from nasforge.errors import NasforgeError


def profile(obj: Any, input_shape: Sequence[int] | None = None, precision: str = "fp32") -> Cost:
    """Cost of ``obj`` per sample.

    ``obj`` may be a ``torch.nn.Module`` (traced; ``input_shape`` without batch, e.g. ``(3, 224, 224)``),
    or anything with ``emit(builder, x) -> x`` (block and network specs: the analytic path, no torch).
    """
    if hasattr(obj, "emit"):
        if input_shape is None:
            input_shape = getattr(obj, "input_shape", None)
        if input_shape is None:
            raise NasforgeError("profile needs input_shape for this spec")
        g = GraphBuilder(input_shape)
        obj.emit(g, 0)
        return analyze(g.nodes, precision)
    if input_shape is None:
        raise NasforgeError("profile(module) needs input_shape, e.g. (3, 224, 224)")
    from nasforge.cost._trace import trace

    return analyze(trace(obj, input_shape), precision)
