"""The conformance suite of supernets: every registered supernet (``nasforge.oneshot.list_supernets``) runs it.

Each test builds the supernet of the registered example space (``example_space(name)``, small enough to train a
step in about a second). Checks: the fixed sub-network computes exactly what the stand-alone network of
``space.build(arch)`` computes with the same weights (after a training step, so batch-norm statistics and
weights are not at their init values); one SPOS step and one DARTS step run and change the weights (and the
architecture parameters for DARTS) and leave the caller's torch RNG as it was; ``derive`` gives a valid
architecture of the space that the supernet runs; the space fitted to a dataset (``for_data``, as the one-shot
job does it) has a supernet that trains; ``num_classes`` and ``seed`` work for every supernet (the same seed,
the same supernet).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from nasforge.oneshot import Supernet, darts, list_supernets, make_supernet, spos
from nasforge.oneshot._registry import example_space
from nasforge.spaces import Architecture, SearchSpace


def batch(net: Supernet, n: int, seed: int = 0, classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random images of the supernet's input shape and labels below ``classes``, from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *net.input_shape(), generator=g), torch.randint(0, classes, (n,), generator=g)


def _weights(net: Supernet) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.named_parameters() if k != "alpha"}


class SupernetSuite:
    """Subclass as ``class TestSupernets(SupernetSuite)`` in a test file: every test runs per registered supernet
    (``supernets`` limits the run to some names)."""

    supernets: tuple[str, ...] | None = None

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "supernet_name" in metafunc.fixturenames:
            metafunc.parametrize("supernet_name", list(self.supernets or list_supernets()))

    @pytest.fixture(autouse=True)
    def _one_torch_thread(self) -> Iterator[None]:
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(n)

    @pytest.fixture
    def space(self, supernet_name: str) -> SearchSpace:
        return example_space(supernet_name)

    def test_example_space_is_served_by_its_supernet(self, supernet_name: str, space: SearchSpace) -> None:
        net = make_supernet(space)
        assert net.space is space and space.name == supernet_name
        with torch.no_grad():
            y = net.eval()(batch(net, 2)[0])
        assert y.shape[0] == 2 and torch.isfinite(y).all()

    def test_fixed_subnet_equals_standalone(self, space: SearchSpace) -> None:
        net = make_supernet(space, seed=0)
        spos(net, batch(net, 16), epochs=1, batch_size=8, seed=0)  # weights and BN statistics off their init
        x = batch(net, 2, seed=3)[0]
        rng = np.random.default_rng(0)
        for _ in range(4):
            arch = net.sample(rng)
            net.fix(arch).eval()
            std = net.to_standalone(arch).eval()
            assert sum(p.numel() for p in std.parameters()) == space.cost(arch).params, str(arch)
            space.build(arch).load_state_dict(std.state_dict())  # the network of space.build, same structure
            with torch.no_grad():
                assert torch.allclose(net(x), std(x), atol=1e-5), str(arch)
            assert net.choices_of(arch) == net.choices_of(space.parse(str(arch)))

    def test_one_spos_step_changes_the_weights(self, space: SearchSpace) -> None:
        net = make_supernet(space, seed=0)
        before, rng = _weights(net), torch.get_rng_state()
        spos(net, batch(net, 8), epochs=1, batch_size=8, seed=0)  # one step
        after = _weights(net)
        assert torch.equal(torch.get_rng_state(), rng)  # seeded by its own generator, the caller's RNG untouched
        assert all(torch.isfinite(v).all() for v in after.values())
        assert any(not torch.equal(before[k], after[k]) for k in before)

    def test_one_darts_step_changes_weights_and_alpha(self, space: SearchSpace) -> None:
        net = make_supernet(space, seed=0)
        before, alpha, rng = _weights(net), net.alpha.detach().clone(), torch.get_rng_state()
        res = darts(net, batch(net, 8), batch(net, 8, seed=1), epochs=1, batch_size=8, arch_lr=0.1)
        after = _weights(net)
        assert torch.equal(torch.get_rng_state(), rng)
        assert all(torch.isfinite(v).all() for v in after.values()) and torch.isfinite(net.alpha).all()
        assert any(not torch.equal(before[k], after[k]) for k in before)
        assert not torch.equal(alpha, net.alpha.detach())
        self._check_valid(net, space, res.arch)

    def test_derive_gives_a_valid_architecture_the_supernet_runs(self, space: SearchSpace) -> None:
        net = make_supernet(space, seed=0)
        g = torch.Generator().manual_seed(5)
        for _ in range(3):
            with torch.no_grad():
                net.alpha.copy_(torch.randn(net.alpha.shape, generator=g))
            self._check_valid(net, space, net.derive())

    @pytest.mark.parametrize("data_shape", [(1, 8, 8), pytest.param((3, 12, 12), marks=pytest.mark.slow)])
    def test_supernet_of_the_space_fitted_to_data_trains(self, space: SearchSpace,
                                                          data_shape: tuple[int, int, int]) -> None:
        """What the one-shot job does: ``space.for_data(images, classes)``, then its supernet with those classes,
        then a training step and a derived architecture (``nasforge oneshot --space config`` failed here)."""
        fitted = space.for_data(data_shape, 5)
        net = make_supernet(fitted, num_classes=5, seed=0)
        assert net.input_shape()[0] in (data_shape[0], 3)
        x, y = batch(net, 8, classes=5)
        with torch.no_grad():
            assert net.eval()(x).shape == (8, 5)
        spos(net, (x, y), epochs=1, batch_size=8, seed=0)
        self._check_valid(net, fitted, net.derive())

    def test_num_classes_and_seed(self, space: SearchSpace) -> None:
        rng = torch.get_rng_state()
        a, b = make_supernet(space, num_classes=7, seed=1), make_supernet(space, num_classes=7, seed=1)
        c = make_supernet(space, num_classes=7, seed=2)
        assert torch.equal(torch.get_rng_state(), rng)  # the caller's RNG neither seeded nor drawn from
        with torch.no_grad():
            assert a.eval()(batch(a, 2)[0]).shape == (2, 7)
        sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert any(not torch.equal(sa[k], sc[k]) for k in sa)

    @staticmethod
    def _check_valid(net: Supernet, space: SearchSpace, arch: Architecture) -> None:
        assert arch.space == space.name and space.parse(str(arch)) == arch, str(arch)
        assert space.decode(space.encode(arch)) == arch
        with torch.no_grad():
            y = net.fix(arch).eval()(batch(net, 2)[0])
        assert y.shape[0] == 2 and torch.isfinite(y).all()
