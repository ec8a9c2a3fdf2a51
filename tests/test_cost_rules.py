"""One exact-number row per rule, hand-computed (torchprofile style: case, module, input, params, MACs, other ops).

Every row is checked twice: by tracing the module and by the analytic ``GraphBuilder`` emitting the same
layer, so both ways into the cost model agree with the formula table of the README.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NamedTuple

import pytest
import torch
from torch import Tensor, nn

from nasforge.cost import GraphBuilder, OpCost, profile, register_rule
from nasforge.cost._cost import analyze
from nasforge.cost._ir import Node
from nasforge.cost._rules import RULES
from nasforge.cost._trace import trace

torch.set_num_threads(1)


class Fn(nn.Module):
    """A module whose forward is a lambda (for functional calls)."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x)


def shuffle_by_view(x: Tensor) -> Tensor:
    n, c, h, w = x.shape
    return x.view(n, 4, c // 4, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class Row(NamedTuple):
    case: str
    module: Callable[[], nn.Module]
    emit: Callable[[GraphBuilder], int]  # the same layer through the analytic builder
    input_shape: tuple[int, ...]
    params: int
    macs: int
    other_ops: int


# (8,10,10) input; conv outputs keep 10x10 with padding 1 (3x3) or 0 (1x1).
ROWS = [
    # linear: c_o*c_i weights (+c_o bias), c_o*c_i MACs; bias adds c_o other ops
    Row("linear+bias", lambda: nn.Linear(20, 30), lambda g: g.linear(0, 30, True), (20,), 630, 600, 30),
    Row("linear", lambda: nn.Linear(20, 30, bias=False), lambda g: g.linear(0, 30, False), (20,), 600, 600, 0),
    Row("linear 3 rows", lambda: nn.Linear(20, 30), lambda g: g.linear(0, 30, True), (3, 20), 630, 1800, 90),
    # conv2d: c_o*c_i*kh*kw weights, times h_o*w_o MACs: 16*8*9 = 1152; *100 = 115200
    Row("conv3x3+bias", lambda: nn.Conv2d(8, 16, 3, padding=1), lambda g: g.conv2d(0, 16, 3, bias=True),
        (8, 10, 10), 1168, 115200, 1600),
    Row("conv3x3", lambda: nn.Conv2d(8, 16, 3, padding=1, bias=False), lambda g: g.conv2d(0, 16, 3),
        (8, 10, 10), 1152, 115200, 0),
    # 5x5 stride 2 no padding on 13x13: out 5x5; weights 6*4*25 = 600; MACs 600*25 = 15000
    Row("conv5x5/2+bias", lambda: nn.Conv2d(4, 6, 5, stride=2), lambda g: g.conv2d(0, 6, 5, 2, 0, bias=True),
        (4, 13, 13), 606, 15000, 150),
    Row("conv5x5/2", lambda: nn.Conv2d(4, 6, 5, stride=2, bias=False), lambda g: g.conv2d(0, 6, 5, 2, 0),
        (4, 13, 13), 600, 15000, 0),
    # grouped g=4: c_o*(c_i/g)*9 = 16*2*9 = 288 weights; MACs 288*100
    Row("group conv g=4+bias", lambda: nn.Conv2d(8, 16, 3, padding=1, groups=4),
        lambda g: g.conv2d(0, 16, 3, groups=4, bias=True), (8, 10, 10), 304, 28800, 1600),
    Row("group conv g=4", lambda: nn.Conv2d(8, 16, 3, padding=1, groups=4, bias=False),
        lambda g: g.conv2d(0, 16, 3, groups=4), (8, 10, 10), 288, 28800, 0),
    # depthwise: c*9 = 72 weights; MACs 72*100
    Row("depthwise+bias", lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8),
        lambda g: g.conv2d(0, 8, 3, groups=8, bias=True), (8, 10, 10), 80, 7200, 800),
    Row("depthwise", lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
        lambda g: g.conv2d(0, 8, 3, groups=8), (8, 10, 10), 72, 7200, 0),
    # 1x1: c_o*c_i = 128 weights; MACs 128*100
    Row("conv1x1+bias", lambda: nn.Conv2d(8, 16, 1), lambda g: g.conv2d(0, 16, 1, bias=True), (8, 10, 10),
        144, 12800, 1600),
    Row("conv1x1", lambda: nn.Conv2d(8, 16, 1, bias=False), lambda g: g.conv2d(0, 16, 1), (8, 10, 10),
        128, 12800, 0),
    # matmul (6,4)@(4,6) -> (6,6): 6*6*4 = 144 MACs; bmm (3,2,4)@(3,4,2) -> (3,2,2): 3*2*2*4 = 48
    Row("matmul", lambda: Fn(lambda x: x @ x.transpose(1, 2)), lambda g: g.matmul(0, g.add("reshape", [0], (4, 6))),
        (6, 4), 0, 144, 0),
    Row("bmm", lambda: Fn(lambda x: torch.bmm(x.view(3, 2, 4), x.view(3, 4, 2))),
        lambda g: g.matmul(g.add("reshape", [0], (3, 2, 4)), g.add("reshape", [0], (3, 4, 2))), (6, 4), 0, 48, 0),
    # batch norm: 2 params per channel, no MACs, scale+shift per element (2*800)
    Row("batchnorm", lambda: nn.BatchNorm2d(8), lambda g: g.batchnorm(0), (8, 10, 10), 16, 0, 1600),
    # pooling: no params, no MACs; k*k ops per output element (8*5*5*4 = 800; 3x3/2 pad 1 -> 8*5*5*9 = 1800)
    Row("maxpool2x2", lambda: nn.MaxPool2d(2), lambda g: g.maxpool(0, 2), (8, 10, 10), 0, 0, 800),
    Row("avgpool3x3/2", lambda: nn.AvgPool2d(3, 2, 1), lambda g: g.avgpool(0, 3, 2, 1), (8, 10, 10), 0, 0, 1800),
    Row("global avgpool", lambda: nn.AdaptiveAvgPool2d(1), lambda g: g.global_avgpool(0), (8, 10, 10), 0, 0, 800),
    Row("x.mean((2,3))", lambda: Fn(lambda x: x.mean((2, 3))), lambda g: g.global_avgpool(0), (8, 10, 10),
        0, 0, 800),
    # activations: one op per element
    Row("relu", lambda: nn.ReLU(inplace=True), lambda g: g.act(0, "relu"), (8, 10, 10), 0, 0, 800),
    Row("relu6", lambda: nn.ReLU6(), lambda g: g.act(0, "relu6"), (8, 10, 10), 0, 0, 800),
    Row("hswish", lambda: nn.Hardswish(), lambda g: g.act(0, "hswish"), (8, 10, 10), 0, 0, 800),
    Row("sigmoid", lambda: nn.Sigmoid(), lambda g: g.act(0, "sigmoid"), (8, 10, 10), 0, 0, 800),
    Row("silu", lambda: nn.SiLU(), lambda g: g.act(0, "silu"), (8, 10, 10), 0, 0, 800),
    # add: one op per element; concat, channel shuffle, flatten: data movement only
    Row("add", lambda: Fn(lambda x: x + x), lambda g: g.add_(0, 0), (8, 10, 10), 0, 0, 800),
    Row("concat", lambda: Fn(lambda x: torch.cat([x, x], 1)), lambda g: g.cat([0, 0]), (8, 10, 10), 0, 0, 0),
    Row("channel shuffle (module)", lambda: nn.ChannelShuffle(4), lambda g: g.channel_shuffle(0, 4), (8, 10, 10),
        0, 0, 0),
    Row("channel shuffle (view/transpose)", lambda: Fn(shuffle_by_view), lambda g: g.channel_shuffle(0, 4),
        (8, 10, 10), 0, 0, 0),
    Row("flatten", lambda: nn.Flatten(), lambda g: g.flatten(0), (8, 10, 10), 0, 0, 0),
]


def _numbers(c: object) -> tuple[int, int, int]:
    return (c.params, c.macs, c.other_ops)  # type: ignore[attr-defined]


@pytest.mark.parametrize("row", ROWS, ids=[r.case for r in ROWS])
def test_rule_traced(row: Row) -> None:
    c = profile(row.module(), row.input_shape)
    assert _numbers(c) == (row.params, row.macs, row.other_ops)
    assert c.unknown_ops == ()


@pytest.mark.parametrize("row", ROWS, ids=[r.case for r in ROWS])
def test_rule_analytic(row: Row) -> None:
    g = GraphBuilder(row.input_shape)
    row.emit(g)
    assert _numbers(analyze(g.nodes)) == (row.params, row.macs, row.other_ops)


@pytest.mark.parametrize("row", ROWS, ids=[r.case for r in ROWS])
def test_traced_op_is_the_analytic_op(row: Row) -> None:
    g = GraphBuilder(row.input_shape)
    row.emit(g)
    want = [n.op for n in g.nodes if n.op not in ("input", "reshape")]
    got = [n.op for n in trace(row.module(), row.input_shape) if n.op not in ("input", "reshape")]
    assert got == want


def test_params_equal_module_parameters() -> None:
    for row in ROWS:
        m = row.module()
        assert profile(m, row.input_shape).params == sum(p.numel() for p in m.parameters()), row.case


def test_register_rule_counts_a_new_op() -> None:
    m = Fn(torch.erf)
    with pytest.warns(UserWarning, match="no cost rule for op 'erf'"):
        c = profile(m, (4, 5))
    assert c.unknown_ops == ("erf",) and c.other_ops == 0

    def erf_rule(n: Node) -> OpCost:
        return OpCost(0, 0, 3 * n.out_numel)

    register_rule("erf", erf_rule)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            c = profile(m, (4, 5))
    finally:
        RULES.pop("erf")
    assert c.unknown_ops == () and c.other_ops == 60
