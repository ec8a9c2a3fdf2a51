"""DARTS-cell and MobileNet supernets on tiny settings: the fixed sub-network equals the stand-alone network
with the same weights, derived archs are valid (also after training), DARTS' derive rule, ProxylessNAS
memory below DARTS', latency tables and the unsupported-space error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge.errors import NasforgeError
from nasforge.oneshot import darts, make_supernet, proxyless, spos
from nasforge.oneshot._latency import latency_range, measure_choice_latency, path_latency
from nasforge.oneshot._memory import step_peak_memory
from nasforge.spaces import get_space

torch.set_num_threads(1)


def darts_space():
    return get_space("darts", C=4, layers=3, resolution=8)


def mobile_space():
    return get_space("mobilenet", stage_channels=[8, 16], stage_strides=[2, 1], depths=[1, 2, 3], kernels=[3, 5],
                     expands=[1, 3], widths=[0.5, 1.0], resolutions=[8, 16], num_classes=10, stem_channels=8,
                     first_channels=8, head_channels=16)


def data(n: int = 16, seed: int = 0, res: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, res, res, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.mark.parametrize("make", [darts_space, mobile_space])
def test_fixed_subnet_equals_standalone(make) -> None:
    space = make()
    net = make_supernet(space, **({"resolution": 8, "width": 1.0} if space.name == "mobilenet" else {}))
    # train a little so batch norm statistics and weights are not at their init values
    spos(net, data(16), epochs=1, batch_size=8)
    rng = np.random.default_rng(0)
    x = data(2, seed=3)[0]
    archs = [space.sample(rng) for _ in range(20)]
    if space.name == "mobilenet":
        archs = [space.decode([0, 1, *a.choices[2:]]) for a in archs]  # the supernet's resolution and width
    for arch in archs[:6]:
        net.fix(arch).eval()
        std = net.to_standalone(arch).eval()
        assert sum(p.numel() for p in std.parameters()) == space.cost(arch).params
        with torch.no_grad():
            assert torch.allclose(net(x), std(x), atol=1e-5)
        assert net.choices_of(arch) == net.choices_of(space.parse(str(arch)))


def test_darts_derive_is_top2_edges_and_best_ops() -> None:
    space = darts_space()
    net = make_supernet(space)
    ops = net.ops
    with torch.no_grad():
        net.alpha.zero_()
        net.alpha[:, ops.index("none")] = 5.0  # none dominates everywhere: it must still be ignored
        # normal node 1 (inputs 0, 1, 2): edge 2 sep_conv_5x5 strongest, edge 0 dil_conv_3x3 second
        base = 2  # node 0 has 2 edges
        net.alpha[base + 2, ops.index("sep_conv_5x5")] = 3.0
        net.alpha[base + 0, ops.index("dil_conv_3x3")] = 2.0
        net.alpha[base + 1, ops.index("max_pool_3x3")] = 1.0
    arch = net.derive()
    node1 = space.genotype(arch)["normal"][1]
    assert node1 == (("dil_conv_3x3", 0), ("sep_conv_5x5", 2))
    assert space.parse(str(arch)) == arch
    # fixing the derived arch turns every other edge off
    ch = net.choices_of(arch)
    assert sum(1 for c in ch if c != net.none) <= 2 * 2 * space.nodes


def test_mobilenet_derive_depth_from_skip_probabilities() -> None:
    space = mobile_space()
    net = make_supernet(space, resolution=8, width=1.0)
    names = net.unit_names
    with torch.no_grad():
        net.alpha.zero_()
        for k, lab in enumerate(net.unit_labels):
            if "skip" in lab:
                net.alpha[k, lab.index("skip")] = 4.0  # every optional slot skipped ...
            net.alpha[k, lab.index("k5e3") if "k5e3" in lab else 0] += 2.0
        k = names.index("s3.b3")  # ... but the last slot of stage 2 kept: depth 2 with blocks b1, b3
        net.alpha[k, net.unit_labels[k].index("skip")] = -4.0
    arch = net.derive()
    assert str(arch) == "r8-w1|k3e1|k5e3|k5e3,k5e3"
    assert space.parse(str(arch)) == arch
    with pytest.raises(NasforgeError, match="fixed at resolution 8"):
        net.fix(space.parse("r16-w1|k3e1|k5e3|k5e3"))


@pytest.mark.parametrize("make", [pytest.param(darts_space, marks=pytest.mark.slow), mobile_space])
def test_methods_derive_valid_archs(make) -> None:
    space = make()
    opts = {"resolution": 8, "width": 0.5} if space.name == "mobilenet" else {}
    res = darts(make_supernet(space, **opts), data(), data(seed=1), epochs=1, batch_size=8)
    assert space.parse(str(res.arch)) == res.arch and len(res.history) == 1
    net = make_supernet(space, **opts)
    info: dict[str, float] = {}
    table, base = measure_choice_latency(net, (3, 8, 8), repeats=2, warmup=0, calibrate=4, rounds=2, min_time_s=0,
                                         max_fit_err=-1, attempts=2, info=info)  # a fit never good enough
    assert info["calibration_networks"] >= 4 and info["calibration_slope"] > 0
    assert info["calibration_attempts"] == 2  # so the table was measured again, and the better fit kept
    lo, hi = latency_range(table, net.unit_sizes(), base)
    assert table.shape == net.alpha.shape and 0 <= lo < hi
    res = proxyless(net, data(), data(seed=1), epochs=1, batch_size=8, latency_table=table, base_latency_ms=base,
                    latency_target_ms=(lo + hi) / 2)
    assert space.parse(str(res.arch)) == res.arch
    assert res.info["predicted_latency_ms"] == pytest.approx(path_latency(net, table, res.arch, base))
    assert lo <= res.info["expected_latency_ms"] <= hi
    with pytest.raises(NasforgeError, match=r"derive_window=1\.5 must be in"):
        proxyless(net, data(), data(seed=1), epochs=1, latency_table=table, base_latency_ms=base, derive_window=1.5)


def test_proxyless_step_memory_below_a_third_of_darts() -> None:
    space = darts_space()  # 8 candidate ops per edge
    net = make_supernet(space)
    x, y = data(8)
    mem = {m: step_peak_memory(net, m, x, y)["peak_memory_bytes"] for m in ("darts", "proxyless")}
    assert 0 < mem["proxyless"] <= mem["darts"] / 3


def test_space_without_supernet_and_bad_options() -> None:
    with pytest.raises(NasforgeError, match="supernets exist for: config, darts, mobilenet, nb201"):
        make_supernet(get_space("nasnet"))
    with pytest.raises(NasforgeError, match=r"width=0\.3 is not a choice"):
        make_supernet(mobile_space(), width=0.3)
    with pytest.raises(NasforgeError, match="unknown supernet option"):
        make_supernet(darts_space(), resolution=8)


@pytest.mark.slow
def test_derive_under_latency_is_the_most_probable_path_within_the_target() -> None:
    import itertools

    from nasforge.oneshot._method_proxyless import derive_under_latency

    space = mobile_space()
    net = make_supernet(space, resolution=8, width=1.0)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        net.alpha.copy_(torch.randn(net.alpha.shape, generator=g))
    table = torch.rand(net.alpha.shape, generator=g)
    sizes = net.unit_sizes()
    logp = torch.log(net.probs().detach())
    target = 2.0
    best, best_lp = None, -1e9  # brute force over every path of the 7 units
    for path in itertools.product(*(range(n) for n in sizes)):
        lat = sum(float(table[k, c]) for k, c in enumerate(path))
        lp = sum(float(logp[k, c]) for k, c in enumerate(path))
        if lat <= target and lp > best_lp:
            best, best_lp = path, lp
    assert best is not None
    assert derive_under_latency(net, table, 0.0, target) == net.arch_of(best)
    # with a floor, the most probable path in [floor, target]
    best2, best_lp2 = None, -1e9
    for path in itertools.product(*(range(n) for n in sizes)):
        lat = sum(float(table[k, c]) for k, c in enumerate(path))
        lp = sum(float(logp[k, c]) for k, c in enumerate(path))
        if 1.8 <= lat <= target and lp > best_lp2:
            best2, best_lp2 = path, lp
    assert best2 is not None
    assert derive_under_latency(net, table, 0.0, target, min_ms=1.8) == net.arch_of(best2)
    # whole-ms entries and cheap paths most probable: nothing lies in [2.4, 2.5], so the window slides down to
    # [1.9, 2.0] (the most probable path under the target would cost less)
    whole = torch.randint(0, 2, net.alpha.shape, generator=g).float()
    with torch.no_grad():
        net.alpha.copy_(-3 * whole + 0.1 * torch.randn(net.alpha.shape, generator=g))
    logp = torch.log(net.probs().detach())
    best3, best_lp3 = None, -1e9
    for path in itertools.product(*(range(n) for n in sizes)):
        lat = sum(float(whole[k, c]) for k, c in enumerate(path))
        lp = sum(float(logp[k, c]) for k, c in enumerate(path))
        if lat == 2.0 and lp > best_lp3:
            best3, best_lp3 = path, lp
    assert best3 is not None
    assert derive_under_latency(net, whole, 0.0, 2.5, min_ms=2.4) == net.arch_of(best3)
