"""Exact cost of networks: params, MACs, other ops, activation and peak memory, weight bytes.

Two ways in: the analytic path (specs emit layers into a ``GraphBuilder``, no torch) and
``profile(module, input_shape)`` which traces any ``torch.nn.Module`` into the same IR; ``register_rule(op, fn)``
extends the rule table (``fn(node) -> OpCost``). The IR, the totals and the peak-memory engines are in the
private modules (``_ir``, ``_cost``, ``_macro``, ``_rules``, ``_trace``).
"""

from __future__ import annotations

from nasforge.cost._cost import Cost
from nasforge.cost._ir import GraphBuilder
from nasforge.cost._profile import profile
from nasforge.cost._rules import OpCost, register_rule

__all__ = ["Cost", "GraphBuilder", "OpCost", "profile", "register_rule"]
