"""The traced path: any module, functional calls, control flow, and traced == analytic on every zoo model.

torchprofile (a dev dependency) is compared too. Its convention differs from ours (see .notes/cost.md): besides
conv/linear/matmul MACs it adds one per output element of batch norm (affine), average pooling (also
adaptive) and ``mean``, and elementwise ``mul``; it ignores biases as we do. So on every network
``torchprofile == ours + sum(out elements of those layers)``, exactly.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
import torchprofile as tp
from torch import Tensor, nn

from nasforge import NasforgeError, zoo
from nasforge.cost import Cost, profile
from nasforge.cost._cost import analyze
from nasforge.cost._trace import trace
from nasforge.zoo._registry import min_resolution

torch.set_num_threads(1)

TORCHPROFILE_EXTRA_OPS = ("batchnorm", "avgpool", "adaptive_avgpool", "mean", "mul")


class Functional(nn.Module):
    """Only functional calls and raw parameters: conv, depthwise conv, learned scale, data-dependent branch,
    in-place add, chunk + cat, a view/transpose channel shuffle, matmul and bmm, mean, zeros_like, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(8, 3, 3, 3))
        self.b1 = nn.Parameter(torch.zeros(8))
        self.dw = nn.Parameter(torch.randn(8, 1, 3, 3))
        self.gamma = nn.Parameter(torch.ones(8, 1, 1))
        self.fc = nn.Parameter(torch.randn(10, 8))

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(F.conv2d(x, self.w1, self.b1, stride=2, padding=1), inplace=True)  # (8,8,8)
        z = F.conv2d(y, self.dw, None, padding=1, groups=8) * self.gamma
        if bool((z > -1e9).all()):  # data-dependent control flow
            z += y
        a, b = z.chunk(2, dim=1)
        z = torch.cat([b, a], 1)
        n, c, h, w = z.shape
        z = z.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
        t = z.flatten(2)  # (8, 64)
        t = torch.bmm(t, t.transpose(1, 2) @ t)  # (64,8)@(8,64) -> (64,64); (8,64)@(64,64) -> (8,64)
        p = t.mean(2)
        return F.linear(p + torch.zeros_like(p), self.fc)


# params: conv 8*3*9 + 8 = 224, depthwise 8*9 = 72, gamma 8, fc 80 -> 384
# MACs: conv 216*64 = 13824, depthwise 72*64 = 4608, matmul 64*64*8 = 32768, bmm 8*64*64 = 32768, fc 80
FUNCTIONAL_PARAMS, FUNCTIONAL_MACS = 384, 13824 + 4608 + 32768 + 32768 + 80


def _quiet_profile(m: nn.Module, shape: tuple[int, ...]) -> Cost:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return profile(m, shape)


def test_functional_module_exact() -> None:
    m = Functional()
    c = _quiet_profile(m, (3, 16, 16))
    assert c.params == FUNCTIONAL_PARAMS == sum(p.numel() for p in m.parameters())
    assert c.macs == FUNCTIONAL_MACS
    assert c.output_shape == (10,)
    assert c.unknown_ops == ("gt", "all")  # the comparison of the branch has no rule: listed, counted zero


def test_functional_module_graph() -> None:
    nodes = trace(Functional(), (3, 16, 16))
    ops = [n.op for n in nodes]
    assert ops.count("conv2d") == 2 and ops.count("matmul") == 2 and ops.count("slice") == 2
    dw = next(n for n in nodes if n.op == "conv2d" and n.attrs["groups"] == 8)
    assert dw.attrs["in_channels"] == 8 and dw.attrs["bias"] is False
    shuffle = [n for n in nodes if n.op == "channel_shuffle"]
    assert len(shuffle) == 1 and shuffle[0].attrs["groups"] == 2 and shuffle[0].out_shape == (8, 8, 8)
    assert nodes[shuffle[0].inputs[0]].op == "cat"
    # the in-place ``z += y`` reads the scaled depthwise output and the relu output (not the conv before it)
    add = next(n for n in nodes if n.op == "add" and len(n.inputs) == 2 and n.out_shape == (8, 8, 8))
    assert sorted(nodes[i].op for i in add.inputs) == ["mul", "relu"]
    # and the chunk reads the add: data flow follows the in-place update
    first_slice = next(n for n in nodes if n.op == "slice")
    assert nodes[first_slice.inputs[0]] is add


def test_data_dependent_control_flow_traces_where_fx_fails() -> None:
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3, padding=1)
            self.b = nn.Conv2d(3, 4, 1)

        def forward(self, x: Tensor) -> Tensor:
            return self.a(x) if x.sum() > -1e9 else self.b(x)

    with pytest.raises(torch.fx.proxy.TraceError):
        torch.fx.symbolic_trace(Branchy())
    c = _quiet_profile(Branchy(), (3, 8, 8))
    assert c.macs == 4 * 3 * 9 * 64  # the branch the real input took


def test_module_names_and_modes_restored() -> None:
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.BatchNorm2d(4), nn.ReLU()), nn.Flatten(), nn.Dropout())
    m.train()
    nodes = trace(m, (3, 6, 6))
    assert [n.name for n in nodes] == ["input", "0", "1.0", "1.1", "2", "3"]
    assert all(x.training for x in m.modules())
    assert not any(x._forward_hooks or x._forward_pre_hooks for x in m.modules())


def test_module_called_twice_counts_weights_once() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x: Tensor) -> Tensor:
            return self.bn(self.conv(self.bn(self.conv(x))))

    c = profile(Twice(), (4, 5, 5))
    assert c.params == 4 * 4 * 9 + 4 + 8
    assert c.macs == 2 * 4 * 4 * 9 * 25


def test_learned_operands_count_as_params() -> None:
    class Addmm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(6, 5))
            self.b = nn.Parameter(torch.randn(6))

        def forward(self, x: Tensor) -> Tensor:
            return torch.addmm(self.b, x, self.w.t())

    c = profile(Addmm(), (5,))
    assert (c.params, c.macs) == (36, 30)


def test_bad_input_is_one_line_error() -> None:
    with pytest.raises(NasforgeError, match=r"cannot run on input shape \(3, 2, 2\)"):
        trace(nn.Conv2d(3, 3, 5), (3, 2, 2))
    with pytest.raises(NasforgeError, match="positive"):
        trace(nn.Conv2d(3, 3, 5), (3, 0, 8))


def _torchprofile_extra(c: Cost) -> int:
    return sum(math.prod(lc.out_shape) for lc in c.layers if lc.op in TORCHPROFILE_EXTRA_OPS)


# the torchprofile comparison takes seconds per model: three small ones run by default, all of them with -m slow
ZOO_FAST = ("mobilenet_v1", "resnet18", "squeezenet1_0")


@pytest.mark.parametrize("name", [n if n in ZOO_FAST else pytest.param(n, marks=pytest.mark.slow)
                                  for n in zoo.list_models()])
def test_zoo_traced_equals_analytic(name: str) -> None:
    """Every zoo model at 64x64 (or its smallest resolution), 1000 classes: traced == analytic, row by row."""
    spec = zoo.create(name, 1000, max(64, min_resolution(name)))
    a = spec.cost(layers=True)
    m = spec.build()
    t = profile(m, spec.input_shape)
    totals = ("params", "macs", "other_ops", "activations", "peak_activations", "output_shape")
    assert [getattr(t, k) for k in totals] == [getattr(a, k) for k in totals]
    assert [(r.op, r.in_shape, r.out_shape, r.params, r.macs) for r in t.layers] == [
        (r.op, r.in_shape, r.out_shape, r.params, r.macs) for r in a.layers]
    assert t.unknown_ops == ()
    published = zoo.model_info(name).params
    if published is not None:
        assert t.params == published
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = tp.profile_macs(m.eval(), torch.randn(1, *spec.input_shape))
    assert theirs == t.macs + _torchprofile_extra(t)


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet18", "shufflenet_v2_x1_0"])
def test_zoo_traced_equals_analytic_at_224(name: str) -> None:
    spec = zoo.create(name, 1000, 224)
    a, t = spec.cost(layers=True), profile(spec.build(), spec.input_shape)
    assert (t.params, t.macs, t.other_ops, t.activations, t.peak_activations) == (
        a.params, a.macs, a.other_ops, a.activations, a.peak_activations)


def test_torchprofile_convention_on_functional_module() -> None:
    m = Functional()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = tp.profile_macs(m, torch.randn(1, 3, 16, 16))
    # torchprofile adds the learned-scale mul (8*8*8 = 512) and the mean's outputs (8)
    assert theirs == FUNCTIONAL_MACS + 512 + 8
    assert theirs == FUNCTIONAL_MACS + _torchprofile_extra(_quiet_profile(m, (3, 16, 16)))


def test_analyze_of_trace_equals_profile() -> None:
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    assert analyze(trace(m, (3, 8, 8))) == profile(m, (3, 8, 8))


class Encoder(nn.Module):
    """A transformer encoder layer: multi-head attention, layer norm, MLP with GELU."""

    def __init__(self) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(16, 2, batch_first=True)
        self.ln = nn.LayerNorm(16)
        self.fc = nn.Linear(16, 16)

    def forward(self, x: Tensor) -> Tensor:
        y, _ = self.mha(x, x, x, need_weights=False)
        x = self.ln(x + y)
        return x + F.gelu(self.fc(x))


def test_attention_exact() -> None:
    m = Encoder()
    c = profile(m, (5, 16))  # L = 5 tokens, E = 16
    # q, k, v and out projections 4*L*E*E; scores and weighted sum 2*L*L*E; MLP L*E*E
    assert c.macs == 4 * 5 * 16 * 16 + 2 * 5 * 5 * 16 + 5 * 16 * 16
    assert c.params == sum(p.numel() for p in m.parameters()) and c.unknown_ops == ()

    class Sdpa(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            q = x.view(1, 2, 5, 8)  # 2 heads of 5 tokens x 8
            return F.scaled_dot_product_attention(q, q, q)

    assert profile(Sdpa(), (5, 16)).macs == 2 * 5 * 5 * (8 + 8)


@pytest.mark.parametrize(
    ("module", "shape", "macs"),
    [
        (nn.Conv1d(4, 8, 3, groups=2), (4, 10), 8 * 2 * 3 * 8),  # c_o*(c_i/g)*k * l_o
        (nn.Conv3d(2, 4, 3, padding=1), (2, 4, 4, 4), 4 * 2 * 27 * 64),
        # every input element meets c_o*k*k weights (torchprofile counts output*c_i*k*k = 34,848, zeros included)
        (nn.ConvTranspose2d(8, 4, 3, stride=2), (8, 5, 5), 8 * 25 * 4 * 9),
    ],
    ids=["conv1d g=2", "conv3d", "conv_transpose2d /2"],
)
def test_other_convolutions_exact(module: nn.Module, shape: tuple[int, ...], macs: int) -> None:
    c = profile(module, shape)
    assert c.macs == macs and c.params == sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("module", "shape", "op", "other_ops"),
    [
        (nn.MaxPool1d(2), (4, 10), "maxpool", 4 * 5 * 2),  # k ops per output element
        (nn.AvgPool3d(2), (2, 4, 4, 4), "avgpool", 2 * 8 * 8),
        (nn.AdaptiveAvgPool1d(1), (4, 10), "adaptive_avgpool", 40),  # reads every input element
        (nn.AdaptiveMaxPool2d(2), (4, 8, 8), "adaptive_maxpool", 256),
        (nn.PixelShuffle(2), (8, 4, 4), "copy", 0),
    ],
    ids=["maxpool1d", "avgpool3d", "adaptive avgpool1d", "adaptive maxpool2d", "pixel shuffle"],
)
def test_other_pools_and_moves(module: nn.Module, shape: tuple[int, ...], op: str, other_ops: int) -> None:
    c = profile(module, shape)
    assert [r.op for r in c.layers] == [op] and c.other_ops == other_ops and c.unknown_ops == ()


class TinyViT(nn.Module):
    """Patch embedding, a learned class token and position embedding, one ``nn.TransformerEncoderLayer``."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 32, 4, 4)
        self.cls = nn.Parameter(torch.zeros(1, 1, 32))
        self.pos = nn.Parameter(torch.zeros(1, 17, 32))
        self.enc = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x: Tensor) -> Tensor:
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], 1) + self.pos
        return self.head(self.enc(t)[:, 0])


def test_vit_exact() -> None:
    m = TinyViT()
    c = profile(m, (3, 16, 16))
    L, E = 17, 32  # 16 patches + class token, embedding width
    patch = 32 * 3 * 4 * 4 * 16
    assert c.macs == patch + 4 * L * E * E + 2 * L * L * E + 2 * L * E * 64 + E * 10
    assert c.params == sum(p.numel() for p in m.parameters())  # class token and position embedding included
    assert c.unknown_ops == ()
