"""Design: TinyNAS space choice on stm32f746, RegNet EDF on NB201 data, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nasforge.cli import main
from nasforge.design import edf, tinynas
from nasforge.design._edf import parse_space_spec
from nasforge.errors import NasforgeError
from nasforge.estimators import TabularEstimator
from nasforge.hardware import get_device

SMALL = {"num_classes": 10}


def test_tinynas_picks_the_fitting_space_with_most_macs() -> None:
    dev = get_device("stm32f746")
    res = tinynas("mobilenet", dev, [0.3, 0.5, 1.0], [64, 128, 224], samples=60, options=SMALL, min_share=0.0)
    assert len(res.candidates) == 9
    by = {(c.width, c.resolution): c for c in res.candidates}
    assert by[(1.0, 224)].fitting == 0  # ~800 KB of int8 activations at 224 px, full width: never fits
    assert by[(0.3, 64)].share > 0.9
    fitting = [c for c in res.candidates if c.fitting]
    assert res.chosen.mean_macs == max(c.mean_macs or 0 for c in fitting)
    assert all(m > 0 for m in res.chosen.macs) and list(res.chosen.macs) == sorted(res.chosen.macs)
    again = tinynas("mobilenet", dev, [0.3, 0.5, 1.0], [64, 128, 224], samples=60, options=SMALL, min_share=0.0)
    assert again.to_dict() == res.to_dict()  # seeded


def test_tinynas_default_scales_the_head_and_picks_a_mid_space_for_imagenet() -> None:
    # MCUNet's setting: 1000 classes on stm32f746. The head scales with the width (head_scale), so narrow
    # widths fit the 1 MiB flash; wide ones do not; the default min share keeps the choice off the few
    # lucky samples of an over-large candidate.
    dev = get_device("stm32f746")
    res = tinynas("mobilenet", dev, [0.2, 0.3, 0.4, 0.5], [96, 144, 192], samples=40)
    assert res.options["head_scale"] is True and res.min_share == 0.5
    by = {(c.width, c.resolution): c for c in res.candidates}
    assert by[(0.2, 96)].share == 1.0 and by[(0.5, 96)].fitting == 0  # w0.5: head + classifier over 1 MiB flash
    eligible = [c for c in res.candidates if c.fitting and c.share >= 0.5]
    assert res.chosen.mean_macs == max(c.mean_macs or 0 for c in eligible)
    assert (res.chosen.width, res.chosen.resolution) == (0.4, 144)  # not the smallest width, not a 1%-fit corner
    assert res.to_dict()["options"] == {"head_scale": True}
    # the plain published rule (min_share=0) is still there, and the fixed head is one option away
    plain = tinynas("mobilenet", dev, [0.2, 0.3, 0.4, 0.5], [96, 144, 192], samples=40, min_share=0.0)
    assert (plain.chosen.mean_macs or 0) >= (res.chosen.mean_macs or 0)
    with pytest.raises(NasforgeError, match="no candidate space"):
        tinynas("mobilenet", dev, [0.2], [96], samples=10, options={"head_scale": False})


def test_tinynas_min_share_and_errors() -> None:
    dev = get_device("stm32f746")
    res = tinynas("mobilenet", dev, [0.5], [96, 192], samples=60, options=SMALL, min_share=0.5)
    assert res.chosen.share >= 0.5
    with pytest.raises(NasforgeError, match="grid is empty"):
        tinynas("mobilenet", dev, [], [96], samples=5, options=SMALL)
    with pytest.raises(NasforgeError, match=r"min_share=1\.5 must be in 0\.\.1"):
        tinynas("mobilenet", dev, [0.5], [96], samples=5, options=SMALL, min_share=1.5)
    with pytest.raises(NasforgeError, match=r"at least 100% .* the best is w0\.4-r128 with .*lower min_share"):
        tinynas("mobilenet", dev, [0.4], [128], samples=20, min_share=1.0)
    # 1000 classes behind a fixed 1280-channel head: the classifier alone is 1.28 MB of int8 weights
    with pytest.raises(NasforgeError, match=r"no candidate space .* closest: w0\.2-r(48|96) \(sram ok, flash"):
        tinynas("mobilenet", dev, [0.2], [48, 96], samples=20, options={"head_scale": False})


@pytest.mark.slow
def test_cli_tinynas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "cdf.png"
    args = ["design", "tinynas", "--space", "mobilenet", "--device", "stm32f746", "--samples", "40",
            "--widths", "0.3,0.5", "--resolutions", "96,160", "-o", "num_classes=10"]
    assert main([*args, "--json", "--plot", str(plot)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["candidates"]) == 4 and d["chosen"]["space"] in {c["space"] for c in d["candidates"]}
    assert plot.stat().st_size > 1000
    assert main(args) == 0
    assert "chosen:" in capsys.readouterr().out
    for bad, msg in [(["--widths", ""], "grid is empty"), (["--device", "nosuch"], "unknown device 'nosuch'")]:
        assert main([*args, *bad]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1
    # the default space at 1000 classes: fits once the head scales (the default), not with the fixed head
    mcu = ["design", "tinynas", "--device", "stm32f746", "--samples", "10", "--widths", "0.2,0.6",
           "--resolutions", "48"]
    assert main(mcu) == 0
    out = capsys.readouterr().out
    assert "head_scale=True" in out and "chosen: w0.2-r48" in out
    assert main([*mcu, "-o", "head_scale=false"]) == 2
    err = capsys.readouterr().err
    assert "closest" in err and "flash" in err and err.count("\n") == 1


def test_space_spec_restriction() -> None:
    s = parse_space_spec("nb201:-none,-avg_pool_3x3")
    sample = s.sampler()
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert all(s.space.ops[c] not in ("none", "avg_pool_3x3") for c in sample(rng).choices)  # type: ignore[attr-defined]
    with pytest.raises(NasforgeError, match="not a choice"):
        parse_space_spec("nb201:-conv_9x9").sampler()
    with pytest.raises(NasforgeError, match="NAME:-VALUE"):
        parse_space_spec("nb201:none")


@pytest.mark.slow
def test_edf_on_nb201(tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_data: Path) -> None:
    acc_csv = shared_data / "nb201_nats_tss" / "nb201_cifar10_test_200ep_mean3seeds.csv"
    specs = [parse_space_spec("nb201"), parse_space_spec("nb201:-none,-avg_pool_3x3")]
    est = TabularEstimator(acc_csv, "arch", "cifar10_test_200ep", space=specs[0].space)
    curves = edf(specs, lambda s: est, 300, seed=0)
    full, conv = curves
    assert len(full.errors) == len(conv.errors) == 300
    # without none/pool edges the cells always compute: the median error is lower
    assert conv.to_dict()["median"] < full.to_dict()["median"]
    assert full.cdf(1.0) == 1.0 and full.cdf(0.0) == 0.0 and 0.05 < full.to_dict()["min"] < 0.1  # fractions
    plot = tmp_path / "edf.png"
    args = ["design", "edf", "--space", "nb201", "--space", "nb201:-none", "--table", str(acc_csv),
            "--arch-col", "arch", "--reward-col", "cifar10_test_200ep", "-n", "500"]
    assert main([*args, "--plot", str(plot), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["space"] for r in rows] == ["nb201", "nb201:-none"] and rows[0]["n"] == 500
    assert plot.stat().st_size > 1000
    for bad, msg in [(["-n", "20000"], "larger than the table"), (["--arch-col", "nope"], "arch column 'nope'"),
                     (["--reward-col", "nope"], "reward column 'nope'")]:
        assert main([*args, *bad]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1
