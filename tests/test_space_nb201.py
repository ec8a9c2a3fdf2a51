"""NB201: strings, decisions, the fast cell cost, traced cost of the built network, and the NASLib tables."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.blocks._cells import NB201Cell
from nasforge.blocks._spec import part_of
from nasforge.cost import profile
from nasforge.errors import NasforgeError
from nasforge.spaces import get_space
from nasforge.spaces.nb201 import NB201_OPS, NB201Space, _cell_part, naslib_to_nb201

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def totals(c: object) -> tuple[int, ...]:
    return tuple(getattr(c, k) for k in ("params", "macs", "other_ops", "activations", "peak_activations"))


def test_size_decisions_and_ops() -> None:
    sp = get_space("nb201")
    assert isinstance(sp, NB201Space)
    assert sp.size() == 15_625
    assert sp.ops == NB201_OPS
    decs = sp.decisions()
    assert [d.name for d in decs] == ["edge_1<-0", "edge_2<-0", "edge_2<-1", "edge_3<-0", "edge_3<-1", "edge_3<-2"]
    assert all(d.choices == NB201_OPS for d in decs)


def test_enumerate_is_every_arch_once() -> None:
    sp = get_space("nb201")
    archs = list(sp.enumerate())
    assert len(archs) == len({str(a) for a in archs}) == sp.size()


def test_string_round_trip_and_decision_order() -> None:
    sp = get_space("nb201")
    a = sp.parse(BEST)
    assert str(a) == BEST
    assert sp.encode(a) == (3, 3, 3, 1, 3, 2)
    assert sp.decode((3, 3, 3, 1, 3, 2)) == a
    assert sp.parse(str(sp.decode(sp.encode(a)))) == a
    rng = np.random.default_rng(0)
    for _ in range(50):
        b = sp.sample(rng)
        assert sp.parse(str(b)) == b and sp.decode(sp.encode(b)) == b


def test_every_official_string_parses_back_to_itself(shared_data: Path) -> None:
    path = shared_data / "nb201_nats_tss" / "nb201_cifar10_test_200ep_mean3seeds.csv"
    sp = get_space("nb201")
    with path.open() as f:
        strings = [row["arch"] for row in csv.DictReader(f)]
    assert len(strings) == 15_625
    assert {sp.parse(s).choices for s in strings} == {a.choices for a in sp.enumerate()}
    assert all(str(sp.parse(s)) == s for s in strings[:500])


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("|conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", ["unknown op 'conv_3x3'", "avg_pool_3x3"]),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", ["node 2 has 1 edges, expected 2"]),
        ("|none~0|+|none~0|none~1|", ["expected 3 nodes"]),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", ["start and end with '|'"]),
        ("|none~0|+|none~1|none~0|+|none~0|none~1|none~2|", ["must read node 0"]),
        ("|none-0|+|none~0|none~1|+|none~0|none~1|none~2|", ["bad edge 'none-0'"]),
        ("", ["start and end"]),
    ],
)
def test_malformed_strings_are_one_line_errors(text: str, words: list[str]) -> None:
    sp = get_space("nb201")
    with pytest.raises(NasforgeError) as e:
        sp.parse(text)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_bad_options_and_choices() -> None:
    with pytest.raises(NasforgeError, match="resolution=30"):
        get_space("nb201", resolution=30)
    with pytest.raises(NasforgeError, match="C=0"):
        get_space("nb201", C=0)
    with pytest.raises(NasforgeError, match="bad option"):
        get_space("nb201", width=3)
    sp = get_space("nb201")
    with pytest.raises(NasforgeError, match="expected 6 choices"):
        sp.decode((0, 1))
    with pytest.raises(NasforgeError, match="out of range"):
        sp.decode((0, 0, 0, 0, 0, 5))


def test_mutate_changes_exactly_one_edge() -> None:
    sp = get_space("nb201")
    rng = np.random.default_rng(1)
    for _ in range(200):
        a = sp.sample(rng)
        b = sp.mutate(a, rng)
        assert sum(x != y for x, y in zip(a.choices, b.choices, strict=True)) == 1


def test_fast_cell_part_equals_full_emission() -> None:
    rng = np.random.default_rng(2)
    cases = [(0,) * 6, (1,) * 6, (0, 0, 1, 0, 0, 0), (4, 0, 0, 0, 0, 0)] + [
        tuple(int(v) for v in rng.integers(5, size=6)) for _ in range(60)
    ]
    for shape in ((16, 32, 32), (5, 6, 6)):
        for ch in cases:
            ops = tuple(NB201_OPS[c] for c in ch)
            assert _cell_part(ch, shape) == part_of(NB201Cell(shape[0], ops), shape), ops


def test_fast_cost_equals_per_layer_cost() -> None:
    sp = get_space("nb201")
    rng = np.random.default_rng(3)
    for a in [sp.parse(ALL_NONE), sp.parse(BEST), *(sp.sample(rng) for _ in range(10))]:
        fast, full = sp.cost(a), sp.network_spec(a).cost(layers=True)
        assert totals(fast) == totals(full)
        assert fast.output_shape == (10,) and fast.input_shape == (3, 32, 32)
    assert sp.cost(sp.parse(BEST), precision="int8").peak_memory_bytes == sp.cost(sp.parse(BEST)).peak_activations


@pytest.mark.parametrize("text", [
    BEST,
    ALL_NONE,
    "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|",
    "|none~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|none~1|none~2|",
])
def test_traced_cost_of_built_network_equals_analytic(text: str) -> None:
    torch.set_num_threads(1)
    sp = get_space("nb201", C=4, N=2, num_classes=7, resolution=16)
    a = sp.parse(text)
    m = sp.build(a)
    traced = profile(m, sp.input_shape(a))
    assert totals(traced) == totals(sp.cost(a))
    assert not traced.unknown_ops
    assert sum(p.numel() for p in m.parameters()) == sp.cost(a).params


def test_default_network_shape_params_and_backward() -> None:
    torch.set_num_threads(1)
    sp = get_space("nb201")
    a = sp.parse(BEST)
    m = sp.build(a)
    y = m(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 10)
    y.sum().backward()
    assert sum(p.numel() for p in m.parameters()) == sp.cost(a).params
    assert sp.build(a, num_classes=100)(torch.randn(1, 3, 32, 32)).shape == (1, 100)
    with pytest.raises(NasforgeError, match="unknown build option"):
        sp.build(a, width=2)


def test_cost_resolution_override() -> None:
    sp = get_space("nb201")
    a = sp.parse(BEST)
    c16 = sp.cost(a, resolution=16)
    assert c16.input_shape == (3, 16, 16) and c16.params == sp.cost(a).params
    assert c16.macs * 4 == pytest.approx(sp.cost(a).macs, rel=1e-3)
    with pytest.raises(NasforgeError, match="multiple of 4"):
        sp.cost(a, resolution=18)


def test_naslib_encoding_mapping() -> None:
    # NASLib ids: skip, none, conv3, conv1, pool; its 3rd and 4th entries swap in NB201's string order.
    assert naslib_to_nb201("(2, 2, 3, 4, 1, 0)") == (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|skip_connect~2|"
    )
    with pytest.raises(NasforgeError):
        naslib_to_nb201("(1, 2, 3)")


@pytest.mark.parametrize(("dataset", "classes", "resolution", "limit"), [
    pytest.param("cifar10", 10, 32, None, marks=pytest.mark.slow),  # all 491 archs; the others check 100
    ("cifar100", 100, 32, 100), ("ImageNet16-120", 120, 16, 100),
])
def test_params_and_flops_match_naslib_tables(dataset: str, classes: int, resolution: int, limit: int | None,
                                             shared_data: Path) -> None:
    path = shared_data / "naslib_zc_subsets" / "zc_nasbench201.json"
    table = json.loads(path.read_text())["nasbench201"][dataset]
    assert len(table) == 491
    sp = get_space("nb201", num_classes=classes, resolution=resolution)
    worst_params = worst_flops = worst_macs = 0.0
    for enc, row in list(table.items())[:limit]:
        a = sp.parse(naslib_to_nb201(enc))
        c = sp.cost(a)
        worst_params = max(worst_params, abs(c.params / 1e6 - row["params"]) / row["params"])
        worst_flops = max(worst_flops, abs(sp.naslib_flops(a) / 1e6 - row["flops"]) / row["flops"])
        worst_macs = max(worst_macs, abs(c.macs / 1e6 - row["flops"]) / row["flops"])
    assert worst_params < 1e-6 and worst_flops < 1e-6
    assert worst_macs > 0.05  # the tables' FLOPs are not MACs: see NB201Space.naslib_flops
