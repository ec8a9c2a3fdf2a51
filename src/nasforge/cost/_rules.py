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
    """Conv (also grouped, depthwise, 1x1): weights c_o*(c_i/g)*k_h*k_w, MACs that times h_o*w_o."""
    a = n.attrs
    kh, kw = a["kernel"]
    co, ho, wo = n.out_shape
    per_out = (a["in_channels"] // a["groups"]) * kh * kw
    bias = co if a["bias"] else 0
    return OpCost(co * per_out + bias, co * per_out * ho * wo, co * ho * wo if a["bias"] else 0)


def linear_rule(n: Node) -> OpCost:
    """Linear: weights c_o*c_i (+c_o bias), MACs c_o*c_i per row of the input."""
    a = n.attrs
    ci, co = a["in_features"], a["out_features"]
    rows = math.prod(n.out_shape[:-1])
    return OpCost(co * ci + (co if a["bias"] else 0), rows * co * ci, rows * co if a["bias"] else 0)


def matmul_rule(n: Node) -> OpCost:
    """matmul/bmm: one multiply-accumulate per output element per inner-dimension step."""
    return OpCost(0, n.out_numel * n.in_shapes[0][-1])


def batchnorm_rule(n: Node) -> OpCost:
    """Batch norm: 2 learnable params per channel (running stats are buffers); scale+shift per element."""
    return OpCost(2 * n.attrs["num_features"], 0, 2 * n.out_numel)


def elementwise_rule(n: Node) -> OpCost:
    """Activations, add, mul: one op per output element."""
    return OpCost(0, 0, n.out_numel)


def pool_rule(n: Node) -> OpCost:
    """Pooling: kernel-size comparisons/additions per output element."""
    kh, kw = n.attrs["kernel"]
    return OpCost(0, 0, n.out_numel * kh * kw)


def adaptive_pool_rule(n: Node) -> OpCost:
    """Global/adaptive pooling: every input element is read once."""
    return OpCost(0, 0, math.prod(n.in_shapes[0]))


def free_rule(n: Node) -> OpCost:
    """Data movement only (concat, views, shuffles, dropout at inference): no arithmetic."""
    return FREE


RULES: dict[str, Rule] = {
    "input": free_rule,
    "conv2d": conv2d_rule,
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
    "add": elementwise_rule,
    "mul": elementwise_rule,
    "maxpool": pool_rule,
    "avgpool": pool_rule,
    "adaptive_avgpool": adaptive_pool_rule,
    "cat": free_rule,
    "flatten": free_rule,
    "reshape": free_rule,
    "slice": free_rule,
    "channel_shuffle": free_rule,
    "dropout": free_rule,
    "identity": free_rule,
    "zero": free_rule,
}


def register_rule(op: str, rule: Rule) -> None:
    """Add or replace the rule for ``op`` (a name the analytic builder or the tracer emits)."""
    RULES[op] = rule
