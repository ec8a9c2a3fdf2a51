"""``nasforge profile``: JSON and table output for zoo models and SPACE:ARCH, device fits, one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import Cli
from nasforge import zoo
from nasforge.cli import main
from nasforge.errors import NasforgeError
from nasforge.spaces import get_space

torch.set_num_threads(1)

NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
LAYER_KEYS = {"name", "op", "in_shape", "out_shape", "params", "macs"}


def run_json(cli: Cli, *args: str) -> dict[str, Any]:
    d: dict[str, Any] = cli.json("profile", *args)
    assert cli.out.count("\n") == 1  # one object on one line
    return d


def test_zoo_model_json(cli: Cli) -> None:
    d = run_json(cli, "mobilenet_v2")
    ref = zoo.create("mobilenet_v2").cost()
    assert d["params"] == 3_504_872 == ref.params
    assert (d["macs"], d["activations"], d["peak_memory_bytes"]) == (ref.macs, ref.activations, ref.peak_memory_bytes)
    assert (d["weight_bytes"], d["precision"], d["resolution"]) == (4 * ref.params, "fp32", 224)
    assert d["layers"] and all(set(r) >= LAYER_KEYS for r in d["layers"])
    assert sum(r["macs"] for r in d["layers"]) == d["macs"]
    assert d["layers"][0]["name"] == "stem.0.conv" and d["layers"][0]["out_shape"] == [32, 112, 112]
    assert "fits" not in d


def test_int8_and_device_fits(cli: Cli) -> None:
    d = run_json(cli, "squeezenet1_1", "--resolution", "64", "--precision", "int8", "--device", "stm32f746")
    assert d["precision"] == "int8" and d["weight_bytes"] == d["params"] == 1_235_496
    assert d["peak_memory_bytes"] == d["peak_activations"]
    fits = d["fits"]
    assert fits["device"] == "stm32f746" and fits["fits"] is False  # 1.2 MB of int8 weights > 1 MiB flash
    sram, flash = fits["checks"]
    assert (sram["resource"], sram["need_bytes"], sram["limit_bytes"]) == ("sram", d["peak_memory_bytes"], 327_680)
    assert (flash["resource"], flash["need_bytes"], flash["ok"]) == ("flash", 1_235_496, False)


def test_device_from_yaml(cli: Cli, tmp_path: Path) -> None:
    f = tmp_path / "board.yaml"
    f.write_text("name: bigboard\nkind: mcu\nsram_bytes: 2MiB\nflash_bytes: 8MiB\n")
    d = run_json(cli, "squeezenet1_1", "-r", "64", "-p", "int8", "--device", str(f))
    assert d["fits"]["device"] == "bigboard" and d["fits"]["fits"] is True


def test_traced_zoo_equals_analytic(cli: Cli) -> None:
    a = run_json(cli, "shufflenet_v2_x1_0", "-r", "64")
    t = run_json(cli, "shufflenet_v2_x1_0", "-r", "64", "--trace")
    keys = ("params", "macs", "other_ops", "activations", "peak_memory_bytes")
    assert [a[k] for k in keys] == [t[k] for k in keys]
    assert [(r["op"], r["out_shape"], r["macs"]) for r in a["layers"]] == [
        (r["op"], r["out_shape"], r["macs"]) for r in t["layers"]]


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "resnet18", "-r", "64", "--device", "iphone11"]) == 0
    out = capsys.readouterr().out
    for text in ("stages.1.0.shortcut.conv", "conv2d", "11,689,512", "peak memory", "iphone11 (phone): fits"):
        assert text in out
    assert main(["profile", "resnet18", "-r", "64", "--no-layers"]) == 0
    out = capsys.readouterr().out
    assert "stages.1.0.shortcut.conv" not in out and "11,689,512" in out


def test_space_arch(cli: Cli) -> None:
    space = get_space("nb201")
    ref = space.cost(space.parse(NB201))
    d = run_json(cli, f"nb201:{NB201}")
    assert (d["params"], d["macs"], d["peak_activations"]) == (ref.params, ref.macs, ref.peak_activations)
    assert d["resolution"] == 32 and d["input_shape"] == [3, 32, 32]
    assert sum(r["macs"] for r in d["layers"]) == d["macs"]
    assert sum(r["params"] for r in d["layers"]) == d["params"]
    assert "warning" not in cli.err


def test_mobilenet_space_arch_at_another_resolution(cli: Cli) -> None:
    space = get_space("mobilenet")
    arch = space.sample(np.random.default_rng(1))
    d = run_json(cli, f"mobilenet:{arch}", "-r", "64")
    ref = space.cost(arch, 64)
    assert (d["params"], d["macs"], d["resolution"]) == (ref.params, ref.macs, 64)
    assert sum(r["macs"] for r in d["layers"]) == d["macs"]


def test_unknown_model_lists_known_names(cli: Cli) -> None:
    err = cli.error("profile", "resnet9000")
    assert "unknown model 'resnet9000'" in err
    assert all(name in err for name in zoo.list_models())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("resnet18", "-r", "0"), "resolution 0 must be a positive integer"),
        (("resnet18", "-r", "-5"), "resolution -5 must be a positive integer"),
        (("resnet18", "-r", "abc"), "Invalid value for '--resolution'"),
        (("alexnet", "-r", "16"), "resolution 16 is too small for alexnet"),
        (("resnet18", "-p", "fp16"), "precision 'fp16' is not allowed here; allowed: fp32, int8"),
        (("resnet18", "--device", "pdp11"), "unknown device 'pdp11'"),
        (("nb201:|bogus~0|",), "nb201"),
        (("nosuchspace:abc",), "unknown space 'nosuchspace'"),
    ],
)
def test_bad_input_exit_2_one_line(cli: Cli, args: tuple[str, ...], message: str) -> None:
    assert message in cli.error("profile", *args)


def test_python_api_profiles_names_and_architectures() -> None:
    import nasforge

    c = nasforge.profile("mobilenet_v2", (3, 160, 160))
    ref = zoo.create("mobilenet_v2", 1000, 160).cost()
    assert (c.params, c.macs, c.peak_activations) == (ref.params, ref.macs, ref.peak_activations) and c.layers
    space = get_space("nb201")
    arch = space.parse(NB201)
    by_text, by_arch = nasforge.profile(f"nb201:{NB201}"), nasforge.profile(arch)
    assert by_text == by_arch and by_arch.macs == space.cost(arch).macs
    assert sum(r.params for r in by_arch.layers) == by_arch.params


def test_cost_profile_takes_modules_and_specs_only() -> None:
    """``nasforge.cost`` sits below the zoo and the spaces: names and architectures go through ``nasforge.profile``."""
    from nasforge.cost import profile

    spec = zoo.create("resnet18", 10, 32)
    assert profile(spec).macs == spec.cost().macs
    for obj in ("resnet18", f"nb201:{NB201}", get_space("nb201").parse(NB201)):
        with pytest.raises(NasforgeError, match=r"use nasforge\.profile"):
            profile(obj)


def test_profile_takes_batched_shape_and_sample_tensor() -> None:
    """torchinfo-style ``(1, C, H, W)`` and a sample tensor give the per-sample cost; batch 2 is one clear error."""
    import nasforge

    module = zoo.create("resnet18", 10, 32).build()
    plain = nasforge.profile(module, (3, 32, 32))
    assert nasforge.profile(module, (1, 3, 32, 32)) == plain
    assert nasforge.profile(module, torch.zeros(1, 3, 32, 32)) == plain
    assert nasforge.profile("resnet18", (1, 3, 64, 64)).macs == nasforge.profile("resnet18", (3, 64, 64)).macs
    with pytest.raises(NasforgeError, match=r"batch 2; costs are per sample \(batch 1\): pass \(1, 3, 32, 32\)"):
        nasforge.profile(module, (2, 3, 32, 32))
    with pytest.raises(NasforgeError, match="batch 8; costs are per sample"):
        nasforge.profile(module, torch.zeros(8, 3, 32, 32))
    with pytest.raises(NasforgeError, match="batch first"):
        nasforge.profile(module, torch.zeros(3, 32, 32))


def test_live_memory_per_layer_shows_the_peak(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    d = run_json(cli, "mobilenet_v2", "-r", "64", "-p", "int8")
    live = [r["live_activations"] for r in d["layers"]]
    assert max(live) == d["peak_activations"] and min(live) > 0
    assert all(r["live_bytes"] == r["live_activations"] for r in d["layers"])  # int8: one byte per element
    peak_row = d["layers"][live.index(max(live))]
    assert main(["profile", "mobilenet_v2", "-r", "64", "-p", "int8"]) == 0
    out = capsys.readouterr().out
    assert "live mem" in out
    marked = [line for line in out.splitlines() if "<- peak" in line]
    assert marked and peak_row["name"] in marked[0]


def test_space_arch_rows_analytic_equal_traced(cli: Cli) -> None:
    """SPACE:ARCH rows come from the network spec (no torch); ``--trace`` gives the same ops, shapes, MACs, memory."""
    a = run_json(cli, f"nb201:{NB201}")
    t = run_json(cli, f"nb201:{NB201}", "--trace")
    keys = ("op", "out_shape", "params", "macs", "live_activations")
    assert [[r[k] for k in keys] for r in a["layers"]] == [[r[k] for k in keys] for r in t["layers"]]
