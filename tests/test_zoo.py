"""The zoo: every registered model is enrolled in every test (timm style)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import Cli
from nasforge.blocks import NetworkSpec
from nasforge.cli import main
from nasforge.errors import NasforgeError
from nasforge.zoo import _registry, create, list_models, model_info, register_model
from nasforge.zoo._registry import ModelInfo, min_resolution

torch.set_num_threads(1)

MODELS = list_models()

# torchvision reference implementations at 1000 classes (the table)
EXPECTED_PARAMS = {
    "alexnet": 61_100_840,
    "vgg16": 138_357_544,
    "squeezenet1_0": 1_248_424,
    "squeezenet1_1": 1_235_496,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "resnext50_32x4d": 25_028_904,
    "mobilenet_v2": 3_504_872,
    "shufflenet_v2_x1_0": 2_278_604,
}


def test_registry_holds_the_classics() -> None:
    assert set(EXPECTED_PARAMS) | {"mobilenet_v1", "shufflenet_v1"} <= set(MODELS)


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_params_exact(name: str) -> None:
    assert create(name).cost().params == EXPECTED_PARAMS[name]
    assert model_info(name).params == EXPECTED_PARAMS[name]


@pytest.mark.parametrize("name", MODELS)
def test_macs_within_one_percent_of_published(name: str) -> None:
    info = model_info(name)
    macs = create(name, resolution=224).cost().macs
    assert abs(macs / info.macs - 1) < 0.01, (macs, info.macs)


@pytest.mark.parametrize("name", MODELS)
def test_info_names_its_sources(name: str) -> None:
    info = model_info(name)
    assert info.name == name
    assert 0.5 < info.top1 < 0.85  # a fraction (the published percent / 100)
    assert info.top1_source and info.macs_source


@pytest.mark.parametrize("name", MODELS)
def test_module_params_equal_analytic_params(name: str) -> None:
    spec = create(name)
    with torch.device("meta"):  # no memory, no init: counting only
        m = spec.build()
    assert sum(p.numel() for p in m.parameters()) == spec.cost().params


@pytest.mark.parametrize("name", MODELS)
def test_per_layer_analysis_equals_fast_chain(name: str) -> None:
    spec = create(name, num_classes=10, resolution=64)
    full, fast = spec.cost(layers=True), spec.cost()
    assert (full.params, full.macs, full.other_ops, full.activations, full.peak_activations) == (
        fast.params, fast.macs, fast.other_ops, fast.activations, fast.peak_activations)
    assert full.output_shape == (10,)


def _cheap_module(spec: NetworkSpec) -> nn.Module:
    """The built module with deterministic averaging weights, skipping the (slow) random init of big layers."""
    with torch.device("meta"):
        m = spec.build()
    m = m.to_empty(device="cpu")
    with torch.no_grad():
        for pname, p in m.named_parameters():
            if pname.endswith("bias"):
                p.zero_()
            else:
                p.fill_(1.0 if p.dim() == 1 else p.shape[0] / p.numel())
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.reset_running_stats()
    return m.eval()


@pytest.mark.parametrize("name", MODELS)
def test_forward_at_small_resolution(name: str) -> None:
    r = max(32, min_resolution(name))
    spec = create(name, num_classes=7, resolution=r)
    with torch.no_grad():
        y = _cheap_module(spec)(torch.rand(2, 3, r, r))
    assert y.shape == (2, 7)
    assert torch.isfinite(y).all()


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(NasforgeError, match="unknown model 'resnet9'; known: alexnet, ") as e:
        create("resnet9")
    assert "\n" not in str(e.value)
    with pytest.raises(NasforgeError, match="unknown model"):
        model_info("nope")


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "224", None])
def test_resolution_must_be_a_positive_int(bad: object) -> None:
    with pytest.raises(NasforgeError, match=r"resolution .* must be a positive integer"):
        create("resnet18", resolution=bad)  # type: ignore[arg-type]


def test_num_classes_must_be_a_positive_int() -> None:
    with pytest.raises(NasforgeError, match="num_classes 0 must be a positive integer"):
        create("resnet18", num_classes=0)


def test_too_small_resolution_names_model_and_minimum() -> None:
    with pytest.raises(NasforgeError, match=r"resolution 62 is too small for alexnet: .* at least 63$"):
        create("alexnet", resolution=62)
    with pytest.raises(NasforgeError, match=r"too small for vgg16: .* at least 32$"):
        create("vgg16", resolution=20)


@pytest.mark.parametrize("name", MODELS)
def test_min_resolution_is_tight(name: str) -> None:
    r = min_resolution(name)
    assert create(name, resolution=r).cost().output_shape == (1000,)
    if r > 1:
        with pytest.raises(NasforgeError, match=f"too small for {name}"):
            create(name, resolution=r - 1)


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1", "alexnet"])
def test_min_resolution_agrees_with_torch(name: str) -> None:
    """The analytic shapes (ceil-mode pools, unpadded convs) give the same limit torch has."""
    r = min_resolution(name)
    m = _cheap_module(create(name, num_classes=3, resolution=r))
    with torch.no_grad():
        assert m(torch.rand(1, 3, r, r)).shape == (1, 3)
        with pytest.raises(RuntimeError):
            m(torch.rand(1, 3, r - 1, r - 1))


def test_register_model_enrols_a_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_registry, "_BUILDERS", dict(_registry._BUILDERS))
    monkeypatch.setattr(_registry, "_INFO", dict(_registry._INFO))

    @register_model(family="toy", top1_percent=10.0, top1_source="here", macs=1, macs_source="here")
    def toy(num_classes: int, resolution: int) -> NetworkSpec:
        return create("squeezenet1_1", num_classes, resolution)

    assert "toy" in list_models()
    assert model_info("toy") == ModelInfo("toy", "toy", 0.1, "here", 1, "here")  # percent in, fraction stored
    assert create("toy", 5, 64).cost().output_shape == (5,)
    with pytest.raises(ValueError, match="registered twice"):
        register_model(family="toy", top1_percent=1.0, top1_source="", macs=1, macs_source="")(toy)


# -- the `nasforge zoo` command ------------------------------------------------------------------------


def test_cli_zoo_table_lists_every_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    for name in MODELS:
        assert name in out
    assert "15,470.3" in out  # vgg16 MACs (M) at 224


def test_cli_zoo_json(cli: Cli) -> None:
    rows = cli.json("zoo", "--resolution", "160")
    assert [r["name"] for r in rows] == MODELS
    keys = {"name", "family", "resolution", "precision", "params", "macs", "activations", "peak_memory_bytes",
            "weight_bytes", "top1", "top1_source", "published_macs", "macs_source"}
    assert all(set(r) == keys for r in rows)
    r18 = next(r for r in rows if r["name"] == "resnet18")
    spec_cost = create("resnet18", resolution=160).cost()
    assert (r18["resolution"], r18["params"], r18["macs"]) == (160, 11_689_512, spec_cost.macs)
    assert (r18["peak_memory_bytes"], r18["weight_bytes"]) == (4 * spec_cost.peak_activations, 4 * 11_689_512)


def test_cli_zoo_plot_writes_png(tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "zoo.png"
    assert len(cli.json("zoo", "--plot", str(out))) == len(MODELS)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resolution", "0"], "resolution 0 must be a positive integer"),
        (["--resolution", "-5"], "resolution -5 must be a positive integer"),
        (["--resolution", "40"], "resolution 40 is too small for alexnet: its downsampling needs at least 63"),
        (["--resolution", "abc"], "--resolution"),
        (["--plot", "zoo.jpg"], "must end with .png"),
        (["--plot", "no/such/folder/zoo.png"], "does not exist"),
    ],
)
def test_cli_zoo_bad_input_exits_2(args: list[str], message: str, cli: Cli) -> None:
    assert message in cli.error("zoo", *args)
