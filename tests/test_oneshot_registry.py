"""The supernet registry: what it lists, and a space without a supernet is one clear error. What every registered
supernet must do (seeding, fix == stand-alone, derive) is checked by nasforge.testing's SupernetSuite
(tests/test_supernets_conformance.py)."""

from __future__ import annotations

import pytest
import torch

from nasforge.errors import NasforgeError
from nasforge.oneshot import list_supernets, make_supernet
from nasforge.oneshot._registry import METHODS, example_space
from nasforge.spaces import get_space

torch.set_num_threads(1)


def test_registry_lists_the_supernets_and_methods() -> None:
    assert set(list_supernets()) >= {"nb201", "darts", "mobilenet", "config"}
    assert METHODS == ("darts", "proxyless", "spos")


def test_space_without_supernet_and_bad_option_are_clear_errors() -> None:
    with pytest.raises(NasforgeError, match=r"'lattice' has no supernet; supernets exist for: config, darts"):
        make_supernet(get_space("lattice"))
    with pytest.raises(NasforgeError, match=r"unknown supernet option.*width.*allowed: seed, num_classes"):
        make_supernet(example_space("nb201"), width=1.0)
    with pytest.raises(NasforgeError, match="'nope' has no supernet"):
        example_space("nope")
