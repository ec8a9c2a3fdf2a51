"""Latency lookup tables: measured milliseconds per distinct block, summed to predict a network.

A key is a typed tuple ``(kind, in_shape, params)``: the block's type name, its input shape (C, H, W)
and its parameters as ``(name, value)`` pairs, e.g.
``("InvertedResidual", (24, 56, 56), (("in_ch", 24), ("out_ch", 40), ("stride", 2), ("expand", 6), ...))``.
Keys are never joined strings: the JSON/YAML file stores them as nested lists and loading turns every
list back into a tuple. The table records the device, runtime, threads and the space it was built for.

Predicted latency of a network = sum of its blocks' entries + ``constant_ms`` (least squares over a few
measured whole networks: what per-block measurement misses or double counts, e.g. per-call overhead).

Once-for-All / ProxylessNAS YAML tables load as tables with ``key_format="ofa"``: their string keys
(``expanded_conv-input:56x56x24-output:28x28x40-expand:3-kernel:3-stride:2-idskip:0``) are parsed into
the same typed form, with shapes turned from OFA's HxWxC into (C, H, W).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge._files import write_atomic
from nasforge.errors import NasforgeError

if TYPE_CHECKING:
    from nasforge.blocks import NetworkSpec
    from nasforge.blocks._spec import Spec
    from nasforge.spaces import Architecture, SearchSpace

Key = tuple[Any, ...]
KEY_FORMATS = ("nasforge", "ofa")


# -- keys ---------------------------------------------------------------------------------------------


def _freeze(v: Any) -> Any:
    """A hashable, JSON-friendly form of a spec field (nested specs become (kind, params) tuples)."""
    if is_dataclass(v) and not isinstance(v, type):
        return (type(v).__name__, tuple((f.name, _freeze(getattr(v, f.name))) for f in fields(v)))
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise NasforgeError(f"cannot use {v!r} (type {type(v).__name__}) in a lookup-table key")


def spec_key(spec: Spec, in_shape: Sequence[int]) -> Key:
    """The typed key of a block spec on an input shape: (kind, in_shape, ((field, value), ...))."""
    if not (is_dataclass(spec) and not isinstance(spec, type)):
        raise NasforgeError(f"lookup tables key dataclass specs; got {type(spec).__name__}")
    return (type(spec).__name__, tuple(int(s) for s in in_shape),
            tuple((f.name, _freeze(getattr(spec, f.name))) for f in fields(spec)))


def _thaw(v: Any) -> Any:
    """JSON/YAML lists back into tuples (keys are tuples all the way down)."""
    if isinstance(v, list):
        return tuple(_thaw(x) for x in v)
    return v


def _listify(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_listify(x) for x in v]
    return v


def block_network(space: SearchSpace, arch: Architecture) -> NetworkSpec | None:
    """The ``NetworkSpec`` of an architecture (``space.network_spec``), or None when the space has none or
    describes its networks otherwise (e.g. a stack of two-input cells)."""
    from nasforge.blocks import NetworkSpec

    try:
        net = space.network_spec(arch)
    except NotImplementedError:
        return None
    return net if isinstance(net, NetworkSpec) else None


def network_of(space: SearchSpace, arch: Architecture) -> NetworkSpec:
    """The ``NetworkSpec`` of an architecture, for spaces that describe their networks as blocks."""
    net = block_network(space, arch)
    if net is None:
        raise NasforgeError(f"space {space.name!r} does not describe its networks as a sequence of blocks "
                            "(network_spec); lookup tables need one")
    return net


def blocks_of(network: NetworkSpec) -> list[tuple[Spec, tuple[int, ...]]]:
    """Each block of a network with its input shape, in execution order."""
    from nasforge.blocks._spec import part_of

    out = []
    shape = tuple(network.input_shape)
    for s in network.specs():
        out.append((s, shape))
        shape = part_of(s, shape).out_shape
    return out


# -- OFA / ProxylessNAS keys -----------------------------------------------------------------------------


def _ofa_shape(text: str) -> tuple[int, ...]:
    dims = tuple(int(t) for t in text.split("x"))
    return (dims[2], dims[0], dims[1]) if len(dims) == 3 else dims  # HxWxC -> (C, H, W)


def parse_ofa_key(text: str) -> Key:
    """``expanded_conv-input:HxWxC-output:HxWxC-expand:E-...`` -> ("expanded_conv", (C,H,W), (("output", ...), ...))."""
    kind, *rest = text.split("-")
    if not rest or not rest[0].startswith("input:"):
        raise NasforgeError(f"bad OFA lookup-table key {text!r}; expected <layer>-input:HxWxC-...")
    params: list[tuple[str, Any]] = []
    in_shape: tuple[int, ...] = ()
    for part in rest:
        name, sep, val = part.partition(":")
        if not sep:
            raise NasforgeError(f"bad field {part!r} in OFA lookup-table key {text!r}; expected name:value")
        try:
            if name == "input":
                in_shape = _ofa_shape(val)
            elif name == "output":
                params.append((name, _ofa_shape(val)))
            else:
                params.append((name, int(val)))
        except ValueError:
            raise NasforgeError(f"bad value {val!r} of {name!r} in OFA lookup-table key {text!r}") from None
    return (kind, in_shape, tuple(params))


def ofa_key_text(key: Key) -> str:
    """The OFA string form of a typed OFA key (the inverse of ``parse_ofa_key``)."""
    kind, in_shape, params = key

    def shape(s: tuple[int, ...]) -> str:
        return "x".join(map(str, (s[1], s[2], s[0]) if len(s) == 3 else s))

    parts = [kind, f"input:{shape(in_shape)}"]
    parts += [f"{n}:{shape(v) if isinstance(v, tuple) else v}" for n, v in params]
    return "-".join(parts)


# -- the table --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One measured block: latency in ms (the table's statistic), its spread and how many runs it summarises."""

    ms: float
    spread_ms: float = 0.0
    count: int = 1

    def __post_init__(self) -> None:  # NaN or negative latencies would pass any latency constraint
        for name in ("ms", "spread_ms"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise NasforgeError(f"latency entry: {name} must be a finite number >= 0, got {v!r}")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise NasforgeError(f"latency entry: count must be an integer >= 1, got {self.count!r}")


@dataclass
class LatencyTable:
    """Milliseconds per block key, with where and how they were measured."""

    entries: dict[Key, Entry]
    device: str = "cpu"
    runtime: str = "torch"
    threads: int = 1
    key_format: str = "nasforge"
    space: str | None = None
    space_options: dict[str, Any] = field(default_factory=dict)
    constant_ms: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.key_format not in KEY_FORMATS:
            raise NasforgeError(f"unknown key format {self.key_format!r}; allowed: {', '.join(KEY_FORMATS)}")
        self._space: SearchSpace | None = None

    # -- lookups -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def __iter__(self) -> Iterator[Key]:
        return iter(self.entries)

    def lookup(self, key: Key) -> float:
        """Milliseconds of one key; a missing key raises ``NasforgeError`` naming it."""
        e = self.entries.get(key)
        if e is None:
            shown = ofa_key_text(key) if self.key_format == "ofa" else repr(key)
            raise NasforgeError(f"block {shown} is not in the lookup table ({len(self)} entries, "
                                f"device {self.device}); rebuild it covering this block")
        return e.ms

    def op_latency(self, spec: Spec, in_shape: Sequence[int]) -> float:
        """Milliseconds of one block on one input shape (the per-decision latency of one-shot losses)."""
        if self.key_format == "ofa":
            keys = ofa_keys([(spec, tuple(in_shape))], self)
            return sum(self.lookup(k) for k in keys)
        return self.lookup(spec_key(spec, in_shape))

    def keys_of(self, network: NetworkSpec) -> list[Key]:
        """The keys whose entries add up to this network's latency."""
        pairs = blocks_of(network)
        if self.key_format == "ofa":
            return ofa_keys(pairs, self)
        return [spec_key(s, shape) for s, shape in pairs]

    def block_sum(self, network: NetworkSpec) -> float:
        """Sum of the network's block entries (no constant)."""
        return float(sum(self.lookup(k) for k in self.keys_of(network)))

    def network_latency(self, network: NetworkSpec) -> float:
        """Predicted milliseconds of a whole network: block sum + the fitted constant."""
        return self.block_sum(network) + self.constant_ms

    def bind(self, space: SearchSpace) -> LatencyTable:
        """Use ``space`` for ``predict(arch)`` (instead of re-creating the recorded one)."""
        self._space = space
        return self

    def _the_space(self) -> SearchSpace:
        if self._space is None:
            if self.space is None:
                raise NasforgeError("this lookup table records no space; call bind(space) before predict(arch)")
            from nasforge.spaces import get_space

            self._space = get_space(self.space, **self.space_options)
        return self._space

    def predict(self, arch: Architecture) -> float:
        """Predicted milliseconds of an architecture of the table's space."""
        return self.network_latency(network_of(self._the_space(), arch))

    # -- fitting -----------------------------------------------------------------------------------
    def fit_constant(self, networks: Sequence[NetworkSpec], measured_ms: Sequence[float]) -> float:
        """Least-squares constant (the mean residual) so that block sum + constant matches measured networks."""
        if len(networks) != len(measured_ms) or not networks:
            raise NasforgeError("fit_constant needs one measured latency per network (at least one)")
        sums = np.array([self.block_sum(n) for n in networks])
        self.constant_ms = float(np.mean(np.asarray(measured_ms, dtype=float) - sums))
        return self.constant_ms

    # -- files -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "nasforge-latency-table/1",
            "device": self.device,
            "runtime": self.runtime,
            "threads": self.threads,
            "key_format": self.key_format,
            "space": self.space,
            "space_options": _listify(self.space_options),
            "constant_ms": self.constant_ms,
            "meta": self.meta,
            "entries": [{"key": _listify(k), "ms": e.ms, "spread_ms": e.spread_ms, "count": e.count}
                        for k, e in self.entries.items()],
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> LatencyTable:
        if d.get("format") != "nasforge-latency-table/1":
            raise NasforgeError(f"not a nasforge latency table (format {d.get('format')!r}); "
                                "expected nasforge-latency-table/1")
        entries = {_thaw(r["key"]): Entry(float(r["ms"]), float(r.get("spread_ms", 0.0)), int(r.get("count", 1)))
                   for r in d["entries"]}
        return LatencyTable(entries, d["device"], d["runtime"], int(d["threads"]), d["key_format"], d.get("space"),
                            dict(d.get("space_options") or {}), float(d.get("constant_ms", 0.0)),
                            dict(d.get("meta") or {}))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write JSON (``.json``) or YAML (``.yaml``/``.yml``) atomically (temp file + rename)."""
        p = Path(path)
        d = self.to_dict()
        if p.suffix in (".yaml", ".yml"):
            import yaml

            text = yaml.safe_dump(d, sort_keys=False)
        elif p.suffix == ".json":
            text = json.dumps(d, indent=1)
        else:
            raise NasforgeError(f"lookup table file {str(p)!r} must end in .json, .yaml or .yml")
        return write_atomic(p, text)

    @staticmethod
    def load(path: str | os.PathLike[str]) -> LatencyTable:
        """Read a table written by ``save`` (JSON or YAML), or an OFA/ProxylessNAS YAML table."""
        p = Path(path)
        if not p.is_file():
            raise NasforgeError(f"lookup table file {str(p)!r} does not exist")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise NasforgeError(f"lookup table {str(p)!r} is not UTF-8 text (byte {e.start})") from None
        if p.suffix == ".json":
            try:
                d = json.loads(text)
            except json.JSONDecodeError as e:
                raise NasforgeError(f"lookup table {str(p)!r} is not valid JSON: {e}") from None
        else:
            import yaml

            try:
                d = yaml.safe_load(text)
            except yaml.YAMLError as e:
                raise NasforgeError(f"lookup table {str(p)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
        if not isinstance(d, dict):
            raise NasforgeError(f"lookup table {str(p)!r} holds no mapping")
        try:
            if "format" not in d and all(isinstance(v, dict) and "mean" in v for v in d.values()):
                return ofa_table(d, source=str(p))
            return LatencyTable.from_dict(d)
        except NasforgeError as e:
            raise NasforgeError(f"lookup table {str(p)!r}: {e}") from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as e:
            raise NasforgeError(f"lookup table {str(p)!r} is malformed ({type(e).__name__}: {e})") from None


def ofa_table(raw: dict[str, Any], device: str = "unknown", source: str = "") -> LatencyTable:
    """A table from an OFA/ProxylessNAS mapping ``{key: {count, mean, std|var}}`` (ms)."""
    entries: dict[Key, Entry] = {}
    for text, v in raw.items():
        if "std" in v:
            spread = float(v["std"])
        elif "var" in v:
            spread = float(np.sqrt(float(v["var"])))
        else:
            spread = 0.0
        entries[parse_ofa_key(str(text))] = Entry(float(v["mean"]), spread, int(v.get("count", 1)))
    return LatencyTable(entries, device=device, runtime="unknown", threads=0, key_format="ofa",
                        meta={"source": source, "statistic": "mean", "spread": "std"})


def load_ofa_table(path: str | os.PathLike[str], device: str = "unknown") -> LatencyTable:
    """Load an Once-for-All / ProxylessNAS YAML lookup table (e.g. ``224_lookup_table.yaml``)."""
    t = LatencyTable.load(path)
    if t.key_format != "ofa":
        raise NasforgeError(f"{str(path)!r} is not an OFA/ProxylessNAS table (keys like Conv-input:HxWxC-...)")
    t.device = device
    return t


def ofa_keys(pairs: Iterable[tuple[Spec, tuple[int, ...]]], table: LatencyTable | None = None) -> list[Key]:
    """OFA/ProxylessNAS layer keys of blocks: stem conv -> ``Conv``, inverted residuals -> ``expanded_conv``,
    the 1x1 head conv -> ``Conv_1``, global pool + linear -> ``Logits`` (ProxylessNAS's grouping).

    ``expand`` is the ratio as in ProxylessNAS tables, or the hidden channels when the table's
    ``expanded_conv`` keys carry ``se``/``hs`` fields (the OFA MobileNetV3 tables).
    """
    from nasforge.blocks import ConvBNAct, InvertedResidual
    from nasforge.blocks._spec import Flatten, GlobalPool, Linear

    mbv3 = False
    if table is not None:
        mbv3 = any(k[0] == "expanded_conv" and any(n == "se" for n, _ in k[2]) for k in table.entries)
    out: list[Key] = []
    seen_block = False
    pool_in: tuple[int, ...] | None = None
    for spec, shape in pairs:
        if isinstance(spec, InvertedResidual):
            seen_block = True
            hw = (shape[1] + spec.stride - 1) // spec.stride
            params: list[tuple[str, Any]] = [
                ("output", (spec.out_ch, hw, hw)),
                ("expand", spec.hidden if mbv3 else _num(spec.expand)),
                ("kernel", spec.kernel), ("stride", spec.stride), ("idskip", int(spec.use_residual))]
            if mbv3:
                params += [("se", 0), ("hs", int(spec.act == "hswish"))]
            out.append(("expanded_conv", shape, tuple(params)))
        elif isinstance(spec, ConvBNAct):
            hw = (shape[1] + spec.stride - 1) // spec.stride
            out.append(("Conv_1" if seen_block else "Conv", shape, (("output", (spec.out_ch, hw, hw)),)))
        elif isinstance(spec, GlobalPool):
            pool_in = shape
        elif isinstance(spec, Flatten):
            continue
        elif isinstance(spec, Linear):
            out.append(("Logits", pool_in or shape, (("output", (spec.out_features,)),)))
        else:
            raise NasforgeError(f"no OFA/ProxylessNAS layer key for block {type(spec).__name__}")
    return out


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() else v


# -- building a table by measurement ------------------------------------------------------------------------


def distinct_blocks(space: SearchSpace, archs: Iterable[Architecture]) -> dict[Key, tuple[Spec, tuple[int, ...]]]:
    """Every distinct (block, input shape) of these architectures, by key, in first-seen order."""
    out: dict[Key, tuple[Spec, tuple[int, ...]]] = {}
    for a in archs:
        for spec, shape in blocks_of(network_of(space, a)):
            k = spec_key(spec, shape)
            if k not in out:
                out[k] = (spec, shape)
    return out


def coverage_archs(space: SearchSpace, samples: int, seed: int = 0) -> list[Architecture]:
    """All architectures of a space of at most ``samples``, else ``samples`` uniform draws (seeded)."""
    if samples < 1:
        raise NasforgeError(f"samples={samples} must be >= 1")
    if space.size() <= samples:
        return list(space.enumerate())
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(samples)]


def build_table(space: SearchSpace, *, device: str = "cpu", runtime: str = "torch", threads: int = 1,
                warmup: int = 5, repeats: int = 20, stat: str = "min", samples: int = 1000,
                fit_networks: int = 5, seed: int = 0, space_name: str | None = None,
                space_options: dict[str, Any] | None = None, min_time_s: float = 2.0,
                status: Callable[[str], None] | None = None) -> LatencyTable:
    """Measure each distinct block of ``space`` once (blocks of all archs, or of ``samples`` sampled ones),
    then fit the constant on ``fit_networks`` measured whole networks (``status`` hears a line as each step starts).

    ``stat`` is ``min`` (default) or ``median``. On a busy shared 2-core host, over five builds of a tiny
    mobilenet space, the median |error| of the LUT sum on 10-20 held-aside networks was 2-14% with ``min``
    and 5-49% with ``median``: the minimum drops the runs another process preempted. With the torch runtime
    the blocks are timed interleaved over at least 4 rounds lasting at least ``min_time_s``
    (``measure_latencies``), so a slow spell of the host (they last seconds) hits them all alike instead of a
    few, and the minimum has time to see the host at its usual speed.
    """
    if stat not in ("median", "min"):
        raise NasforgeError(f"unknown statistic {stat!r}; allowed: median, min")
    rng = np.random.default_rng(seed)
    blocks = distinct_blocks(space, coverage_archs(space, samples, seed))
    entries: dict[Key, Entry] = {}

    def measure_blocks(items: dict[Key, tuple[Spec, tuple[int, ...]]]) -> None:
        stats = _measure_all([(spec.build(), (1, *shape)) for spec, shape in items.values()], device, runtime,
                             threads, warmup, repeats, min_time_s)
        for k, st in zip(items, stats, strict=True):
            entries[k] = Entry(st.min_ms if stat == "min" else st.median_ms, st.iqr_ms, st.repeats)

    say = status or (lambda _msg: None)
    say(f"measuring {len(blocks)} blocks")
    measure_blocks(blocks)
    table = LatencyTable(entries, "cpu" if device == "host" else device, runtime, threads, "nasforge",
                         space_name or space.name, dict(space_options or {}),
                         meta={"statistic": stat, "spread": "iqr", "warmup": warmup, "repeats": repeats,
                               "samples": samples, "seed": seed, "interleaved": runtime == "torch",
                               "min_time_s": min_time_s if runtime == "torch" else 0.0})
    table.bind(space)
    if fit_networks > 0:
        nets = [network_of(space, space.sample(rng)) for _ in range(fit_networks)]
        say(f"measuring {fit_networks} networks to fit the constant")
        # a network outside the sampled coverage may hold new blocks: measure them too
        measure_blocks({spec_key(spec, shape): (spec, shape) for n in nets for spec, shape in blocks_of(n)
                        if spec_key(spec, shape) not in entries})
        stats = _measure_all([(n.build(), (1, *n.input_shape)) for n in nets], device, runtime, threads, warmup,
                             repeats, min_time_s)
        measured = [st.min_ms if stat == "min" else st.median_ms for st in stats]
        table.fit_constant(nets, measured)
        table.meta["fit_networks"] = fit_networks
    return table


def _measure_all(items: Sequence[tuple[Any, tuple[int, ...]]], device: str, runtime: str, threads: int,
                 warmup: int, repeats: int, min_time_s: float) -> list[Any]:
    """``LatencyStats`` of (module, input shape) pairs: interleaved over at least 4 rounds and ``min_time_s``
    with torch (``repeats`` and ``warmup`` split across rounds), one module after the other with onnxruntime
    (one session each)."""
    from nasforge.hardware._latency import measure_latencies, measure_latency

    if not items:
        return []
    if runtime != "torch":
        return [measure_latency(m, shape, device, runtime, threads, warmup, repeats) for m, shape in items]
    rounds = min(4, repeats)
    return measure_latencies([m for m, _ in items], [shape for _, shape in items], device, threads,
                             max(1, math.ceil(warmup / rounds)), math.ceil(repeats / rounds), rounds,
                             min_time_s=min_time_s)


def measure_network(network: NetworkSpec, device: str = "cpu", runtime: str = "torch", threads: int = 1,
                    warmup: int = 5, repeats: int = 20, stat: str = "min") -> float:
    """Measured milliseconds of a whole network (batch 1) with the table's statistic."""
    from nasforge.hardware._latency import measure_latency

    s = measure_latency(network.build(), (1, *network.input_shape), device, runtime, threads, warmup, repeats)
    return s.min_ms if stat == "min" else s.median_ms


def per_decision_latency(latency_fn: Callable[[Architecture], float], space: SearchSpace,
                         arch: Architecture) -> list[list[float]]:
    """``out[i][j]`` = predicted ms of ``arch`` with decision ``i`` set to choice ``j`` (the others kept).

    With a lookup table this is the per-op latency a one-shot latency loss weighs by the op probabilities
    (``out[i][j] - out[i][arch.choices[i]]`` is choice ``j``'s extra cost at that position). Decisions
    that are inactive for ``arch`` (e.g. blocks beyond a stage's depth) give the unchanged latency.
    """
    base = list(space.encode(arch))
    out: list[list[float]] = []
    for i, d in enumerate(space.decisions()):
        row = []
        for j in range(d.n):
            c = base.copy()
            c[i] = j
            row.append(float(latency_fn(space.decode(c))))
        out.append(row)
    return out
