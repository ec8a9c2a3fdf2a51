"""Blocks: the analytic view (spec.emit) and the module (spec.build) describe the same computation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from nasforge.blocks import (
    BasicBlock,
    Bottleneck,
    ConvBNAct,
    DepthwiseSeparable,
    Fire,
    InvertedResidual,
    ShuffleV1Unit,
    ShuffleV2Unit,
    channel_shuffle,
)
from nasforge.blocks._spec import Spec
from nasforge.cost import GraphBuilder
from nasforge.cost._cost import analyze
from nasforge.errors import NasforgeError

torch.set_num_threads(1)

# (spec, input channels) at a small resolution
CASES: list[tuple[str, Spec, int]] = [
    ("convbnact", ConvBNAct(8, 16, 3, 2), 8),
    ("dwsep", DepthwiseSeparable(8, 16), 8),
    ("dwsep_s2", DepthwiseSeparable(8, 16, 2), 8),
    ("fire", Fire(16, 4, 8, 8), 16),
    ("basic_id", BasicBlock(16, 16), 16),
    ("basic_proj", BasicBlock(16, 32, 2), 16),
    ("bottleneck_id", Bottleneck(32, 32), 32),
    ("bottleneck_proj", Bottleneck(16, 64, 2), 16),
    ("resnext", Bottleneck(64, 64, 1, groups=4, base_width=4), 64),
    ("resnext_proj", Bottleneck(32, 128, 2, groups=8, base_width=4), 32),
    ("inverted", InvertedResidual(16, 16, 1, 6), 16),
    ("shuffle_v1", ShuffleV1Unit(24, 24, 1, 3), 24),
    ("shuffle_v1_s2", ShuffleV1Unit(24, 48, 2, 3), 24),
    ("shuffle_v1_first", ShuffleV1Unit(12, 48, 2, 3, first_grouped=False), 12),
    ("shuffle_v2", ShuffleV2Unit(16, 16), 16),
    ("shuffle_v2_s2", ShuffleV2Unit(16, 32, 2), 16),
]
IDS = [c[0] for c in CASES]


def emit(spec: Spec, shape: tuple[int, ...]) -> GraphBuilder:
    g = GraphBuilder(shape)
    spec.emit(g, 0)
    return g


@pytest.mark.parametrize(("name", "spec", "c"), CASES, ids=IDS)
def test_emit_params_equal_module_params_and_shapes_match(name: str, spec: Spec, c: int) -> None:
    g = emit(spec, (c, 8, 8))
    cost = analyze(g.nodes)
    m = spec.build().eval()
    assert sum(p.numel() for p in m.parameters()) == cost.params
    with torch.no_grad():
        y = m(torch.randn(2, c, 8, 8))
    assert tuple(y.shape) == (2, *cost.output_shape)
    assert cost.unknown_ops == ()


@pytest.mark.parametrize(("name", "spec", "c"), CASES, ids=IDS)
def test_emit_equals_traced_module(name: str, spec: Spec, c: int) -> None:
    """Same layers in the same order with the same names, so the same params, MACs and memory."""
    from nasforge.cost import profile

    a = analyze(emit(spec, (c, 8, 8)).nodes)
    t = profile(spec.build().eval(), (c, 8, 8))
    assert [(lc.name, lc.op, lc.out_shape) for lc in t.layers] == [(lc.name, lc.op, lc.out_shape) for lc in a.layers]
    assert (t.params, t.macs, t.other_ops) == (a.params, a.macs, a.other_ops)
    assert (t.activations, t.peak_activations) == (a.activations, a.peak_activations)


def test_depthwise_separable_macs_by_hand() -> None:
    c = analyze(emit(DepthwiseSeparable(8, 16, 2), (8, 8, 8)).nodes)
    assert c.macs == 8 * 9 * 4 * 4 + 8 * 16 * 4 * 4
    assert c.params == 8 * 9 + 2 * 8 + 8 * 16 + 2 * 16


def test_resnext_width_and_grouped_macs() -> None:
    b = Bottleneck(256, 256, 1, groups=32, base_width=4)
    assert b.width == 128  # torchvision resnext50_32x4d, first stage
    c = analyze(emit(b, (256, 4, 4)).nodes)
    convs = [lc for lc in c.layers if lc.op == "conv2d"]
    assert [lc.macs for lc in convs] == [128 * 256 * 16, 128 * (128 // 32) * 9 * 16, 256 * 128 * 16]


@pytest.mark.parametrize(
    ("spec", "c", "residual"),
    [
        (BasicBlock(16, 16), 16, True),
        (BasicBlock(16, 32, 2), 16, True),
        (Bottleneck(32, 32), 32, True),
        (InvertedResidual(16, 16, 1, 6), 16, True),
        (InvertedResidual(16, 24, 1, 6), 16, False),
        (InvertedResidual(16, 16, 2, 6), 16, False),
        (DepthwiseSeparable(16, 16), 16, False),
        (ShuffleV1Unit(24, 24), 24, True),
        (ShuffleV1Unit(24, 48, 2), 24, False),
    ],
)
def test_residual_add_present_or_absent(spec: Spec, c: int, residual: bool) -> None:
    ops = [n.op for n in emit(spec, (c, 8, 8)).nodes]
    assert ("add" in ops) == residual


@pytest.mark.parametrize(("spec", "last"), [(BasicBlock(16, 16), "conv2"), (Bottleneck(32, 32), "conv3")],
                         ids=["basic", "bottleneck"])
def test_identity_shortcut_passes_input_through(spec: BasicBlock | Bottleneck, last: str) -> None:
    m = spec.build().eval()
    bn = getattr(m, last).bn
    torch.nn.init.zeros_(bn.weight)  # the main branch now outputs zeros: the block is relu(x + 0)
    torch.nn.init.zeros_(bn.bias)
    x = torch.randn(2, spec.in_ch, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(m(x), torch.relu(x))


def test_inverted_residual_module_adds_input() -> None:
    spec = InvertedResidual(16, 16, 1, 6)
    m = spec.build().eval()
    torch.nn.init.zeros_(m.project.bn.weight)
    torch.nn.init.zeros_(m.project.bn.bias)
    x = torch.randn(2, 16, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(m(x), x)


def test_channel_shuffle_moves_channels() -> None:
    x = torch.arange(6.0).view(1, 6, 1, 1).expand(2, 6, 3, 3).contiguous()
    y = channel_shuffle(x, 3)
    assert y[0, :, 0, 0].tolist() == [0, 2, 4, 1, 3, 5]
    assert y.shape == x.shape
    # shuffling with g then with C/g groups is the identity
    torch.testing.assert_close(channel_shuffle(y, 2), x)


def test_shuffle_v2_keeps_first_half_on_even_channels() -> None:
    m = ShuffleV2Unit(8, 8).build().eval()
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        y = m(x)
    torch.testing.assert_close(y[:, 0::2], x[:, :4])


def test_shuffle_v1_stride2_concats_pooled_input() -> None:
    m = ShuffleV1Unit(12, 48, 2, 3, first_grouped=False).build().eval()
    x = torch.randn(2, 12, 8, 8)
    with torch.no_grad():
        y = m(x)
    assert y.shape == (2, 48, 4, 4)
    torch.testing.assert_close(y[:, :12], torch.relu(F.avg_pool2d(x, 3, 2, 1)))


def test_fire_concatenates_expands() -> None:
    c = analyze(emit(Fire(16, 4, 8, 12), (16, 7, 7)).nodes)
    assert c.output_shape == (20, 7, 7)
    assert c.params == (16 * 4 + 4) + (4 * 8 + 8) + (4 * 12 * 9 + 12)


def test_split_is_a_free_view() -> None:
    g = GraphBuilder((8, 4, 4))
    a, b = g.split(0, [3, 5])
    assert (g.shape(a), g.shape(b)) == ((3, 4, 4), (5, 4, 4))
    assert (g.nodes[a].attrs["start"], g.nodes[b].attrs["end"]) == (0, 8)
    g.cat([a, b])
    c = analyze(g.nodes)
    assert c.params == c.macs == 0
    assert c.activations == 2 * 8 * 16  # input + concat output; the slices share the input's buffer
    with pytest.raises(NasforgeError, match="sum to the 8 channels"):
        GraphBuilder((8, 4, 4)).split(0, [3, 4])


def test_shuffle_v2_peak_counts_the_split_input_until_concat() -> None:
    c = analyze(emit(ShuffleV2Unit(8, 8), (8, 4, 4)).nodes)
    # at the concat: the input (kept alive by its first-half slice) + the branch output + the concat output
    assert c.peak_activations == 8 * 16 + 4 * 16 + 8 * 16


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ShuffleV1Unit(24, 48, 1), "in_ch == out_ch"),
        (lambda: ShuffleV1Unit(48, 24, 2), "out_ch > in_ch"),
        (lambda: ShuffleV1Unit(24, 48, 3), "stride 3"),
        (lambda: ShuffleV2Unit(16, 15, 2), "even"),
        (lambda: ShuffleV2Unit(16, 32, 1), "in_ch == out_ch"),
    ],
)
def test_bad_unit_configs_raise(make: Callable[[], object], match: str) -> None:
    with pytest.raises(NasforgeError, match=match):
        make()
