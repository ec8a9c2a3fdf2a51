"""The shared one-shot loop: the same seed gives the same result without global seeding (and the caller's
torch RNG is untouched), progress comes per step, accuracies are fractions, and a search whose architecture
parameters barely moved says so."""

from __future__ import annotations

import pytest
import torch

from nasforge.oneshot import darts, make_supernet, proxyless, retrain, spos
from nasforge.oneshot._registry import example_space
from nasforge.oneshot._training import ALPHA_STILL

torch.set_num_threads(1)


def data(n: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def run(method: str, seed: int, **kw):
    net = make_supernet(example_space("nb201"), seed=seed)
    train, val = data(32, 1), data(16, 2)
    if method == "darts":
        res = darts(net, train, val, epochs=2, batch_size=8, seed=seed, **kw)
    elif method == "proxyless":
        res = proxyless(net, train, val, epochs=2, batch_size=8, seed=seed, **kw)
    else:
        res = spos(net, train, epochs=2, batch_size=8, seed=seed, **kw)
    return net, res


@pytest.mark.parametrize("method", [pytest.param("darts", marks=pytest.mark.slow), "proxyless", "spos"])
def test_same_seed_same_result_without_touching_the_global_rng(method: str) -> None:
    torch.random.manual_seed(123)  # the test's own global state, which the runs must neither use nor move
    before = torch.get_rng_state()
    net_a, a = run(method, seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    torch.rand(7)  # a different global state must not change the run
    net_b, b = run(method, seed=5)
    assert (a.arch, a.history, a.derived) == (b.arch, b.history, b.derived)
    for (name, p), q in zip(net_a.state_dict().items(), net_b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    net_c, _ = run(method, seed=6)
    assert not all(torch.equal(p, q) for p, q in zip(net_a.state_dict().values(), net_c.state_dict().values(),
                                                        strict=True))


def test_progress_comes_per_step_and_accuracies_are_fractions() -> None:
    calls: list[tuple[int, dict[str, float]]] = []
    _, res = run("darts", seed=0, progress=lambda ep, info: calls.append((ep, dict(info))))
    assert [(ep, c["step"]) for ep, c in calls] == [(e, s) for e in (1, 2) for s in (1, 2, 3, 4)]
    assert all(c["steps"] == 4 and c["loss"] > 0 for _, c in calls)
    ends = [c for _, c in calls if c["step"] == c["steps"]]
    assert len(ends) == 2 and all(0 <= c["supernet_val_acc"] <= 1 for c in ends)
    assert 0 <= res.info["supernet_val_acc"] <= 1 and len(res.info["supernet_val_acc_per_epoch"]) == 2


@pytest.mark.slow
def test_alpha_that_barely_moved_is_warned_about() -> None:
    _, still = run("darts", seed=0, arch_lr=0.0)
    assert still.info["alpha_max_prob_change"] < ALPHA_STILL
    assert len(still.warnings) == 1 and "barely moved" in still.warnings[0]
    _, moved = run("darts", seed=0, arch_lr=0.1)
    assert moved.info["alpha_max_prob_change"] > ALPHA_STILL and moved.warnings == []
    _, sp = run("spos", seed=0)
    assert sp.warnings == [] and "alpha_max_prob_change" not in sp.info  # SPOS has no architecture parameters
    assert sp.history == [] and sp.derived == [] and sp.epochs == 2  # nor probabilities to plot


@pytest.mark.slow
def test_retrain_trains_the_derived_network_from_fresh_weights() -> None:
    net, res = run("darts", seed=0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    out = retrain(net, res.arch, data(32, 1), data(16, 2), epochs=1, batch_size=8, seed=0)
    assert 0 <= out["retrain_val_acc"] <= 1 and out["retrain_epochs"] == 1 and out["retrain_seconds"] > 0
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # the supernet is left alone
