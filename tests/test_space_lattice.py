"""The ``lattice`` space (Auto-DeepLab-style paths): exact DP size, valid moves, heads, cost by level."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from nasforge.errors import NasforgeError
from nasforge.spaces import get_space


@pytest.mark.parametrize(("layers", "levels"), [(1, 1), (1, 4), (3, 2), (5, 3), (7, 4)])
def test_size_counts_valid_paths_by_brute_force(layers: int, levels: int) -> None:
    sp = get_space("lattice", layers=layers, levels=levels)
    valid = 0
    for moves in itertools.product((1, 0, -1), repeat=layers):
        lv = list(itertools.accumulate(moves))
        valid += all(0 <= x < levels for x in lv)
    assert sp.size() == valid == len(set(sp.enumerate()))


def test_size_is_exact_for_long_paths() -> None:
    """Compare the DP with a transfer-matrix power in Python ints (another method)."""
    layers, levels = 200, 4
    t = np.array([[1 if abs(i - j) <= 1 else 0 for j in range(levels)] for i in range(levels)], dtype=object)
    v = np.array([1, 0, 0, 0], dtype=object)
    for _ in range(layers):
        v = v.dot(t)
    n = get_space("lattice", layers=layers, levels=levels).size()
    assert isinstance(n, int) and n == int(sum(v)) > 2**200


def test_strings_and_errors() -> None:
    sp = get_space("lattice", layers=4, levels=3)
    a = sp.parse("8-16-8-4")
    assert str(a) == "8-16-8-4" and sp.path(a) == [1, 2, 1, 0]
    assert [sp.decisions()[i].choices[c] for i, c in enumerate(a.choices)] == ["down", "down", "up", "up"]
    with pytest.raises(NasforgeError, match="layer 2 jumps from 1/4 to 1/16"):
        sp.parse("4-16-8-4")
    with pytest.raises(NasforgeError, match="factor '32'; allowed: 4, 8, 16"):
        sp.parse("8-16-32-16")
    with pytest.raises(NasforgeError, match="expected 4 downsampling factors"):
        sp.parse("8-16")
    with pytest.raises(NasforgeError, match="'head' has bad value 'seg'; allowed: classification, dense"):
        get_space("lattice", head="seg")


def test_out_of_bounds_moves_clamp_to_stay() -> None:
    sp = get_space("lattice", layers=3, levels=2)
    a = sp.decode([2, 0, 0])  # up from 1/4 is impossible: stays, then down, then down is impossible
    assert str(a) == "4-8-8"
    assert a == sp.parse("4-8-8")


def test_mutate_changes_one_move_and_stays_in_the_lattice() -> None:
    sp = get_space("lattice", layers=10, levels=3)
    rng = np.random.default_rng(0)
    for _ in range(300):
        a = sp.sample(rng)
        m = sp.mutate(a, rng)
        assert sum(x != y for x, y in zip(a.choices, m.choices, strict=True)) == 1
        assert all(0 <= lv < 3 for lv in sp.path(m))
        assert sp.decode(m.choices) == m  # no clamping was needed
    assert all(sum(x != y for x, y in zip(a.choices, n.choices, strict=True)) == 1 for n in sp.neighbours(a))


def test_dense_head_predicts_at_quarter_resolution() -> None:
    torch.set_num_threads(1)
    sp = get_space("lattice", layers=3, levels=3, base_channels=4, resolution=40, head="dense", num_classes=5)
    a = sp.parse("8-16-16")
    out = sp.build(a)(torch.randn(2, 3, 40, 40))
    assert out.shape == (2, 5, 10, 10) == (2, *sp.cost(a).output_shape)


def test_cost_reflects_the_resolutions() -> None:
    sp = get_space("lattice", layers=6, levels=4, base_channels=8, resolution=64)
    fine, coarse = sp.parse("4-4-4-4-4-4"), sp.parse("8-16-32-32-32-32")
    cf, cc = sp.cost(fine), sp.cost(coarse)
    # basic blocks cost the same MACs at every level (2x channels, 1/4 pixels) but far less activation memory
    assert cc.activations < cf.activations
    assert cc.peak_activations <= cf.peak_activations
    assert cc.params > cf.params
    # at twice the resolution every conv has 4x the pixels; the final linear layer (8 channels x 10) does not
    linear = 8 * 10
    assert sp.cost(fine, resolution=128).macs - linear == 4 * (cf.macs - linear)


@pytest.mark.parametrize("head", ["classification", "dense"])
def test_cached_cost_equals_full_analysis(head: str) -> None:
    sp = get_space("lattice", layers=8, levels=4, base_channels=4, resolution=48, head=head)
    rng = np.random.default_rng(5)
    for _ in range(30):
        a = sp.sample(rng)
        fast, full = sp.cost(a), sp.network_spec(a).cost(layers=True)
        assert (fast.params, fast.macs, fast.other_ops, fast.activations, fast.peak_activations,
                fast.output_shape) == (full.params, full.macs, full.other_ops, full.activations,
                                       full.peak_activations, full.output_shape)
