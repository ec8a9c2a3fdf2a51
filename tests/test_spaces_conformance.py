"""Every registered space runs the conformance suite ``nasforge.testing.pytest_spaces.SpaceSuite``.

Registering a space enrols it; the suite's ``SMALL_OPTIONS`` gives the built-in spaces small settings.
"""

from __future__ import annotations

from nasforge.spaces import list_spaces
from nasforge.testing.pytest_spaces import SpaceSuite


class TestSpaces(SpaceSuite):
    pass


def test_every_built_in_space_is_enrolled() -> None:
    assert {"mobilenet", "nb201", "nasnet", "darts", "lattice", "config"} <= set(list_spaces())
