"""The ``mobilenet`` space: exact size, readable round-tripping strings, options, cost, build."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge.errors import NasforgeError
from nasforge.spaces import get_space
from nasforge.spaces._staged import make_divisible

SMALL = {"resolutions": [32, 48], "widths": [0.25, 0.5], "in_channels": 1, "num_classes": 10,
         "stage_channels": [16, 24], "stage_strides": [2, 2], "depths": [1, 2], "kernels": [3, 5],
         "expands": [3, 6], "head_channels": 64}


def test_default_space_is_proxylessnas_like() -> None:
    sp = get_space("mobilenet")
    names = [d.name for d in sp.decisions()]
    assert names[:2] == ["resolution", "width"]
    assert sp.decisions()[0].choices == tuple(range(48, 225, 16))
    # five stages of depth 2..4 with 9 (kernel, expand) pairs, one last stage of a single block
    per_stage = 9**2 + 9**3 + 9**4
    assert sp.size() == 12 * 9 * per_stage**5 * 9
    a = sp.parse("r224-w1|k3e1|k3e3,k3e3|k5e6,k5e6|k7e4,k7e4|k3e6,k3e6|k5e3,k5e3|k7e6")
    net = sp.network_spec(a)
    assert net.input_shape == (3, 224, 224)
    assert [b.out_ch for st in net.stages for b in st][:3] == [16, 24, 24]
    assert net.cost().output_shape == (1000,)


def test_size_formula_matches_enumeration() -> None:
    sp = get_space("mobilenet", **SMALL)
    archs = list(sp.enumerate())
    assert len(archs) == len(set(archs)) == sp.size() == 2 * 2 * (4 + 16) ** 2
    assert all(sp.parse(str(a)) == a for a in archs[:: max(1, len(archs) // 50)])


def test_canonical_string_is_readable_and_strict() -> None:
    sp = get_space("mobilenet", **SMALL)
    a = sp.parse("r48-w0.5|k3e1|k5e6,k3e3|k3e6")
    assert str(a) == "r48-w0.5|k3e1|k5e6,k3e3|k3e6"
    assert sp.decode(sp.encode(a)) == a
    assert sp.parse(" r48-w0.50|k3e1|k5e6.0,k3e3|k3e6 ") == a  # numbers may be written another way
    with pytest.raises(NasforgeError, match="kernel '7' is not a choice; allowed: 3, 5"):
        sp.parse("r48-w0.5|k3e1|k7e6|k3e6")
    with pytest.raises(NasforgeError, match="allowed depths: 1, 2"):
        sp.parse("r48-w0.5|k3e1|k5e6,k5e6,k5e6|k3e6")
    with pytest.raises(NasforgeError, match="expected k<kernel>e<expand>"):
        sp.parse("r48-w0.5|k3e1|e6k5|k3e6")
    with pytest.raises(NasforgeError, match="resolution '64' is not a choice"):
        sp.parse("r64-w0.5|k3e1|k5e6|k3e6")


def test_inactive_blocks_are_zeroed_and_depth_mutation_is_one_step() -> None:
    sp = get_space("mobilenet", **SMALL)
    rng = np.random.default_rng(1)
    for _ in range(200):
        a = sp.sample(rng)
        m = sp.mutate(a, rng)
        act_a, act_m = sp.active(a.choices), sp.active(m.choices)
        both = [i for i in range(len(a.choices)) if act_a[i] and act_m[i] and a.choices[i] != m.choices[i]]
        assert len(both) == 1
        assert all(c == 0 for c, on in zip(m.choices, act_m, strict=True) if not on)


def test_sampling_weights_depth_by_block_choices() -> None:
    sp = get_space("mobilenet", **{**SMALL, "resolutions": [32], "widths": [0.5]})
    rng = np.random.default_rng(0)
    depths = [len(str(sp.sample(rng)).split("|")[2].split(",")) for _ in range(4000)]
    # 4 one-block vs 16 two-block stage configurations: P(depth 2) = 0.8
    assert abs(np.mean(np.array(depths) == 2) - 0.8) < 0.03


def test_make_divisible_follows_mobilenetv2() -> None:
    assert [make_divisible(c) for c in (32 * 0.35, 16 * 0.5, 24 * 0.75, 1280 * 1.4, 3.2)] == [16, 8, 24, 1792, 8]


def test_bad_options_name_the_option() -> None:
    with pytest.raises(NasforgeError, match="'kernels' has bad value 4"):
        get_space("mobilenet", kernels=[3, 4])
    with pytest.raises(NasforgeError, match="'widths' must be a non-empty list"):
        get_space("mobilenet", widths=[])
    with pytest.raises(NasforgeError, match="'stage_strides' has 2 values"):
        get_space("mobilenet", stage_channels=[16, 24, 32], stage_strides=[2, 2])
    with pytest.raises(NasforgeError, match="bad option for space 'mobilenet'"):
        get_space("mobilenet", colour="red")
    with pytest.raises(NasforgeError, match="'head_scale' has bad value 'yes'; allowed: true, false"):
        get_space("mobilenet", head_scale="yes")


def test_head_scale_shrinks_the_head_with_the_width() -> None:
    # MobileNetV2 keeps 1280 head channels below width 1 (and scales them above); MCUNet scales them always
    text = "r96-w0.5|k3e1|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3|k3e3,k3e3|k3e3"
    fixed = get_space("mobilenet", widths=[0.5, 1.5])
    scaled = get_space("mobilenet", widths=[0.5, 1.5], head_scale=True)
    a, b = fixed.parse(text), scaled.parse(text)
    assert fixed.network_spec(a).head[0].out_ch == 1280 and scaled.network_spec(b).head[0].out_ch == 640
    wide = text.replace("w0.5", "w1.5")
    assert fixed.network_spec(fixed.parse(wide)).head[0].out_ch == 1920
    assert scaled.network_spec(scaled.parse(wide)).head[0].out_ch == 1920
    # 1000-class classifier: 1281 * 1000 params at the fixed head, 641 * 1000 when it scales
    assert fixed.cost(a).params - scaled.cost(b).params > 640_000
    assert scaled.cost(b).params == scaled.network_spec(b).cost(layers=True).params


def test_cost_fast_path_equals_network_cost_and_build() -> None:
    torch.set_num_threads(1)
    sp = get_space("mobilenet", **SMALL)
    rng = np.random.default_rng(3)
    for _ in range(20):
        a = sp.sample(rng)
        fast, full = sp.cost(a), sp.network_spec(a).cost(layers=True)
        assert (fast.params, fast.macs, fast.other_ops, fast.activations, fast.peak_activations) == (
            full.params, full.macs, full.other_ops, full.activations, full.peak_activations)
    m = sp.build(a, num_classes=3)
    assert sum(p.numel() for p in m.parameters()) == sp.network_spec(a, num_classes=3).cost().params
    assert m(torch.randn(2, *sp.input_shape(a))).shape == (2, 3)
    assert sp.cost(a, resolution=64).input_shape == (1, 64, 64)
    assert sp.cost(a, precision="int8").peak_memory_bytes == fast.peak_activations
