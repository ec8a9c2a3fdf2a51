"""``profile``: cost of a module (traced) or a spec (analytic); zoo names and architectures: ``nasforge.profile``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nasforge.cost._cost import Cost, analyze
from nasforge.cost._ir import GraphBuilder
from nasforge.errors import NasforgeError


def profile(obj: Any, input_shape: Sequence[int] | None = None, precision: str = "fp32") -> Cost:
    """Cost of ``obj`` per sample, with per-layer rows.

    ``obj`` may be
    - a ``torch.nn.Module``: traced (``input_shape`` without batch, e.g. ``(3, 224, 224)``);
    - anything with ``emit(builder, x) -> x`` (block and network specs): the analytic path, no torch.
    A zoo name or an architecture (``"SPACE:ARCH"``) goes through ``nasforge.profile``, which knows the zoo and
    the spaces (cost sits below both).
    """
    if isinstance(obj, str) or type(obj).__name__ == "Architecture":
        raise NasforgeError(f"nasforge.cost.profile takes a module or a spec, not {obj!r}; "
                            "use nasforge.profile for a zoo name or a SPACE:ARCH architecture")
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
