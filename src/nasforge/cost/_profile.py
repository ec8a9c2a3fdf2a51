"""``profile``: cost of a module (traced) or a spec (analytic); zoo names and architectures: ``nasforge.profile``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nasforge.cost._cost import Cost, analyze
from nasforge.cost._ir import GraphBuilder
from nasforge.errors import NasforgeError


def sample_rank(module: Any) -> int | None:
    """How many dimensions one sample of ``module``'s input has, from its first layer that says (``...1d``: 2,
    ``...2d``: 3, ``...3d``: 4, as Conv2d or BatchNorm3d do); None when no layer says."""
    for m in module.modules():
        name = type(m).__name__
        for suffix, rank in (("1d", 2), ("2d", 3), ("3d", 4)):
            if name.endswith(suffix):
                return rank
    return None


def per_sample_shape(input_shape: Any, rank: int | None = 3) -> tuple[int, ...] | None:
    """The input shape without batch. ``input_shape`` is one sample's shape (``(C, H, W)`` for ``rank`` 3), the
    same with a batch in front (``(1, C, H, W)``, as torchinfo takes it), or a sample tensor (batch first); a
    batch above 1 is an error: costs are per sample. With ``rank`` None only a tensor has a batch."""
    if input_shape is None:
        return None
    shape = getattr(input_shape, "shape", input_shape)  # a tensor or an array: its shape
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise NasforgeError(f"input_shape {input_shape!r} is not a shape; expected (C, H, W), (1, C, H, W) "
                            "or a sample tensor") from None
    tensor = shape is not input_shape  # a sample tensor is batch first, as the module takes it
    if tensor and rank is not None and len(dims) == rank:
        raise NasforgeError(f"a sample tensor is batch first, (1, C, H, W); got shape {dims}: pass x.unsqueeze(0)")
    if (tensor or (rank is not None and len(dims) == rank + 1)) and len(dims) >= 2:
        if dims[0] != 1:
            rest = ", ".join(map(str, dims[1:]))
            what = f"sample tensor of shape {dims}" if tensor else f"input shape {dims}"
            raise NasforgeError(f"{what} has batch {dims[0]}; costs are per sample (batch 1): pass (1, {rest}) "
                                f"or ({rest})" + (" (a tensor: x[:1])" if tensor else ""))
        dims = dims[1:]
    if not dims or min(dims) <= 0:
        raise NasforgeError(f"input shape {dims} must be positive sizes, e.g. (3, 224, 224)")
    return dims


def profile(obj: Any, input_shape: Sequence[int] | Any | None = None, precision: str = "fp32") -> Cost:
    """Cost of ``obj`` per sample, with per-layer rows.

    ``input_shape``: one sample's shape (``(C, H, W)``), the same with batch 1 in front (how many dimensions a
    sample has comes from the module's layers: Conv3d takes (C, D, H, W)), or a sample tensor (batch first).
    ``obj`` may be
    - a ``torch.nn.Module``: traced;
    - anything with ``emit(builder, x) -> x`` (block and network specs): the analytic path, no torch.
    A zoo name or an architecture (``"SPACE:ARCH"``) goes through ``nasforge.profile``, which knows the zoo and
    the spaces (cost sits below both).
    """
    if isinstance(obj, str) or type(obj).__name__ == "Architecture":
        raise NasforgeError(f"nasforge.cost.profile takes a module or a spec, not {obj!r}; "
                            "use nasforge.profile for a zoo name or a SPACE:ARCH architecture")
    if hasattr(obj, "emit"):
        own = getattr(obj, "input_shape", None)
        input_shape = per_sample_shape(input_shape, len(own) if own is not None else 3)
        if input_shape is None:
            input_shape = getattr(obj, "input_shape", None)
        if input_shape is None:
            raise NasforgeError("profile needs input_shape for this spec")
        g = GraphBuilder(input_shape)
        obj.emit(g, 0)
        return analyze(g.nodes, precision)
    input_shape = per_sample_shape(input_shape, sample_rank(obj) if hasattr(obj, "modules") else None)
    if input_shape is None:
        raise NasforgeError("profile(module) needs input_shape, e.g. (3, 224, 224)")
    from nasforge.cost._trace import trace

    return analyze(trace(obj, input_shape), precision)
