"""``nasforge.profile``: the cost of anything that has one (a module, a spec, a zoo name, an architecture).

The convenience sits at the top of the package because it needs the zoo and the spaces; ``nasforge.cost.profile``
(modules and specs only) stays below both.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from nasforge.cost import Cost
from nasforge.cost import profile as profile_module
from nasforge.cost._profile import per_sample_shape


def _resolution(input_shape: Sequence[int] | None) -> int | None:
    return None if input_shape is None else int(input_shape[-1])


def profile(obj: Any, input_shape: Sequence[int] | Any | None = None, precision: str = "fp32",
            trace: bool = False) -> Cost:
    """Cost of ``obj`` per sample, with per-layer rows (each with its live activation memory).

    ``input_shape``: ``(C, H, W)``, batched ``(1, C, H, W)`` as torchinfo takes it, or a sample tensor (batch
    first); a batch above 1 is an error (costs are per sample). ``obj`` may be
    - a ``torch.nn.Module``: traced;
    - anything with ``emit(builder, x) -> x`` (block and network specs): the analytic path, no torch;
    - a zoo model name (``"mobilenet_v2"``, 1000 classes; the resolution is ``input_shape[-1]``, default 224);
    - an ``Architecture`` or a ``"SPACE:ARCH"`` string: the space's analytic cost (at ``input_shape[-1]`` if
      given; space options at their defaults), per-layer rows from its network spec, no torch; with
      ``trace=True`` (or a space without specs) the rows are traced from ``build(arch)``.
    """
    input_shape = per_sample_shape(input_shape)

    if isinstance(obj, str) and ":" not in obj:
        from nasforge import zoo

        spec = zoo.create(obj, 1000, _resolution(input_shape) or 224)
        return spec.cost(precision, layers=True)
    from nasforge.spaces import Architecture  # here, not above: a zoo name needs no space (nor numpy)

    if isinstance(obj, str | Architecture):
        return _profile_arch(obj, _resolution(input_shape), precision, trace)
    return profile_module(obj, input_shape, precision)


def _profile_arch(arch: Any, resolution: int | None, precision: str, trace: bool) -> Cost:
    from nasforge.cost._cost import analyze
    from nasforge.spaces import get_space
    from nasforge.spaces._base import parse_arch

    if isinstance(arch, str):
        arch = parse_arch(arch)
    space = get_space(arch.space)
    shape = tuple(space.input_shape(arch))
    if resolution is not None:
        shape = (*shape[:-2], resolution, resolution)
    totals = space.cost(arch, resolution, precision)
    if not trace:
        try:
            spec = space.network_spec(arch, resolution)
        except NotImplementedError:
            pass
        else:
            rows = spec.cost(precision, layers=True)
            return replace(totals, layers=rows.layers, unknown_ops=rows.unknown_ops)
    from nasforge.cost._trace import trace as trace_module  # imports torch

    traced = analyze(trace_module(space.build(arch), shape), precision)
    keys = ("params", "macs", "activations", "peak_activations")
    diff = [f"{k} {getattr(totals, k)} vs {getattr(traced, k)}" for k in keys
            if getattr(totals, k) != getattr(traced, k)]
    if diff:  # the space breaks its contract (analytic cost == traced cost of the built module)
        warnings.warn(f"nasforge: analytic and traced cost of {arch!r} differ: {', '.join(diff)}", stacklevel=3)
    return replace(totals, layers=traced.layers, unknown_ops=traced.unknown_ops)
