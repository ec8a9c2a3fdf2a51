"""The rule table: op name -> pure function of a node giving its params, MACs and other arithmetic.

``macs`` counts only the multiply-accumulates of conv, linear and matmul (no bias, batch norm,
pooling or activations), per sample. Everything else a layer computes goes to ``other_ops``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from nasforge.cost._ir import Node


class OpCost(NamedTuple):
    params: int
    macs: int
    other_ops: int = 0


Rule = Callable[[Node], OpCost]

FREE = OpCost(0, 0, 0)


def conv2d_rule(n: Node) -> OpCost:
    """Conv (also grouped, depthwise, 1x1): weights c_o*(c_i/g)*k_h*k_w, MACs that times h_o*w_o.

    The bias adds one op per output element. A weight already counted by an earlier node (attr ``shared``,
    a module run twice) adds no params again. The same rule serves conv1d/conv3d (``kernel`` has 1 or 3 sizes).
    """
    a = n.attrs
    co = a["out_channels"]
    out = n.out_numel  # = c_o*h_o*w_o
    per_out = (a["in_channels"] // a["groups"]) * math.prod(a["kernel"])
    params = 0 if a.get("shared") else co * per_out + (co if a["bias"] else 0)
    return OpCost(params, out * per_out, out if a["bias"] else 0)


def conv_transpose_rule(n: Node) -> OpCost:
    """Transposed conv: weights c_i*(c_o/g)*k...; each input element meets (c_o/g)*k... weights."""
    a = n.attrs
    per_in = (a["out_channels"] // a["groups"]) * math.prod(a["kernel"])
    params = 0 if a.get("shared") else a["in_channels"] * per_in + (a["out_channels"] if a["bias"] else 0)
    return OpCost(params, math.prod(n.in_shapes[0]) * per_in, n.out_numel if a["bias"] else 0)


def attention_rule(n: Node) -> OpCost:
    """Attention (``F.scaled_dot_product_attention``, ``nn.MultiheadAttention``): the tracer computes the
    MACs of the projections and the two products (attrs ``macs``, ``params``, ``other_ops``: softmax, biases)."""
    a = n.attrs
    return OpCost(a.get("params", 0), a["macs"], a.get("other_ops", 0))


def linear_rule(n: Node) -> OpCost:
    """Linear: weights c_o*c_i (+c_o bias), MACs c_o*c_i per row of the input."""
    a = n.attrs
    ci, co = a["in_features"], a["out_features"]
    rows = math.prod(n.out_shape[:-1])
    params = 0 if a.get("shared") else co * ci + (co if a["bias"] else 0)
    return OpCost(params, rows * co * ci, rows * co if a["bias"] else 0)


def matmul_rule(n: Node) -> OpCost:
    """matmul/bmm: one multiply-accumulate per output element per inner-dimension step.

    ``params`` (attr) counts a learned operand (``x @ self.w`` in a traced module)."""
    return OpCost(n.attrs.get("params", 0), n.out_numel * n.in_shapes[0][-1])


def batchnorm_rule(n: Node) -> OpCost:
    """Batch norm: 2 learnable params per channel (running stats are buffers); scale+shift per element."""
    a = n.attrs
    params = 0 if a.get("shared") or not a.get("affine", True) else 2 * a["num_features"]
    return OpCost(params, 0, 2 * n.out_numel)


def norm_rule(n: Node) -> OpCost:
    """Layer/group norm: the learned scale and shift (attr ``params``); normalise, scale, shift per element."""
    return OpCost(n.attrs.get("params", 0), 0, 2 * n.out_numel)


def elementwise_rule(n: Node) -> OpCost:
    """Activations, add, mul: one op per output element (attr ``params``: a learned operand such as a scale)."""
    return OpCost(n.attrs.get("params", 0), 0, n.out_numel)


def pool_rule(n: Node) -> OpCost:
    """Pooling: kernel-size comparisons/additions per output element (1-d, 2-d or 3-d kernels)."""
    return OpCost(0, 0, n.out_numel * math.prod(n.attrs["kernel"]))


def adaptive_pool_rule(n: Node) -> OpCost:
    """Global/adaptive pooling: every input element is read once."""
    return OpCost(0, 0, math.prod(n.in_shapes[0]))


def learned_rule(n: Node) -> OpCost:
    """Data movement that may carry a learned operand (attr ``params``, e.g. a class token concatenated)."""
    return OpCost(n.attrs.get("params", 0), 0, 0)


def free_rule(n: Node) -> OpCost:
    """Data movement only (concat, views, shuffles, dropout at inference): no arithmetic."""
    return FREE


RULES: dict[str, Rule] = {
    "input": free_rule,
    "conv2d": conv2d_rule,
    "conv1d": conv2d_rule,
    "conv3d": conv2d_rule,
    "conv_transpose1d": conv_transpose_rule,
    "conv_transpose2d": conv_transpose_rule,
    "conv_transpose3d": conv_transpose_rule,
    "attention": attention_rule,
    "linear": linear_rule,
    "matmul": matmul_rule,
    "batchnorm": batchnorm_rule,
    "relu": elementwise_rule,
    "relu6": elementwise_rule,
    "leaky_relu": elementwise_rule,
    "sigmoid": elementwise_rule,
    "hsigmoid": elementwise_rule,
    "hswish": elementwise_rule,
    "silu": elementwise_rule,
    "gelu": elementwise_rule,
    "tanh": elementwise_rule,
    "hardtanh": elementwise_rule,
    "clamp": elementwise_rule,
    "elu": elementwise_rule,
    "mish": elementwise_rule,
    "softmax": elementwise_rule,
    "add": elementwise_rule,
    "sub": elementwise_rule,
    "mul": elementwise_rule,
    "div": elementwise_rule,
    "max": elementwise_rule,
    "min": elementwise_rule,
    "upsample": elementwise_rule,
    "layernorm": norm_rule,
    "groupnorm": norm_rule,
    "maxpool": pool_rule,
    "avgpool": pool_rule,
    "adaptive_avgpool": adaptive_pool_rule,
    "adaptive_maxpool": adaptive_pool_rule,
    "mean": adaptive_pool_rule,
    "sum": adaptive_pool_rule,
    "max_reduce": adaptive_pool_rule,
    "cat": learned_rule,
    "flatten": free_rule,
    "reshape": free_rule,
    "slice": free_rule,
    "channel_shuffle": free_rule,
    "dropout": free_rule,
    "identity": free_rule,
    "zero": free_rule,
    "fill": free_rule,
    "copy": free_rule,
    "pad": free_rule,
}


def register_rule(op: str, rule: Rule) -> None:
    """Add or replace the rule for ``op`` (a name the analytic builder or the tracer emits)."""
    RULES[op] = rule
