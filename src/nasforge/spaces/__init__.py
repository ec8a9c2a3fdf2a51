"""Search spaces: the ``SearchSpace`` contract, ``Architecture`` values, their ``Result``, the registry."""

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

# Spaces register themselves when imported (one import line per space module).
from nasforge.spaces import config as _config  # noqa: F401
from nasforge.spaces import darts as _darts  # noqa: F401
from nasforge.spaces import lattice as _lattice  # noqa: F401
from nasforge.spaces import mobilenet as _mobilenet  # noqa: F401
from nasforge.spaces import nasfpn as _nasfpn  # noqa: F401
from nasforge.spaces import nasnet as _nasnet  # noqa: F401
from nasforge.spaces import nb201 as _nb201  # noqa: F401
