"""Peak memory of small hand-checked graphs, exactly, by the analytic builder and by tracing the same module.

The model (README): conv/linear/pool/add/cat write a new buffer, batch norm and activations share their
input's buffer; a buffer lives from its writer to its last reader; peak = largest sum of live buffers.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from nasforge.cost import Cost, GraphBuilder, profile
from nasforge.cost._cost import analyze

torch.set_num_threads(1)


def _mem(c: Cost) -> tuple[int, int]:
    return (c.peak_activations, c.activations)


# -- a chain: x(3,8,8)=192 -> conv 4ch (256) -> relu (in place) -> conv 2ch (128) ---------------------
# step conv1: x + y1 = 448 (the peak); step conv2: y1 + y2 = 384 (x is dead). Total 192+256+128 = 576.
CHAIN = (448, 576)


def chain_module() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 2, 3, padding=1))


def chain_graph() -> Cost:
    g = GraphBuilder((3, 8, 8))
    x = g.conv2d(0, 4, 3, bias=True)
    x = g.act(x, "relu")
    g.conv2d(x, 2, 3, bias=True)
    return analyze(g.nodes)


# -- a residual block: x(4,8,8)=256 -> conv-bn-relu (256) -> conv (256) -> add x (256) ---------------
# step conv1: x + a = 512; step conv2: x (kept for the add) + a + b = 768; add: x + b + out = 768.
# Total 4*256 = 1024.
RESIDUAL = (768, 1024)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.c2(torch.relu(self.bn(self.c1(x))))


def residual_graph() -> Cost:
    g = GraphBuilder((4, 8, 8))
    a = g.act(g.batchnorm(g.conv2d(0, 4, 3)), "relu")
    b = g.conv2d(a, 4, 3)
    g.add_(0, b)
    return analyze(g.nodes)


# -- a concat: x(2,4,4)=32 -> 1x1 conv 3ch (48) and 1x1 conv 5ch (80) -> cat (128) -----------------------
# step conv a: x + a = 80; step conv b: x + a (kept for cat) + b = 160; cat: a + b + out = 256 (x is dead).
# Total 32+48+80+128 = 288.
CONCAT = (256, 288)


class Concat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(2, 3, 1)
        self.b = nn.Conv2d(2, 5, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.a(x), self.b(x)], 1)


def concat_graph() -> Cost:
    g = GraphBuilder((2, 4, 4))
    a = g.conv2d(0, 3, 1, bias=True)
    b = g.conv2d(0, 5, 1, bias=True)
    g.cat([a, b])
    return analyze(g.nodes)


CASES = [
    ("chain", chain_module, (3, 8, 8), chain_graph, CHAIN),
    ("residual", Residual, (4, 8, 8), residual_graph, RESIDUAL),
    ("concat", Concat, (2, 4, 4), concat_graph, CONCAT),
]


@pytest.mark.parametrize(("case", "module", "shape", "graph", "want"), CASES, ids=[c[0] for c in CASES])
def test_peak_analytic(case: str, module: object, shape: tuple[int, ...], graph: object,
                       want: tuple[int, int]) -> None:
    assert _mem(graph()) == want  # type: ignore[operator]


@pytest.mark.parametrize(("case", "module", "shape", "graph", "want"), CASES, ids=[c[0] for c in CASES])
def test_peak_traced(case: str, module: object, shape: tuple[int, ...], graph: object,
                     want: tuple[int, int]) -> None:
    c = profile(module(), shape)  # type: ignore[operator]
    assert _mem(c) == want
    a = graph()  # type: ignore[operator]
    assert (c.params, c.macs, c.other_ops) == (a.params, a.macs, a.other_ops)


def test_bytes_follow_precision() -> None:
    c = profile(Residual(), (4, 8, 8))
    assert c.peak_memory_bytes == 4 * RESIDUAL[0] and c.activation_bytes == 4 * RESIDUAL[1]
    q = c.at("int8")
    assert q.peak_memory_bytes == RESIDUAL[0] and q.weight_bytes == c.params == 2 * 4 * 4 * 9 + 8


def test_inplace_residual_keeps_data_flow() -> None:
    """``out += identity`` (ResNet style) reads the kept input, so it stays alive to the add."""

    class InPlace(Residual):
        def forward(self, x: Tensor) -> Tensor:
            out = self.c2(torch.relu(self.bn(self.c1(x))))
            out += x
            return out

    c = profile(InPlace(), (4, 8, 8))
    assert _mem(c) == RESIDUAL
