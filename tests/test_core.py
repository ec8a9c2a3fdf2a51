"""The core shapes: IR totals, the fast chained path, specs build modules of the same size."""

from __future__ import annotations

import torch

from nasforge.blocks import ConvBNAct, InvertedResidual, NetworkSpec
from nasforge.blocks._spec import Flatten, GlobalPool, Linear
from nasforge.cost import GraphBuilder
from nasforge.cost._cost import analyze


def tiny_net() -> NetworkSpec:
    return NetworkSpec(
        "tiny", (3, 32, 32), (ConvBNAct(3, 16, 3, 2),),
        ((InvertedResidual(16, 16, 1, 6, 3), InvertedResidual(16, 24, 2, 6, 5)),),
        (GlobalPool(), Flatten(), Linear(24, 10)),
    )


def test_fast_chain_equals_full_analysis() -> None:
    net = tiny_net()
    full, fast = net.cost(layers=True), net.cost()
    assert (full.params, full.macs, full.other_ops, full.activations, full.peak_activations) == (
        fast.params, fast.macs, fast.other_ops, fast.activations, fast.peak_activations)
    assert full.layers and not fast.layers


def test_spec_builds_module_with_same_params() -> None:
    net = tiny_net()
    m = net.build()
    assert sum(p.numel() for p in m.parameters()) == net.cost().params
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_precision_scales_bytes() -> None:
    g = GraphBuilder((3, 8, 8))
    g.conv2d(0, 4, 3)
    c = analyze(g.nodes)
    assert c.weight_bytes == 4 * c.params
    assert c.at("int8").weight_bytes == c.params
    assert c.at("int8").peak_memory_bytes == c.peak_activations == 3 * 64 + 4 * 64
