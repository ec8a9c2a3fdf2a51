"""NASNet and DARTS cell spaces: exact sizes, strings, errors, and built networks that cost what they say."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.blocks._cell_ops import CELL_OPS, FactorizedReduce, make_op
from nasforge.blocks._spec import part_of
from nasforge.cost import GraphBuilder, profile
from nasforge.cost._cost import Part
from nasforge.errors import NasforgeError
from nasforge.spaces import get_space
from nasforge.spaces.darts import DARTS_OPS
from nasforge.spaces.nasnet import NASNET_OPS

DARTS_V2 = (
    [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 1),
     ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1), ("max_pool_3x3", 0),
     ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
)
TINY = {"C": 4, "layers": 3, "resolution": 16}


def totals(c: object) -> tuple[int, ...]:
    return tuple(getattr(c, k) for k in ("params", "macs", "other_ops", "activations", "peak_activations"))


# -- NASNet ---------------------------------------------------------------------------------------------


def test_nasnet_decisions_are_the_controller_sequence() -> None:
    sp = get_space("nasnet", B=3)
    names = [d.name for d in sp.decisions()]
    assert len(names) == 2 * 3 * 5
    assert names[:5] == ["normal.block0.input1", "normal.block0.input2", "normal.block0.op1",
                         "normal.block0.op2", "normal.block0.combine"]
    assert names[15] == "reduce.block0.input1"
    assert [sp.decisions()[5 * k].n for k in range(3)] == [2, 3, 4]  # inputs grow with earlier blocks
    restricted = get_space("nasnet", B=3, cell_inputs_only=True)
    assert [restricted.decisions()[5 * k].n for k in range(3)] == [2, 2, 2]


@pytest.mark.parametrize(("B", "M", "N"), [(1, 2, 1), (2, 3, 2), (5, 12, 2), (3, 12, 1)])
def test_nasnet_size_formulas(B: int, M: int, N: int) -> None:
    ops, comb = NASNET_OPS[:M], ("add", "concat")[:N]
    restricted = get_space("nasnet", B=B, ops=ops, combine=comb, cell_inputs_only=True)
    assert restricted.size() == ((2 * 2 * M * M * N) ** B) ** 2  # normal x reduction cell
    growing = get_space("nasnet", B=B, ops=ops, combine=comb)
    assert growing.size() == math.prod((2 + k) ** 2 * M * M * N for k in range(B)) ** 2
    d = growing.describe()
    assert d["size"] == d["size_per_cell"] ** 2 and "reduction cell" in d["size_counts"]


@pytest.mark.parametrize(("restricted", "per_cell"), [(True, 4 * 4), (False, 4 * 9)])
def test_nasnet_size_equals_enumeration_on_a_small_space(restricted: bool, per_cell: int) -> None:
    sp = get_space("nasnet", B=2, ops=["skip_connect"], combine=["add"], cell_inputs_only=restricted)
    archs = list(sp.enumerate())
    assert len(archs) == len({str(a) for a in archs}) == sp.size() == per_cell**2


def test_nasnet_round_trip_and_unused_outputs() -> None:
    sp = get_space("nasnet", B=3, **TINY)
    text = ("normal=|sep_conv_3x3~0|skip_connect~1|add|+|max_pool_3x3~2|sep_conv_5x5~0|concat|"
            "+|avg_pool_3x3~1|nor_conv_3x3~0|add|;"
            "reduce=|max_pool_3x3~0|sep_conv_7x7~1|add|+|skip_connect~1|avg_pool_3x3~0|concat|"
            "+|conv_7x1_1x7~3|dil_conv_3x3~2|add|")
    a = sp.parse(text)
    assert str(a) == text and sp.decode(sp.encode(a)) == a
    net = sp.network_spec(a)
    normal, reduce = net.cells[0], net.cells[1]
    assert normal.unused() == [3, 4] and normal.out_channels == 2 * 4 + 4  # a concat block is 2C wide
    assert reduce.unused() == [4] and reduce.out_channels == 8
    rng = np.random.default_rng(0)
    for _ in range(30):
        b = sp.sample(rng)
        assert sp.parse(str(b)) == b


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("normal=|sep_conv_3x3~0|skip_connect~1|add|", ["expected 2 cells"]),
        ("normal=|foo~0|skip_connect~1|add|;reduce=|skip_connect~0|skip_connect~1|add|", ["unknown op 'foo'"]),
        ("normal=|skip_connect~0|skip_connect~2|add|;reduce=|skip_connect~0|skip_connect~1|add|",
         ["reads state 2", "0..1"]),
        ("normal=|skip_connect~0|skip_connect~1|mul|;reduce=|skip_connect~0|skip_connect~1|add|",
         ["combine op 'mul'", "add, concat"]),
        ("normal=|skip_connect~0|add|;reduce=|skip_connect~0|skip_connect~1|add|", ["|op~i|op~j|combine|"]),
        ("reduce=|skip_connect~0|skip_connect~1|add|;normal=|skip_connect~0|skip_connect~1|add|",
         ["expected 'normal=...'"]),
        ("normal=|skip_connect~0|skip_connect~1|add|+|skip_connect~0|skip_connect~1|add|;"
         "reduce=|skip_connect~0|skip_connect~1|add|", ["2 blocks, expected B=1"]),
    ],
)
def test_nasnet_malformed_strings(text: str, words: list[str]) -> None:
    sp = get_space("nasnet", B=1)
    with pytest.raises(NasforgeError) as e:
        sp.parse(text)
    assert "\n" not in str(e.value)
    for w in words:
        assert w in str(e.value)


def test_nasnet_bad_options() -> None:
    with pytest.raises(NasforgeError, match="unknown op 'none'"):
        get_space("nasnet", ops=["none", "skip_connect"])
    with pytest.raises(NasforgeError, match="combine"):
        get_space("nasnet", combine=["mul"])
    with pytest.raises(NasforgeError, match="B=0"):
        get_space("nasnet", B=0)
    with pytest.raises(NasforgeError, match="multiple of 4"):
        get_space("nasnet", resolution=18)


@pytest.mark.parametrize("seed", [0, 1])
def test_nasnet_traced_cost_equals_analytic(seed: int) -> None:
    torch.set_num_threads(1)
    sp = get_space("nasnet", B=3, **TINY)
    a = sp.sample(np.random.default_rng(seed))
    m = sp.build(a)
    assert totals(profile(m, sp.input_shape(a))) == totals(sp.cost(a))
    y = m(torch.randn(2, 3, 16, 16))
    assert y.shape == (2, 10)
    y.sum().backward()


# -- DARTS ----------------------------------------------------------------------------------------------


def test_darts_size_and_decisions() -> None:
    sp = get_space("darts")
    assert sp.ops == DARTS_OPS and len(DARTS_OPS) == 8 and "none" in DARTS_OPS
    per_cell = math.prod(math.comb(j + 2, 2) * 8 * 8 for j in range(4))
    assert per_cell == 180 * 8**8
    assert sp.size() == per_cell**2 == 9_119_789_245_425_254_400
    assert len(sp.decisions()) == 2 * 4 * 3
    assert sp.decisions()[0].choices == ((0, 1),)
    assert sp.decisions()[9].choices == ((0, 1), (0, 2), (0, 3), (0, 4), (1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))


def test_darts_size_equals_enumeration_on_a_small_space() -> None:
    sp = get_space("darts", nodes=2, ops=["none", "skip_connect"])
    archs = list(sp.enumerate())
    assert len(archs) == len({str(a) for a in archs}) == sp.size() == (4 * 12) ** 2


def test_darts_v2_genotype_has_the_published_params() -> None:
    sp = get_space("darts", C=36, layers=20)
    a = sp.arch_of(*DARTS_V2)
    assert sp.cost(a).params == 3_349_342  # DARTS (V2) on CIFAR-10, without the auxiliary head
    assert sp.parse(str(a)) == a
    assert str(a).startswith("normal=|sep_conv_3x3~0|sep_conv_3x3~1|+|sep_conv_3x3~0|sep_conv_3x3~1|+|"
                             "skip_connect~0|sep_conv_3x3~1|")
    g = sp.genotype(a)
    assert g["reduce"][1] == (("max_pool_3x3", 1), ("skip_connect", 2))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("normal=|sep_conv_3x3~0|sep_conv_3x3~0|;reduce=|none~0|none~1|", ["reads input 0 twice"]),
        ("normal=|sep_conv_3x3~0|conv_9x9~1|;reduce=|none~0|none~1|", ["unknown op 'conv_9x9'", "sep_conv_5x5"]),
        ("normal=|sep_conv_3x3~0|sep_conv_3x3~2|;reduce=|none~0|none~1|", ["reads input 2", "0..1"]),
        ("normal=|sep_conv_3x3~0|;reduce=|none~0|none~1|", ["2 edges"]),
        ("normal=|sep_conv_3x3~0|none~1|+|none~0|none~1|;reduce=|none~0|none~1|", ["2 nodes, expected 1"]),
        ("normal=|none~0|none~1|", ["expected 2 cells"]),
        ("normal=|none~0|none-1|;reduce=|none~0|none~1|", ["bad edge 'none-1'"]),
    ],
)
def test_darts_malformed_strings(text: str, words: list[str]) -> None:
    sp = get_space("darts", nodes=1)
    with pytest.raises(NasforgeError) as e:
        sp.parse(text)
    assert "\n" not in str(e.value)
    for w in words:
        assert w in str(e.value)


def test_darts_accepts_edges_in_either_order() -> None:
    sp = get_space("darts", nodes=1)
    a = sp.parse("normal=|skip_connect~1|sep_conv_3x3~0|;reduce=|none~0|max_pool_3x3~1|")
    assert str(a) == "normal=|sep_conv_3x3~0|skip_connect~1|;reduce=|none~0|max_pool_3x3~1|"


@pytest.mark.parametrize("text", [
    "normal=|none~0|none~1|+|sep_conv_5x5~0|dil_conv_5x5~2|;reduce=|none~0|none~1|+|skip_connect~0|none~2|",
    "normal=|skip_connect~0|skip_connect~1|+|max_pool_3x3~1|avg_pool_3x3~2|;"
    "reduce=|dil_conv_3x3~0|sep_conv_3x3~1|+|avg_pool_3x3~1|none~2|",
])
def test_darts_traced_cost_equals_analytic(text: str) -> None:
    torch.set_num_threads(1)
    sp = get_space("darts", nodes=2, **TINY)
    a = sp.parse(text)
    m = sp.build(a)
    assert totals(profile(m, sp.input_shape(a))) == totals(sp.cost(a))
    y = m(torch.randn(2, 3, 16, 16))
    assert y.shape == (2, 10) and torch.isfinite(y).all()
    y.sum().backward()


def test_darts_cost_is_cached_and_precision_scales() -> None:
    sp = get_space("darts", **TINY)
    a = sp.sample(np.random.default_rng(4))
    assert sp.cost(a) is sp.cost(a)
    assert sp.cost(a, precision="int8").peak_memory_bytes * 4 == sp.cost(a).peak_memory_bytes
    assert totals(sp.cost(a)) == totals(sp.network_spec(a).cost(layers=True))


# -- cell ops -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", [o for o in CELL_OPS if o != "none"])
@pytest.mark.parametrize(("c_in", "stride"), [(4, 1), (4, 2), (6, 1)])
def test_cell_op_module_matches_its_spec(op: str, c_in: int, stride: int) -> None:
    torch.set_num_threads(1)
    spec = make_op(op, c_in, 4, stride)
    assert spec is not None
    shape = (c_in, 8, 8)
    m = spec.build()
    assert totals(profile(m, shape)) == totals(part_cost(spec, shape))
    assert m(torch.randn(1, *shape)).shape[1:] == part_of(spec, shape).out_shape


def part_cost(spec: object, shape: tuple[int, ...]) -> object:
    g = GraphBuilder(shape)
    spec.emit(g, 0)  # type: ignore[attr-defined]
    from nasforge.cost._cost import analyze

    return analyze(g.nodes)


def test_factorized_reduce_rejects_odd_channels() -> None:
    with pytest.raises(NasforgeError, match="even"):
        FactorizedReduce(4, 5)
    assert make_op("none", 4, 4) is None
    with pytest.raises(NasforgeError, match="unknown cell op"):
        make_op("conv_2x2", 4, 4)
    assert isinstance(part_of(FactorizedReduce(4, 4), (4, 8, 8)), Part)


def test_unread_inputs_and_dead_cells_are_not_built() -> None:
    torch.set_num_threads(1)
    sp = get_space("nasnet", B=1, C=4, layers=6, resolution=16)
    # The normal cell reads only the cell two back, the reduction cell only the previous one: with
    # reductions at cells 2 and 4, the outputs of cells 0, 2 and 4 are never read.
    a = sp.parse("normal=|skip_connect~0|max_pool_3x3~0|add|;reduce=|nor_conv_3x3~1|skip_connect~1|add|")
    net = sp.network_spec(a)
    assert net.live() == (False, True, False, True, False, True)
    assert net.cells[1].reads() == (True, False)
    m = sp.build(a)
    assert len(m.cells) == 3 and all(c.pre1 is None for c in m.cells)
    m(torch.randn(2, 3, 16, 16)).pow(2).mean().backward()
    assert all(p.grad is not None for p in m.parameters())
    assert totals(profile(m, sp.input_shape(a))) == totals(sp.cost(a))


def test_darts_zero_nodes_read_only_the_shape() -> None:
    torch.set_num_threads(1)
    sp = get_space("darts", nodes=2, **TINY)
    a = sp.parse("normal=|none~0|skip_connect~1|+|none~1|none~2|;reduce=|none~0|none~1|+|sep_conv_3x3~1|none~2|")
    net = sp.network_spec(a)
    assert net.cells[1].reads() == (False, True) and net.cells[1].has_zero_node()
    m = sp.build(a)
    y = m(torch.randn(2, 3, 16, 16))
    assert y.shape == (2, 10)
    assert totals(profile(m, sp.input_shape(a))) == totals(sp.cost(a))


@pytest.mark.parametrize(("name", "opts"), [
    ("darts", {}),
    ("nasnet", {}),
    ("darts", {"C": 4, "layers": 5, "nodes": 2, "resolution": 16}),
    ("darts", {"C": 4, "nodes": 1, "layers": 4, "ops": ["none", "skip_connect", "avg_pool_3x3"], "resolution": 16}),
    ("nasnet", {"B": 2, "layers": 6, "C": 4, "resolution": 16}),
    ("nasnet", {"B": 1, "layers": 7, "C": 4, "ops": ["skip_connect", "max_pool_3x3"], "resolution": 16}),
    ("nasnet", {"B": 2, "layers": 2, "C": 4, "cell_inputs_only": True, "resolution": 16}),
])
def test_chained_cell_cost_equals_whole_network_emission(name: str, opts: dict[str, object]) -> None:
    sp = get_space(name, **opts)
    rng = np.random.default_rng(5)
    for _ in range(40):
        a = sp.sample(rng)
        net = sp.network_spec(a)
        fast, full = net.cost(), net.cost(layers=True)
        assert totals(fast) == totals(full) and fast.output_shape == full.output_shape, str(a)


def test_darts_reads_every_naslib_nb301_encoding(shared_data: Path) -> None:
    path = shared_data / "naslib_zc_subsets" / "zc_nasbench301.json"
    table = json.loads(path.read_text())["nasbench301"]["cifar10"]
    sp = get_space("darts")
    archs = [sp.naslib_arch(enc) for enc in table]
    assert len(archs) == len(set(archs)) == 500
    assert all(sp.parse(str(a)) == a for a in archs[:50])
    first = sp.genotype(archs[0])["normal"][0]
    assert {e[0] for e in first} <= set(DARTS_OPS) - {"none"}
    with pytest.raises(NasforgeError, match=r"op ids 0\.\.6"):
        sp.naslib_arch("[[(0, 9)], [(0, 1)]]")
