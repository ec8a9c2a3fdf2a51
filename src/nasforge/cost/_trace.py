"""Tracing any ``nn.Module`` into the cost IR by running its real forward under a ``TorchFunctionMode``.

Why this mechanism and not ``torch.fx``: ``symbolic_trace`` fails on data-dependent Python control flow
and on many shape computations, and its ShapeProp needs a second pass. A torch-function mode instead sees
every torch call of one real forward (batch 1) with real tensors, so any Python control flow works and
every shape is exact. The mode sees only the outermost overridable call (``F.batch_norm``, not the
``torch.batch_norm`` inside it), which is the level the rule table speaks.

- **Data flow** comes from tensor identity: every tensor a recorded op returns is kept alive and mapped
  to its node. In-place ops (``relu_``, ``+=``) return their input object; they become a new node reading
  the old one, and the object is re-mapped to the new node, so later readers see the right producer.
- **Names** come from module hooks (a scope stack): a leaf module that runs one op gives it its path
  (``stages.0.1.dw.conv``); other ops are named ``<module path>.<op>`` (``stages.0.1.add``).
- **Views** (view, reshape, transpose, chunk, slicing, ...) are alias nodes while they share storage with
  their input; a view that materialises (``contiguous()`` of a transpose, ``reshape`` of a non-contiguous
  tensor) writes a new buffer: it is a ``channel_shuffle`` when the values equal
  ``torch.channel_shuffle`` of the chain's source (checked on the real tensors), else a ``copy``.
- **Parameters** used as operands of ops without weights (a learned scale in ``x * self.gamma``, a weight
  in ``x @ self.w``) are counted as that node's ``params`` (attr ``params``); a weight used by a second
  node (a module called twice) is counted once (attr ``shared``).
- **Unknown ops**: any other torch function that reads a traced tensor becomes a node whose op is the
  function's name (e.g. ``erf``); ``analyze`` warns once, counts it zero and lists it in
  ``Cost.unknown_ops``. ``register_rule(name, fn)`` makes it count.

Per-sample shapes drop the leading batch dimension when it is 1 (the forward runs at batch 1), so element
counts are exact for every tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from nasforge.cost._ir import Node, Shape
from nasforge.errors import NasforgeError

ACTIVATIONS: dict[str, str] = {
    "relu": "relu", "relu6": "relu6", "hardswish": "hswish", "hardsigmoid": "hsigmoid", "sigmoid": "sigmoid",
    "silu": "silu", "gelu": "gelu", "tanh": "tanh", "leaky_relu": "leaky_relu", "softmax": "softmax",
    "log_softmax": "softmax", "elu": "elu", "mish": "mish", "clamp": "clamp", "clamp_min": "clamp",
    "clamp_max": "clamp",
}
ELEMENTWISE: dict[str, str] = {
    "add": "add", "radd": "add", "sub": "sub", "rsub": "sub", "mul": "mul", "rmul": "mul", "div": "div",
    "truediv": "div", "rtruediv": "div", "true_divide": "div", "maximum": "max", "minimum": "min",
}
MATMUL = {"matmul", "mm", "bmm", "rmatmul"}
ADD_MATMUL = {"addmm", "baddbmm", "addbmm"}  # (bias, a, b)
DROPOUT = {"dropout", "dropout1d", "dropout2d", "dropout3d", "feature_dropout", "alpha_dropout",
           "feature_alpha_dropout"}
MOVEMENT = {"view", "reshape", "view_as", "reshape_as", "flatten", "unflatten", "squeeze", "unsqueeze",
            "transpose", "permute", "t", "movedim", "moveaxis", "swapaxes", "swapdims", "expand", "expand_as",
            "contiguous", "narrow", "select", "getitem", "chunk", "split", "split_with_sizes", "tensor_split",
            "unbind", "get", "index_select", "repeat", "pixel_shuffle", "pixel_unshuffle"}
PASS_THROUGH = {"detach", "to", "float", "half", "double", "bfloat16", "type", "type_as", "cpu", "cuda",
                "requires_grad", "clone"}
ZEROS = {"zeros_like", "new_zeros"}
FILLS = {"ones_like", "full_like", "empty_like", "rand_like", "randn_like", "new_ones", "new_full", "new_empty"}
CONCAT = {"cat", "concat", "concatenate", "stack"}
NORMS = {"batch_norm": "batchnorm", "layer_norm": "layernorm", "group_norm": "groupnorm",
         "instance_norm": "groupnorm"}
REDUCTIONS = {"mean": "mean", "sum": "sum", "amax": "max_reduce", "max": "max_reduce"}
POOLS = {f"{kind}_pool{d}d{tail}": d for kind in ("max", "avg") for d in (1, 2, 3) for tail in ("", "_with_indices")
         if not (kind == "avg" and tail)}
ADAPTIVE_POOLS = {f"adaptive_{kind}_pool{d}d{tail}": d for kind in ("max", "avg") for d in (1, 2, 3)
                  for tail in ("", "_with_indices") if not (kind == "avg" and tail)}
ALIAS_MOVES = ("reshape", "flatten", "slice")


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    seq = list(v)
    return (int(seq[0]), int(seq[-1]))


def _arg(args: Sequence[Any], kwargs: dict[str, Any], i: int, name: str, default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[i] if len(args) > i else default


def _tensors(obj: Any) -> Iterator[Tensor]:
    """Tensors inside nested args (lists, tuples, dicts), in order."""
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, list | tuple):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


def _base_name(func: Callable[..., Any]) -> tuple[str, bool]:
    """(normalised op name, in place?) of a torch function: ``__iadd__`` -> ("add", True), ``relu_`` ->
    ("relu", True), ``Tensor.__getitem__`` -> ("getitem", False)."""
    name = getattr(func, "__name__", type(func).__name__)
    if name.startswith("__") and name.endswith("__"):
        core = name[2:-2]
        if core.startswith("i") and core[1:] in {*ELEMENTWISE, "matmul"}:
            return core[1:], True
        return core, False
    if name.endswith("_") and not name.startswith("_"):
        return name[:-1], True
    return name.lstrip("_"), False


def _shares_storage(a: Tensor, b: Tensor) -> bool:
    try:
        return bool(a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr())
    except RuntimeError:
        return False


@dataclass
class _Rec:
    """A node while tracing (mutable until the names are known)."""

    op: str
    inputs: list[int]
    in_shapes: list[Shape]
    out_shape: Shape
    scope: str
    attrs: dict[str, Any] = field(default_factory=dict)


class _Tracer(TorchFunctionMode):
    """Records every torch call on traced tensors as a ``_Rec``; see the module doc."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.recs: list[_Rec] = []
        self.tensors: list[Tensor | None] = []
        self.node_of: dict[int, tuple[int, Tensor]] = {}
        self.scope: list[str] = [""]
        self.param_ids = {id(p) for p in module.parameters()}
        self.seen_params: set[int] = set()

    # -- bookkeeping -------------------------------------------------------------------------------
    def start(self, x: Tensor) -> None:
        self.recs.append(_Rec("input", [], [], self.ps(x), ""))
        self.tensors.append(x)
        self.node_of[id(x)] = (0, x)

    def node(self, t: Tensor) -> int | None:
        hit = self.node_of.get(id(t))
        return hit[0] if hit is not None and hit[1] is t else None

    @staticmethod
    def ps(t: Tensor) -> Shape:
        """Per-sample shape: drop a leading batch dimension of 1."""
        s = tuple(int(d) for d in t.shape)
        return s[1:] if len(s) >= 1 and s[0] == 1 else s

    def shape_of(self, t: Tensor) -> Shape:
        return self.ps(t) if self.node(t) is not None else tuple(int(d) for d in t.shape)

    def param_of(self, t: Tensor | None) -> Tensor | None:
        """The parameter a tensor is (or is a view of, e.g. ``weight.t()``), if any."""
        while t is not None:
            if id(t) in self.param_ids:
                return t
            t = t._base
        return None

    def weight_shared(self, *ts: Tensor | None) -> bool:
        """True when one of these parameters was already counted by an earlier node."""
        ps = [p for p in (self.param_of(t) for t in ts) if p is not None]
        shared = any(id(p) in self.seen_params for p in ps)
        self.seen_params.update(id(p) for p in ps)
        return shared

    def free_params(self, ts: Sequence[Tensor]) -> int:
        """Elements of parameters used as plain operands, each counted once per trace."""
        total = 0
        for t in ts:
            p = self.param_of(t)
            if p is not None and id(p) not in self.seen_params:
                self.seen_params.add(id(p))
                total += p.numel()
        return total

    def emit(self, op: str, inputs: Sequence[Tensor], out: Tensor, out_shape: Shape | None = None,
             **attrs: Any) -> int:
        ins = [i for i in (self.node(t) for t in inputs) if i is not None]
        rec = _Rec(op, ins, [self.shape_of(t) for t in inputs], out_shape if out_shape is not None else self.ps(out),
                   self.scope[-1], {k: v for k, v in attrs.items() if v is not None})
        self.recs.append(rec)
        self.tensors.append(out)
        idx = len(self.recs) - 1
        self.node_of[id(out)] = (idx, out)
        return idx

    # -- the mode ----------------------------------------------------------------------------------
    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        outs = [o for o in _tensors(out)]
        if not outs:
            return out
        ins = [t for t in _tensors((args, kwargs))]
        if not any(self.node(t) is not None for t in ins):
            return out  # constants, parameters and their views: not part of the data flow
        name, inplace = _base_name(func)
        self.record(name, inplace, args, kwargs, ins, outs)
        return out

    def record(self, name: str, inplace: bool, args: Sequence[Any], kwargs: dict[str, Any],
               ins: list[Tensor], outs: list[Tensor]) -> None:
        x, o = ins[0], outs[0]
        if name in ("conv1d", "conv2d", "conv3d"):
            w, b = _arg(args, kwargs, 1, "weight"), _arg(args, kwargs, 2, "bias")
            groups = int(_arg(args, kwargs, 6, "groups", 1))
            stride, padding = _arg(args, kwargs, 3, "stride", 1), _arg(args, kwargs, 4, "padding", 0)
            self.emit(name, [x], o, self.ps(o)[-w.dim() + 1:], in_channels=int(w.shape[1]) * groups,
                      out_channels=int(w.shape[0]), kernel=tuple(int(k) for k in w.shape[2:]),
                      stride=_pair(stride) if name == "conv2d" else stride,
                      padding=padding if isinstance(padding, str) or name != "conv2d" else _pair(padding),
                      dilation=_arg(args, kwargs, 5, "dilation", 1), groups=groups, bias=b is not None,
                      shared=self.weight_shared(w, b) or None)
        elif name in ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
            w, b = _arg(args, kwargs, 1, "weight"), _arg(args, kwargs, 2, "bias")
            groups = int(_arg(args, kwargs, 6, "groups", 1))
            self.emit(name, [x], o, self.ps(o)[-w.dim() + 1:], in_channels=int(w.shape[0]),
                      out_channels=int(w.shape[1]) * groups, kernel=tuple(int(k) for k in w.shape[2:]),
                      stride=_arg(args, kwargs, 3, "stride", 1), groups=groups, bias=b is not None,
                      shared=self.weight_shared(w, b) or None)
        elif name == "scaled_dot_product_attention":
            q, kt, v = ins[0], ins[1], ins[2]
            batch = math.prod(int(d) for d in q.shape[:-2])
            lq, s_kv, d_qk, d_v = int(q.shape[-2]), int(kt.shape[-2]), int(q.shape[-1]), int(v.shape[-1])
            self.emit("attention", [q, kt, v], o, macs=batch * lq * s_kv * (d_qk + d_v), other_ops=batch * lq * s_kv)
        elif name == "multi_head_attention_forward":
            self.multi_head_attention(args, kwargs, ins, outs)
        elif name == "linear":
            w, b = _arg(args, kwargs, 1, "weight"), _arg(args, kwargs, 2, "bias")
            self.emit("linear", [x], o, in_features=int(w.shape[1]), out_features=int(w.shape[0]),
                      bias=b is not None, shared=self.weight_shared(w, b) or None)
        elif name in MATMUL or name in ADD_MATMUL:
            a, b = (ins[0], ins[1]) if name in MATMUL else (ins[1], ins[2])
            if name == "rmatmul":
                a, b = b, a
            self.emit("matmul", [a, b], o, params=self.free_params(ins) or None)
        elif name in NORMS:
            w_i, b_i = (3, 4) if name == "batch_norm" else (2, 3)
            w, b = _arg(args, kwargs, w_i, "weight"), _arg(args, kwargs, b_i, "bias")
            shared = self.weight_shared(w, b)
            n_params = 0 if shared else sum(int(t.numel()) for t in (w, b) if t is not None)
            op = NORMS[name]
            if op == "batchnorm":
                self.emit(op, [x], o, num_features=int(x.shape[1]), affine=w is not None,
                          shared=shared or None)
            else:
                self.emit(op, [x], o, params=n_params)
        elif name in ACTIVATIONS or name == "hardtanh":
            op = ACTIVATIONS.get(name, "hardtanh")
            if name == "hardtanh":
                lo, hi = _arg(args, kwargs, 1, "min_val", -1.0), _arg(args, kwargs, 2, "max_val", 1.0)
                op = "relu6" if (lo, hi) == (0.0, 6.0) else "hardtanh"
            self.emit(op, [x], o)
        elif name in ELEMENTWISE:
            self.emit(ELEMENTWISE[name], [t for t in ins if self.node(t) is not None] or ins[:1], o,
                      params=self.free_params(ins) or None)
        elif name in POOLS:
            d = POOLS[name]
            k = _arg(args, kwargs, 1, "kernel_size")
            self.emit("avgpool" if name.startswith("avg") else "maxpool", [x], o,
                      kernel=_pair(k) if d == 2 else tuple(k) if isinstance(k, list | tuple) else (int(k),) * d)
        elif name in ADAPTIVE_POOLS:
            d = ADAPTIVE_POOLS[name]
            self.emit("adaptive_avgpool" if "avg" in name else "adaptive_maxpool", [x], o,
                      kernel=tuple(max(1, int(i) // int(j)) for i, j in zip(x.shape[-d:], o.shape[-d:], strict=True)))
        elif name in REDUCTIONS:
            self.reduction(name, args, kwargs, x, o)
        elif name in CONCAT:
            self.emit("cat", [t for t in ins if self.node(t) is not None], o, dim=_arg(args, kwargs, 1, "dim", 0),
                      params=self.free_params(ins) or None)  # e.g. a learned class token
        elif name in DROPOUT:
            self.emit("dropout", [x], o)
        elif name in ("channel_shuffle", "native_channel_shuffle"):
            self.emit("channel_shuffle", [x], o, groups=int(_arg(args, kwargs, 1, "groups")))
        elif name in ZEROS or name in FILLS:
            self.emit("zero" if name in ZEROS else "fill", [x], o)
        elif name == "pad":
            self.emit("pad", [x], o)
        elif name in ("interpolate", "upsample", "upsample_nearest2d", "upsample_bilinear2d"):
            self.emit("upsample", [x], o)
        elif name in MOVEMENT:
            for piece in outs:
                self.movement(name, x, piece)
        elif name in PASS_THROUGH:
            if o is not x:
                self.emit("copy" if name == "clone" else "identity", [x], o)
        elif inplace or o is not x:
            self.emit(name, ins, o, params=self.free_params(ins) or None)  # no rule yet: analyze() warns, lists it

    def multi_head_attention(self, args: Sequence[Any], kwargs: dict[str, Any], ins: list[Tensor],
                             outs: list[Tensor]) -> None:
        """``F.multi_head_attention_forward`` (what ``nn.MultiheadAttention`` runs): q/k/v projections,
        scores, weighted sum and output projection, on (L, N, E) query and (S, N, E_kv) key/value."""
        q, k, v = (_arg(args, kwargs, i, n) for i, n in enumerate(("query", "key", "value")))
        heads = int(_arg(args, kwargs, 4, "num_heads"))
        lq, nb, e = (int(d) for d in q.shape)
        s_kv, ek, ev = int(k.shape[0]), int(k.shape[-1]), int(v.shape[-1])
        macs = nb * (lq * e * e + s_kv * ek * e + s_kv * ev * e + 2 * lq * s_kv * e + lq * e * e)
        names = ("in_proj_weight", "in_proj_bias", "bias_k", "bias_v", "out_proj_weight", "out_proj_bias",
                 "q_proj_weight", "k_proj_weight", "v_proj_weight")
        index = {"in_proj_weight": 5, "in_proj_bias": 6, "bias_k": 7, "bias_v": 8, "out_proj_weight": 11,
                 "out_proj_bias": 12, "q_proj_weight": 18, "k_proj_weight": 19, "v_proj_weight": 20}
        weights = [t for t in (_arg(args, kwargs, index[n], n) for n in names) if isinstance(t, Tensor)]
        biases = nb * ((lq + 2 * s_kv) * e if _arg(args, kwargs, 6, "in_proj_bias") is not None else 0)
        self.emit("attention", [t for t in (q, k, v) if self.node(t) is not None] or ins[:1], outs[0],
                  macs=macs, params=self.free_params(weights), other_ops=nb * heads * lq * s_kv + biases, heads=heads)

    def reduction(self, name: str, args: Sequence[Any], kwargs: dict[str, Any], x: Tensor, o: Tensor) -> None:
        dims = _arg(args, kwargs, 1, "dim")
        nd = x.dim()
        if isinstance(dims, int):
            dims = (dims,)
        spatial = dims is not None and nd == 4 and sorted(d % nd for d in dims) == [2, 3]
        if name == "mean" and spatial:
            self.emit("adaptive_avgpool", [x], o, kernel=(int(x.shape[2]), int(x.shape[3])))
        else:
            self.emit(REDUCTIONS[name], [x], o)

    def movement(self, name: str, x: Tensor, o: Tensor) -> None:
        """Views alias their input (no node when the per-sample shape is unchanged); copies write a buffer."""
        src = self.node(x)
        assert src is not None
        if o is x:
            return
        if _shares_storage(o, x):
            if self.ps(o) == self.recs[src].out_shape:
                self.node_of[id(o)] = (src, o)  # a no-op view: readers of ``o`` read ``src``
                return
            if o.numel() < x.numel():
                op = "slice"
            elif name == "flatten" or (len(self.ps(o)) == 1 and len(self.recs[src].out_shape) > 1):
                op = "flatten"
            else:
                op = "reshape"
            self.emit(op, [x], o)
            return
        groups, source = self.shuffle_groups(src, o)
        if groups:
            self.emit("channel_shuffle", [source], o, self.ps(source), groups=groups)
        else:
            self.emit("copy", [x], o)

    def shuffle_groups(self, src: int, o: Tensor) -> tuple[int, Tensor]:
        """(groups, source tensor) when ``o`` holds ``channel_shuffle(source, groups)`` of the view chain's
        source; (0, o) otherwise."""
        chain: list[Shape] = []
        i = src
        while self.recs[i].op in ("reshape",) and self.recs[i].inputs:
            chain.append(self.recs[i].out_shape)
            i = self.recs[i].inputs[0]
        source = self.tensors[i]
        shape = self.recs[i].out_shape
        if source is None or len(shape) != 3 or o.numel() != source.numel() or source.dim() != 4:
            return 0, o
        c, h, w = shape
        for s in chain:
            if len(s) == 4 and s[0] * s[1] == c and s[2:] == (h, w) and 1 < s[0] < c:
                g = s[0]
                if torch.equal(o.reshape(source.shape), torch.channel_shuffle(source, g)):
                    return g, source
        return 0, o


def _finish(recs: list[_Rec], leaves: set[str], out_node: int | None) -> list[Node]:
    """Drop unread alias views, then name nodes after their module paths."""
    keep = [True] * len(recs)
    changed = True
    while changed:
        changed = False
        read = set()
        for i, r in enumerate(recs):
            if keep[i]:
                read.update(r.inputs)
        for i, r in enumerate(recs):
            if keep[i] and r.op in ALIAS_MOVES and i not in read and i != out_node:
                keep[i] = False
                changed = True
    new_index: dict[int, int] = {}
    kept: list[_Rec] = []
    for i, r in enumerate(recs):
        if keep[i]:
            new_index[i] = len(kept)
            kept.append(r)
    per_scope: dict[str, int] = {}
    for r in kept[1:]:
        per_scope[r.scope] = per_scope.get(r.scope, 0) + 1
    counts: dict[tuple[str, str], int] = {}
    nodes: list[Node] = []
    for r in kept:
        if r.op == "input":
            name = "input"
        elif r.scope and r.scope in leaves and per_scope[r.scope] == 1:
            name = r.scope
        else:
            n = counts.get((r.scope, r.op), 0)
            counts[(r.scope, r.op)] = n + 1
            leaf = f"{r.op}{n}" if n else r.op
            name = f"{r.scope}.{leaf}" if r.scope else leaf
        nodes.append(Node(name, r.op, tuple(new_index[i] for i in r.inputs), tuple(r.in_shapes), r.out_shape,
                          r.attrs))
    return nodes


def trace(module: nn.Module, input_shape: Sequence[int]) -> list[Node]:
    """The IR of one forward of ``module`` on a random input of ``input_shape`` (no batch dim), in eval mode.

    Raises ``NasforgeError`` for a bad shape or when the module cannot run on it (e.g. too small an input).
    """
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise NasforgeError(f"input shape {input_shape!r} must be a sequence of positive integers") from None
    if not shape or any(s <= 0 for s in shape):
        raise NasforgeError(f"input shape {shape} must be non-empty with positive sizes")
    gen = torch.Generator().manual_seed(0)
    param = next(module.parameters(), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    x = torch.randn((1, *shape), generator=gen, dtype=torch.float32).to(device=device, dtype=dtype)

    names = {m: n for n, m in module.named_modules()}
    leaves = {n for n, m in module.named_modules() if n and next(m.children(), None) is None}
    modes = {m: m.training for m in module.modules()}
    tracer = _Tracer(module)

    def pre(m: nn.Module, _args: Any) -> None:
        tracer.scope.append(names.get(m, tracer.scope[-1]))

    def post(m: nn.Module, _args: Any, _out: Any) -> None:
        if len(tracer.scope) > 1:
            tracer.scope.pop()

    handles = []
    for m in names:
        if m is not module:
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
    module.eval()
    try:
        tracer.start(x)
        with torch.no_grad(), tracer:
            y = module(x)
    except (RuntimeError, ValueError, IndexError) as e:
        if isinstance(e, NasforgeError):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NasforgeError(f"{type(module).__name__} cannot run on input shape {shape}: {first}") from None
    finally:
        for h in handles:
            h.remove()
        for m, t in modes.items():
            m.train(t)
    outs = list(_tensors(y))
    out_node = tracer.node(outs[0]) if outs else None
    return _finish(tracer.recs, leaves, out_node)

