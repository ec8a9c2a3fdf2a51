"""Exact cost of networks: params, MACs, other ops, activation and peak memory, weight bytes.

Two ways in: the analytic path (``GraphBuilder`` driven by block specs, no torch) and
``profile(module, input_shape)`` which traces any ``torch.nn.Module`` into the same IR.
"""

from __future__ import annotations

from nasforge.cost._cost import BYTES_PER_ELEMENT, Cost, LayerCost, Part, analyze, bytes_per_element, chain
from nasforge.cost._ir import ALIAS_OPS, GraphBuilder, Node, Shape, conv_out
from nasforge.cost._profile import profile
from nasforge.cost._rules import RULES, OpCost, Rule, register_rule

__all__ = [
    "ALIAS_OPS",
    "BYTES_PER_ELEMENT",
    "RULES",
    "Cost",
    "GraphBuilder",
    "LayerCost",
    "Node",
    "OpCost",
    "Part",
    "Rule",
    "Shape",
    "analyze",
    "bytes_per_element",
    "chain",
    "conv_out",
    "profile",
    "register_rule",
]
