"""``config``: a fixed-topology space defined by a YAML file, no Python needed.

``get_space("config", path="my_space.yaml")``. The file (see ``examples/spaces/tiny_mcu.yaml``)::

    input: {channels: 1, resolutions: [32, 40]}   # resolutions are a decision
    num_classes: 10
    widths: [0.5, 1.0]                            # width multiplier decision (optional, default [1.0])
    act: relu6                                    # optional (default relu6)
    divisor: 8                                    # channel rounding (optional, default 8)
    stem: {channels: 16, stride: 2}
    stages:
      - {block: inverted_residual, channels: 24, stride: 2, depth: [1, 2], kernel: [3, 5], expand: [3, 6]}
      - {block: conv_bn_act, channels: 32, stride: 2, depth: [1], kernel: [3]}
      - {block: basic, channels: 48, stride: 1, depth: [1, 2]}
    head: {channels: 64}                          # 1x1 conv before pooling; 0 = none; scale: true
                                                  # scales it with every width (MCUNet), not only above 1

Block types and their per-block choice lists: ``inverted_residual`` (kernel, expand), ``conv_bn_act``
(kernel), ``basic`` (none: the ResNet basic block). Validation is strict: an unknown key, a bad type, an
empty choice list or an impossible shape is one ``NasforgeError`` line naming the key and what is allowed.
The space behaves exactly like ``mobilenet`` (same engine, same canonical strings; a ``basic`` block is ``b``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import yaml

from nasforge.blocks._spec import ACTS
from nasforge.errors import NasforgeError
from nasforge.spaces._base import register_space
from nasforge.spaces._staged import BLOCK_KINDS, StageDef, StagedSpace, make_divisible

TOP_KEYS = ("input", "num_classes", "widths", "act", "divisor", "stem", "stages", "head")
REQUIRED = ("input", "stem", "stages")


class _Checker:
    """Validates one file's values; every error names the file, the key path and what is allowed."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, msg: str) -> NasforgeError:
        return NasforgeError(f"config {self.where}: {key} {msg}")

    def mapping(self, key: str, value: Any, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a mapping with keys {', '.join(allowed)}, got {value!r}")
        for k in value:
            if k not in allowed:
                raise self.fail(f"{key}.{k}" if key else str(k), f"is an unknown key; allowed: {', '.join(allowed)}")
        for k in required:
            if k not in value:
                raise self.fail(f"{key}.{k}" if key else k, f"is missing (required: {', '.join(required)})")
        return value

    def integer(self, key: str, value: Any, lo: int, hi: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
            allowed = f"an int >= {lo}" if hi is None else f"an int in {lo}..{hi}"
            raise self.fail(key, f"must be {allowed}, got {value!r}")
        return value

    def choices(self, key: str, value: Any, lo: float, hi: float, ints: bool = False, odd: bool = False,
                lo_open: bool = False) -> tuple[Any, ...]:
        kind = ("odd ints" if odd else "ints") if ints else "numbers"
        rng = f"in ({lo}, {hi}]" if lo_open else f"in {lo}..{hi}"
        if not isinstance(value, list):
            raise self.fail(key, f"must be a list of {kind} {rng}, got {value!r}")
        if not value:
            raise self.fail(key, f"is an empty choice list; give at least one of {kind} {rng}")
        for v in value:
            ok_type = not isinstance(v, bool) and isinstance(v, int if ints else (int, float))
            ok = ok_type and (lo < v if lo_open else lo <= v) and v <= hi and not (odd and v % 2 == 0)
            if not ok:
                raise self.fail(key, f"has bad value {v!r}; allowed: {kind} {rng}")
        if len(set(value)) != len(value):
            raise self.fail(key, f"repeats a choice in {value}; list each choice once")
        return tuple(value)


STAGE_KEYS = {name: ("block", "channels", "stride", "depth", *kind.params) for name, kind in BLOCK_KINDS.items()}


def load_config(data: Any, where: str = "<dict>") -> dict[str, Any]:
    """Validate a parsed config (the YAML's top-level mapping) into ``StagedSpace`` arguments."""
    ck = _Checker(where)
    top = ck.mapping("", data, TOP_KEYS, REQUIRED)
    inp = ck.mapping("input", top["input"], ("channels", "resolutions"), ("resolutions",))
    resolutions = ck.choices("input.resolutions", inp["resolutions"], 1, 4096, ints=True)
    in_channels = ck.integer("input.channels", inp.get("channels", 3), 1)
    stem = ck.mapping("stem", top["stem"], ("channels", "stride"), ("channels",))
    stem_channels = ck.integer("stem.channels", stem["channels"], 1)
    stem_stride = ck.integer("stem.stride", stem.get("stride", 2), 1, 2)
    raw_stages = top["stages"]
    if not isinstance(raw_stages, list) or not raw_stages:
        raise ck.fail("stages", f"must be a non-empty list of stage mappings, got {raw_stages!r}")
    stages = []
    for i, raw in enumerate(raw_stages):
        key = f"stages[{i}]"
        if not isinstance(raw, dict) or "block" not in raw:
            raise ck.fail(key, f"must be a mapping with a 'block' key; allowed blocks: {', '.join(BLOCK_KINDS)}")
        block = raw["block"]
        if block not in BLOCK_KINDS:
            raise ck.fail(f"{key}.block", f"has unknown block type {block!r}; allowed: {', '.join(BLOCK_KINDS)}")
        kind = BLOCK_KINDS[block]
        st = ck.mapping(key, raw, STAGE_KEYS[block], ("block", "channels"))
        per: list[tuple[Any, ...]] = []
        for p in kind.params:
            if p == "kernel":
                per.append(ck.choices(f"{key}.kernel", st.get("kernel", [3]), 1, 15, ints=True, odd=True))
            elif p == "expand":
                per.append(ck.choices(f"{key}.expand", st.get("expand", [6]), 0, 16, lo_open=True))
        stages.append(StageDef(
            block,
            ck.integer(f"{key}.channels", st["channels"], 1),
            ck.integer(f"{key}.stride", st.get("stride", 1), 1, 2),
            ck.choices(f"{key}.depth", st.get("depth", [1]), 1, 16, ints=True),
            tuple(per),
        ))
    act = top.get("act", "relu6")
    if act not in ACTS:
        raise ck.fail("act", f"has bad value {act!r}; allowed: {', '.join(ACTS)}")
    head = ck.mapping("head", top.get("head", {"channels": 0}), ("channels", "scale"))
    head_scale = head.get("scale", False)
    if not isinstance(head_scale, bool):
        raise ck.fail("head.scale", f"must be true or false, got {head_scale!r}")
    total_stride = stem_stride
    for s in stages:
        total_stride *= s.stride
    if min(resolutions) < total_stride:
        raise ck.fail("input.resolutions", f"has {min(resolutions)}, smaller than the total stride {total_stride} of "
                      f"stem and stages; allowed: resolutions >= {total_stride}")
    widths = ck.choices("widths", top.get("widths", [1.0]), 0, 4, lo_open=True)
    divisor = ck.integer("divisor", top.get("divisor", 8), 1, 64)
    for w in widths:  # an inverted-residual block needs at least one hidden channel
        prev = make_divisible(stem_channels * w, divisor)
        for i, sd in enumerate(stages):
            out = make_divisible(sd.channels * w, divisor)
            if sd.block == "inverted_residual":
                for e in sd.choices[1]:
                    if round(min(prev, out) * e) < 1:
                        raise ck.fail(f"stages[{i}].expand", f"value {e} gives a block with no hidden channels at "
                                      f"width {w}; allowed: expand * channels >= 0.5")
            prev = out
    return {
        "stages": stages,
        "resolutions": resolutions,
        "widths": widths,
        "in_channels": in_channels,
        "num_classes": ck.integer("num_classes", top.get("num_classes", 10), 1),
        "stem_channels": stem_channels,
        "stem_stride": stem_stride,
        "head_channels": ck.integer("head.channels", head.get("channels", 0), 0),
        "act": act,
        "divisor": divisor,
        "head_scale": head_scale,
    }


@register_space("config")
class ConfigSpace(StagedSpace):
    """A staged space read from a YAML file (``path``) or an already parsed mapping (``spec``)."""

    def __init__(self, path: str | Path | None = None, spec: dict[str, Any] | None = None) -> None:
        if (path is None) == (spec is None):
            raise NasforgeError("config: give exactly one of path=FILE.yaml or spec={...}")
        if path is not None:
            p = Path(path)
            if not p.is_file():
                raise NasforgeError(f"config: file {str(p)!r} not found")
            try:
                data = yaml.safe_load(p.read_text(encoding="utf-8"))
            except UnicodeDecodeError as e:
                raise NasforgeError(f"config {p.name}: not UTF-8 text (byte {e.start})") from None
            except yaml.YAMLError as e:
                raise NasforgeError(f"config {p.name}: not valid YAML ({str(e).splitlines()[0]})") from None
            args = load_config(data, p.name)
            self.path: Path | None = p
        else:
            args = load_config(spec)
            self.path = None
        super().__init__("config", **args)

    def _fit(self, input_shape: Sequence[int], num_classes: int, keep: Collection[str],
             task: str) -> StagedSpace:
        """Input channels and classes from the data; the input resolutions stay the file's."""
        return super()._fit(input_shape, num_classes, {*keep, "resolutions"}, task)
