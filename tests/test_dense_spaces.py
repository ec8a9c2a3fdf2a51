"""The dense-prediction spaces: ``nasfpn`` (detection) and ``lattice`` for segmentation.

Exact size by brute-force enumeration, the published NAS-FPN and the reference implementation's output rule, the
baselines (plain FPN, no neck, the fixed down-up lattice path), analytic == traced cost (peak memory included),
the dense contract's output shapes, the topology graph, one-line errors, and ONNX export run in onnxruntime.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from nasforge.cost import profile
from nasforge.errors import NasforgeError
from nasforge.spaces import Architecture, SearchSpace, get_space
from nasforge.spaces.nasfpn import PUBLISHED
from nasforge.testing.pytest_spaces import check_task_outputs

TINY = {"channels": 4, "head_convs": 1, "num_classes": 3}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# -- nasfpn: size, strings, the published cells ---------------------------------------------------------------


@pytest.mark.parametrize(("cells", "levels"), [(1, 2), (2, 2), (2, 3), pytest.param(3, 2, marks=pytest.mark.slow)])
def test_size_is_the_number_of_distinct_networks_by_brute_force(cells: int, levels: int) -> None:
    """Every (level, op, ordered input pair) of every cell written as a string, parsed, and counted once per
    distinct canonical architecture: the count is ``size()``, and the space's own enumeration gives the same set."""
    sp = get_space("nasfpn", cells=cells, levels=levels)
    names = [f"P{3 + i}" for i in range(levels)]
    per_cell = []
    for k in range(cells):
        pool = [*names, *(f"c{i + 1}" for i in range(k))]
        per_cell.append([f"{lv}={op}({x},{y})" for lv in names for op in ("sum", "att")
                         for x, y in itertools.permutations(pool, 2)])
    distinct = {sp.parse("|".join(combo)) for combo in itertools.product(*per_cell)}
    assert len(distinct) == sp.size()
    assert set(sp.enumerate()) == distinct


def test_the_published_nasfpn_and_the_reference_output_rule() -> None:
    """The published 7 cells parse and round-trip; as the reference implementation, the output cells add the maps
    nothing has read (P5 into the P5 cell c5, P7 into the P7 cell c6) and the last five cells are the outputs."""
    sp = get_space("nasfpn")
    a = sp.named_archs()["published"]
    assert str(a) == PUBLISHED and sp.parse(str(a)) == a
    assert sp.describe()["named_archs"] == {"published": PUBLISHED} and sp.describe()["tasks"] == ["detection"]
    cells, outputs = sp._plan(a.choices)
    assert [c.extra for c in cells] == [(), (), (), (), (2,), (4,), ()]
    assert outputs == [7, 8, 9, 11, 10]  # P3 <- c3, P4 <- c4, P5 <- c5, P6 <- c7, P7 <- c6 (pool indices)
    c1 = cells[0]
    assert (c1.level, c1.op, c1.a, c1.b) == (1, "attention", 1, 3)
    g = sp.graph(a)
    ids = {n["id"] for n in g["nodes"]}
    assert {e["from"] for e in g["edges"]} <= ids and {e["to"] for e in g["edges"]} <= ids
    assert {"from": "P5", "to": "c5", "kind": "unconnected"} in g["edges"]
    assert sum(e["kind"] == "output" for e in g["edges"]) == 5


def test_input_order_and_spacing_do_not_matter() -> None:
    sp = get_space("nasfpn", cells=2, levels=2)
    assert sp.parse("P4=att(P4,P3)| P3=sum(c1,P3)") == sp.parse("P4=att(P3,P4)|P3=sum(P3,c1)")


@pytest.mark.parametrize(("text", "match"), [
    ("P4=sum(P3,P4)", "expected 2 cells"),
    ("P4=sum(P3,P4)|P9=sum(P3,c1)", "level P9; allowed: P3, P4"),
    ("P4=sum(P3,c1)|P3=sum(P3,c1)", "cell 1 reads c1; allowed: P3, P4"),
    ("P4=sum(P3,P3)|P3=sum(P3,c1)", "reads P3 twice"),
    ("P4=max(P3,P4)|P3=sum(P3,c1)", "malformed"),
])
def test_bad_strings_are_one_line(text: str, match: str) -> None:
    with pytest.raises(NasforgeError, match=match) as e:
        get_space("nasfpn", cells=2, levels=2).parse(text)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(("options", "match"), [
    ({"neck": "bifpn"}, "'neck' has bad value 'bifpn'; allowed: cells, fpn, none"),
    ({"levels": 6}, "'levels' has bad value 6"),
    ({"backbone": "nope"}, "'backbone' has bad value 'nope'; allowed: tiny, "),
    ({"backbone": "resnet18", "in_channels": 1}, "takes 3 input channels"),
    ({"backbone": "alexnet"}, "no stage at stride"),
])
def test_bad_options_are_one_line(options: dict[str, object], match: str) -> None:
    with pytest.raises(NasforgeError, match=match):
        get_space("nasfpn", **options)


# -- cost == trace, the contract's shapes ---------------------------------------------------------------------


def _check_cost_and_shapes(sp: SearchSpace, a: Architecture, classes: int) -> None:
    c = sp.cost(a)
    model = sp.build(a).eval()
    t = profile(model, sp.input_shape(a))
    got = (c.params, c.macs, c.other_ops, c.activations, c.peak_activations, c.output_shape)
    assert got == (t.params, t.macs, t.other_ops, t.activations, t.peak_activations, t.output_shape), str(a)
    assert sum(p.numel() for p in model.parameters()) == c.params
    layers = sp.network_spec(a).cost(layers=True)  # type: ignore[attr-defined]
    assert (layers.params, layers.macs, layers.activations, layers.peak_activations) == got[:2] + got[3:5]
    x = torch.randn(2, *sp.input_shape(a))
    with torch.no_grad():
        check_task_outputs(sp, model, x, model(x), classes)


@pytest.mark.parametrize("options", [
    {"cells": 4, "levels": 3, "resolution": 40, **TINY},
    {"cells": 7, "levels": 5, "resolution": 64, **TINY},
    {"neck": "fpn", "levels": 5, "resolution": 64, **TINY},
    {"neck": "none", "levels": 4, "resolution": 48, **TINY},
    pytest.param({"backbone": "mobilenet_v2", "cells": 3, "levels": 4, "resolution": 64, **TINY},
                 marks=pytest.mark.slow),  # seconds: a zoo backbone
])
def test_nasfpn_analytic_cost_is_the_traced_cost(options: dict[str, object]) -> None:
    sp = get_space("nasfpn", **options)
    rng = np.random.default_rng(3)
    archs = [sp.sample(rng) for _ in range(3 if sp.size() > 1 else 1)] + list(sp.named_archs().values())
    for a in archs:
        _check_cost_and_shapes(sp, a, 3)


def test_the_baselines_share_backbone_and_head() -> None:
    """no neck < plain FPN < 7 cells in MACs, with the same backbone and the same head weights."""
    opts = {"resolution": 64, **TINY}
    cells, fpn, none = (get_space("nasfpn", neck=n, **opts) for n in ("cells", "fpn", "none"))
    a = cells.named_archs()["published"]
    c_cells, c_fpn, c_none = cells.cost(a), fpn.cost(fpn.named_archs()["fpn"]), none.cost(none.named_archs()["none"])
    assert c_none.macs < c_fpn.macs < c_cells.macs
    assert fpn.build(fpn.named_archs()["fpn"]).strides == (8, 16, 32, 64, 128)
    assert none.build(none.named_archs()["none"]).strides == (32,)
    assert str(fpn.named_archs()["fpn"]) == "fpn" and fpn.size() == 1 and fpn.parse("fpn") == fpn.sample(
        np.random.default_rng(0))
    with pytest.raises(NasforgeError, match="one architecture, 'fpn'"):
        fpn.parse(PUBLISHED)


@pytest.mark.parametrize(("side", "levels"), [(128, 5), (100, 4), (64, 4), (32, 3), (12, 2)])
def test_for_data_uses_the_levels_the_image_has(side: int, levels: int) -> None:
    fitted = get_space("nasfpn", **TINY).for_data((1, side, side), 4, task="detection")
    assert (fitted.levels, fitted.resolution, fitted.in_channels, fitted.num_classes) == (levels, side, 1, 4)
    kept = get_space("nasfpn", levels=3).for_data((1, 128, 128), 4, keep={"levels"}, task="detection")
    assert kept.levels == 3
    assert get_space("nasfpn", backbone="mobilenet_v2").for_data((1, 64, 64), 4, task="detection").in_channels == 3


# -- lattice for segmentation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [32, 37])
def test_lattice_segmentation_cost_and_shapes(resolution: int) -> None:
    sp = get_space("lattice", layers=6, levels=3, base_channels=4, resolution=8).for_data(
        (1, resolution, resolution), 5, task="segmentation")
    assert sp.task == "segmentation" and sp.resolution == resolution
    rng = np.random.default_rng(0)
    for a in [sp.named_archs()["down-up"], sp.sample(rng), sp.sample(rng)]:
        c = sp.cost(a)
        model = sp.build(a).eval()
        t = profile(model, sp.input_shape(a))
        assert (c.params, c.macs, c.activations, c.peak_activations, c.output_shape) == (
            t.params, t.macs, t.activations, t.peak_activations, t.output_shape) == (
            t.params, t.macs, t.activations, t.peak_activations, (5, resolution, resolution))
        x = torch.randn(2, *sp.input_shape(a))
        with torch.no_grad():
            check_task_outputs(sp, model, x, model(x), 5)
    model.train()
    torch.nn.functional.cross_entropy(model(x), torch.randint(0, 5, (2, resolution, resolution))).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_lattice_down_up_path_and_graph() -> None:
    sp = get_space("lattice", layers=8, levels=4)
    a = sp.named_archs()["down-up"]
    assert str(a) == "8-16-32-32-32-16-8-4"
    assert str(get_space("lattice", layers=4, levels=4).named_archs()["down-up"]) == "8-16-8-4"
    g = sp.graph(a)
    assert [n["level"] for n in g["nodes"][1:-1]] == [f"1/{f}" for f in (8, 16, 32, 32, 32, 16, 8, 4)]
    assert [e["kind"] for e in g["edges"]] == ["down", "down", "down", "stay", "stay", "up", "up", "up", "output"]
    with pytest.raises(NasforgeError, match="cannot serve task 'detection'"):
        get_space("lattice", task="detection")


# -- ONNX ---------------------------------------------------------------------------------------------------


@pytest.mark.slow  # exports take a few seconds each
@pytest.mark.parametrize("which", ["nasfpn", "lattice"])
def test_onnx_export_runs_in_onnxruntime(which: str, tmp_path: object) -> None:
    import onnxruntime as ort

    if which == "nasfpn":
        sp = get_space("nasfpn", resolution=64, **TINY)
        a = sp.named_archs()["published"]
    else:
        sp = get_space("lattice", layers=4, levels=3, base_channels=4, resolution=32, task="segmentation")
        a = sp.sample(np.random.default_rng(1))
    model = sp.build(a).eval()
    x = torch.randn(1, *sp.input_shape(a))
    path = f"{tmp_path}/{which}.onnx"
    torch.onnx.export(model, (x,), path, opset_version=17, dynamo=False)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        want = [y.numpy() for y in (model(x) if which == "nasfpn" else (model(x),))]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
