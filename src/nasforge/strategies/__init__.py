"""Search strategies: ask/tell only, over any space's decisions."""

from __future__ import annotations

from nasforge.strategies._base import Strategy, get_strategy, list_strategies, register_strategy

__all__ = ["Strategy", "get_strategy", "list_strategies", "register_strategy"]
