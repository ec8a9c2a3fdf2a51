"""The supernet registry: every registered supernet builds from its example space, runs its input shape, is
seeded without touching the caller's torch RNG, and a space without a supernet is one clear error."""

from __future__ import annotations

import numpy as np
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


@pytest.mark.parametrize("name", list_supernets())
def test_every_supernet_builds_seeded_and_fixes_to_its_standalone(name: str) -> None:
    space = example_space(name)
    before = torch.get_rng_state()
    a, b = make_supernet(space, seed=3), make_supernet(space, seed=3)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's RNG neither seeded nor drawn from
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    c = make_supernet(space, seed=4)
    assert not all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), c.state_dict().values(), strict=True))
    arch = a.sample(np.random.default_rng(0))
    x = torch.randn(2, *a.input_shape(), generator=torch.Generator().manual_seed(0))
    a.eval()
    std = a.to_standalone(arch).eval()
    with torch.no_grad():
        assert torch.allclose(a.fix(arch)(x), std(x), atol=1e-5)
    assert space.parse(str(a.derive())) == a.derive()


def test_space_without_supernet_and_bad_option_are_clear_errors() -> None:
    with pytest.raises(NasforgeError, match=r"'lattice' has no supernet; supernets exist for: config, darts"):
        make_supernet(get_space("lattice"))
    with pytest.raises(NasforgeError, match=r"unknown supernet option.*width.*allowed: seed, num_classes"):
        make_supernet(example_space("nb201"), width=1.0)
    with pytest.raises(NasforgeError, match="'nope' has no supernet"):
        example_space("nope")
