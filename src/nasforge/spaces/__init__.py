"""Search spaces: the ``SearchSpace`` contract, ``Architecture`` values, their ``Result``, the registry.

The built-in spaces (one module each) are imported when ``get_space`` first asks for them."""

from __future__ import annotations

from nasforge.spaces._base import (
    TASKS,
    Architecture,
    Decision,
    SearchSpace,
    check_task,
    get_space,
    list_spaces,
    register_space,
)
from nasforge.spaces._result import Result

__all__ = [
    "TASKS",
    "Architecture",
    "Decision",
    "Result",
    "SearchSpace",
    "check_task",
    "get_space",
    "list_spaces",
    "register_space",
]
