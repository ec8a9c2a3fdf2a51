"""The layer IR: a list of nodes in execution order, each with its shapes and attributes.

Both ways into the cost model produce this IR: the analytic path (a ``GraphBuilder`` driven by block
specs, no torch) and the traced path (one real forward of any module under a torch-function mode, see
``_trace.py``). Shapes never include the batch dimension: every count is per sample.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from nasforge.errors import NasforgeError

Shape = tuple[int, ...]

# Ops whose output shares storage with their input at inference time: batch norm and activations are
# fused into the producing conv/linear (or run in place), and view-like ops move no data.
ALIAS_OPS: frozenset[str] = frozenset(
    {"batchnorm", "layernorm", "groupnorm", "relu", "relu6", "hswish", "hsigmoid", "sigmoid", "silu", "gelu",
     "tanh", "leaky_relu", "hardtanh", "clamp", "elu", "mish", "softmax", "identity", "dropout", "flatten",
     "reshape", "slice"}
)


@dataclass(frozen=True, slots=True)
class Node:
    """One operation: its op name (a key of the rule table), producers, shapes and attributes."""

    name: str
    op: str
    inputs: tuple[int, ...]
    in_shapes: tuple[Shape, ...]
    out_shape: Shape
    attrs: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def out_numel(self) -> int:
        return math.prod(self.out_shape)


def conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1, ceil: bool = False) -> int:
    """Output length of a conv/pool along one axis (PyTorch's formula)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    a, b = v
    return (int(a), int(b))


class GraphBuilder:
    """Builds the IR without torch: each method appends a node and returns its handle (an index).

    Block specs call these methods in the same order their ``nn.Module`` runs, so the analytic cost
    equals the traced cost of the built module.
    """

    def __init__(self, input_shape: Sequence[int]) -> None:
        shape = tuple(int(s) for s in input_shape)
        if not shape or any(s <= 0 for s in shape):
            raise NasforgeError(f"input shape {shape} must be non-empty with positive sizes")
        self.nodes: list[Node] = [Node("input", "input", (), (), shape)]
        self._scope: list[str] = []
        self._counts: dict[str, int] = {}

    # -- bookkeeping -------------------------------------------------------------------------------
    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Prefix the names of nodes added inside with ``name.`` (mirrors module paths)."""
        self._scope.append(name)
        try:
            yield
        finally:
            self._scope.pop()

    def shape(self, x: int) -> Shape:
        return self.nodes[x].out_shape

    def add(self, op: str, inputs: Sequence[int], out_shape: Sequence[int], name: str | None = None,
            **attrs: Any) -> int:
        """Append a node of any op (also ops registered by users) and return its handle."""
        if name is None:
            n = self._counts.get(op, 0)
            self._counts[op] = n + 1
            name = f"{op}{n}" if n else op
        full = ".".join([*self._scope, name]) if self._scope else name
        ins = tuple(inputs)
        node = Node(full, op, ins, tuple(self.nodes[i].out_shape for i in ins),
                    tuple(int(s) for s in out_shape), attrs)
        self.nodes.append(node)
        return len(self.nodes) - 1

    # -- layers ------------------------------------------------------------------------------------
    def conv2d(self, x: int, out_channels: int, kernel_size: int | Sequence[int], stride: int | Sequence[int] = 1,
               padding: int | Sequence[int] | None = None, groups: int = 1, bias: bool = False,
               dilation: int | Sequence[int] = 1, name: str | None = None, shared: bool = False) -> int:
        """A conv node; ``shared``: its weights were counted by an earlier node (one module run twice)."""
        c, h, w = self.shape(x)
        kh, kw = _pair(kernel_size)
        sh, sw = _pair(stride)
        dh, dw = _pair(dilation)
        ph, pw = _pair(padding) if padding is not None else (dh * (kh - 1) // 2, dw * (kw - 1) // 2)
        if c % groups or out_channels % groups:
            raise NasforgeError(f"conv groups={groups} must divide in_channels={c} and out_channels={out_channels}")
        ho, wo = conv_out(h, kh, sh, ph, dh), conv_out(w, kw, sw, pw, dw)
        if ho <= 0 or wo <= 0:
            raise NasforgeError(f"input {h}x{w} is too small for a {kh}x{kw} conv with stride {sh}")
        extra: dict[str, Any] = {"shared": True} if shared else {}
        if (dh, dw) != (1, 1):
            extra["dilation"] = (dh, dw)
        return self.add("conv2d", [x], (out_channels, ho, wo), name, in_channels=c, out_channels=out_channels,
                        kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw), groups=groups, bias=bias, **extra)

    def linear(self, x: int, out_features: int, bias: bool = True, name: str | None = None) -> int:
        shape = self.shape(x)
        return self.add("linear", [x], (*shape[:-1], out_features), name, in_features=shape[-1],
                        out_features=out_features, bias=bias)

    def matmul(self, a: int, b: int, name: str | None = None) -> int:
        sa, sb = self.shape(a), self.shape(b)
        if sa[-1] != sb[-2]:
            raise NasforgeError(f"matmul shapes {sa} and {sb} do not match")
        batch = sa[:-2] if len(sa) >= len(sb) else sb[:-2]
        return self.add("matmul", [a, b], (*batch, sa[-2], sb[-1]), name)

    def batchnorm(self, x: int, name: str | None = None) -> int:
        return self.add("batchnorm", [x], self.shape(x), name, num_features=self.shape(x)[0])

    def act(self, x: int, kind: str = "relu", name: str | None = None) -> int:
        return self.add(kind, [x], self.shape(x), name)

    def pool(self, x: int, kind: str, kernel_size: int, stride: int | None = None, padding: int = 0,
             ceil_mode: bool = False, name: str | None = None) -> int:
        c, h, w = self.shape(x)
        s = kernel_size if stride is None else stride
        ho = conv_out(h, kernel_size, s, padding, ceil=ceil_mode)
        wo = conv_out(w, kernel_size, s, padding, ceil=ceil_mode)
        if ho <= 0 or wo <= 0:
            raise NasforgeError(f"input {h}x{w} is too small for a {kernel_size}x{kernel_size} pool")
        return self.add(kind, [x], (c, ho, wo), name, kernel=(kernel_size, kernel_size))

    def maxpool(self, x: int, kernel_size: int, stride: int | None = None, padding: int = 0,
                ceil_mode: bool = False, name: str | None = None) -> int:
        return self.pool(x, "maxpool", kernel_size, stride, padding, ceil_mode, name)

    def avgpool(self, x: int, kernel_size: int, stride: int | None = None, padding: int = 0,
                ceil_mode: bool = False, name: str | None = None) -> int:
        return self.pool(x, "avgpool", kernel_size, stride, padding, ceil_mode, name)

    def global_avgpool(self, x: int, output_size: int = 1, name: str | None = None) -> int:
        c, h, w = self.shape(x)
        return self.add("adaptive_avgpool", [x], (c, output_size, output_size), name,
                        kernel=(max(1, h // output_size), max(1, w // output_size)))

    def add_(self, a: int, b: int, name: str | None = None) -> int:
        """Elementwise sum (residual connections)."""
        if self.shape(a) != self.shape(b):
            raise NasforgeError(f"cannot add tensors of shapes {self.shape(a)} and {self.shape(b)}")
        return self.add("add", [a, b], self.shape(a), name)

    def mul(self, a: int, b: int, name: str | None = None) -> int:
        """Elementwise (broadcast) product, e.g. squeeze-and-excitation scaling."""
        return self.add("mul", [a, b], self.shape(a), name)

    def cat(self, xs: Sequence[int], name: str | None = None) -> int:
        shapes = [self.shape(x) for x in xs]
        rest = shapes[0][1:]
        if any(s[1:] != rest for s in shapes):
            raise NasforgeError(f"cannot concatenate shapes {shapes} along channels")
        return self.add("cat", list(xs), (sum(s[0] for s in shapes), *rest), name)

    def flatten(self, x: int, name: str | None = None) -> int:
        return self.add("flatten", [x], (math.prod(self.shape(x)),), name)

    def split(self, x: int, sizes: Sequence[int], name: str | None = None) -> list[int]:
        """Split along channels into pieces of ``sizes`` (``torch.split``/``chunk``): one "slice" node each,
        a view of ``x`` (attrs start/end)."""
        c, *rest = self.shape(x)
        if sum(sizes) != c or any(s <= 0 for s in sizes):
            raise NasforgeError(f"split sizes {list(sizes)} must be positive and sum to the {c} channels")
        out: list[int] = []
        start = 0
        for i, s in enumerate(sizes):
            piece = None if name is None else (f"{name}{i}" if i else name)
            out.append(self.add("slice", [x], (s, *rest), piece, start=start, end=start + s, dim=0))
            start += s
        return out

    def channel_shuffle(self, x: int, groups: int, name: str | None = None) -> int:
        return self.add("channel_shuffle", [x], self.shape(x), name, groups=groups)

    def dropout(self, x: int, name: str | None = None) -> int:
        return self.add("dropout", [x], self.shape(x), name)

    def zero(self, x: int, stride: int = 1, out_channels: int | None = None, name: str | None = None) -> int:
        """The NAS 'none' op: a zero tensor of the output shape (no arithmetic, no weights)."""
        c, h, w = self.shape(x)
        ho, wo = (h, w) if stride == 1 else (conv_out(h, 1, stride, 0), conv_out(w, 1, stride, 0))
        return self.add("zero", [x], (out_channels or c, ho, wo), name)
