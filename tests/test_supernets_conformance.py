"""Every registered supernet runs the conformance suite ``nasforge.testing.pytest_supernets.SupernetSuite``."""

from __future__ import annotations

from nasforge.oneshot import list_supernets
from nasforge.testing.pytest_supernets import SupernetSuite


class TestSupernets(SupernetSuite):
    pass


def test_every_built_in_supernet_is_enrolled() -> None:
    assert {"nb201", "darts", "mobilenet", "config"} <= set(list_supernets())
