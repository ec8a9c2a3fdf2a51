"""Device profiles: built-in limits, fit verdicts with numbers, strict YAML loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasforge import NasforgeError
from nasforge.cost import Cost
from nasforge.hardware import Device, get_device
from nasforge.hardware._devices import list_devices, load_devices
from nasforge.units import parse_bytes


def cost(params: int, peak: int, precision: str = "fp32") -> Cost:
    return Cost(params, 0, 0, peak, peak, (3, 8, 8), (10,), precision)


def test_builtin_profiles() -> None:
    assert {"stm32f746", "iphone11", "v100", "host"} <= set(list_devices())
    mcu = get_device("stm32f746")
    assert (mcu.kind, mcu.sram_bytes, mcu.flash_bytes) == ("mcu", 320 * 1024, 1024 * 1024)
    assert get_device("iphone11").ram_bytes == 4 * 1024**3
    assert get_device("v100").ram_bytes == 32 * 1024**3
    assert get_device("host").ram_bytes > 0


def test_mcu_checks_sram_and_flash_at_the_precision() -> None:
    mcu = get_device("stm32f746")
    # 300k params: 1.2 MB at fp32 (> 1 MiB flash), 300 kB at int8; peak 100k elements: 400 kB / 100 kB
    fp32 = mcu.fits(cost(300_000, 100_000))
    assert not fp32["fits"]
    sram, flash = fp32["checks"]
    assert (sram["resource"], sram["need_bytes"], sram["limit_bytes"], sram["ok"]) == ("sram", 400_000, 327_680, False)
    assert (flash["resource"], flash["need_bytes"], flash["ok"]) == ("flash", 1_200_000, False)
    int8 = mcu.fits(cost(300_000, 100_000, "int8"))
    assert int8["fits"] and int8["precision"] == "int8"
    assert [c["need_bytes"] for c in int8["checks"]] == [100_000, 300_000]


def test_ram_devices_check_weights_plus_peak() -> None:
    d = Device("tiny", "phone", ram_bytes=1000)
    ok = d.fits(cost(100, 150))  # 400 + 600 = 1000 bytes: fits exactly
    assert ok["fits"] and ok["checks"][0]["need_bytes"] == 1000 and ok["checks"][0]["used"] == 1.0
    assert not d.fits(cost(100, 151))["fits"]


def test_parse_bytes() -> None:
    assert parse_bytes(512, "x") == 512
    assert parse_bytes("320 KiB", "x") == 320 * 1024
    assert parse_bytes("320kB", "x") == parse_bytes("320KB", "x") == 320_000
    assert parse_bytes("1.5GiB", "x") == 3 * 1024**3 // 2
    for bad in ("12 parsecs", "-1", True, 0, 1.5, "lots"):
        with pytest.raises(NasforgeError):
            parse_bytes(bad, "x")


def test_load_devices_from_yaml(tmp_path: Path) -> None:
    f = tmp_path / "devs.yaml"
    f.write_text("devices:\n"
                 "  - {name: nano33, kind: mcu, sram_bytes: 256KiB, flash_bytes: 1MiB, description: nRF52840}\n"
                 "  - {name: pi4, kind: cpu, ram_bytes: 4GB}\n")
    devs = load_devices(f)
    assert devs["nano33"] == Device("nano33", "mcu", 256 * 1024, 1024 * 1024, None, "nRF52840")
    assert devs["pi4"].ram_bytes == 4 * 1000**3  # GB is SI, GiB binary
    assert get_device(f"{f}:pi4") == devs["pi4"]
    with pytest.raises(NasforgeError, match="defines 2 devices"):
        get_device(str(f))
    one = tmp_path / "one.yml"
    one.write_text("name: board\nkind: mcu\nsram_bytes: 131072\nflash_bytes: 512KiB\n")
    assert get_device(str(one)).flash_bytes == 512 * 1024


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: a\nkind: mcu\nsram_bytes: 1\nflash_bytes: 1\nspeed: 3\n", "unknown key 'speed'"),
        ("name: a\nkind: toaster\nram_bytes: 1\n", "kind 'toaster' is not allowed; allowed: mcu, phone, gpu, cpu"),
        ("name: a\nkind: mcu\nflash_bytes: 1\n", "needs sram_bytes"),
        ("name: a\nkind: gpu\nram_bytes: [1]\n", "ram_bytes \\[1\\] is not a size; allowed: an integer"),
        ("name: 7\nkind: gpu\nram_bytes: 1\n", "name 7 must be a string"),
        ("kind: gpu\nram_bytes: 1\n", "missing key 'name'"),
        ("devices: []\n", "non-empty list"),
        ("devices:\n  - {name: a, kind: cpu, ram_bytes: 1}\n  - {name: a, kind: cpu, ram_bytes: 2}\n", "twice"),
        ("devices: [{name: a, kind: cpu, ram_bytes: 1}]\nextra: 1\n", "unknown top-level key 'extra'"),
        ("- 1\n", "expected a device mapping"),
        ("name: [\n", "not valid YAML"),
    ],
)
def test_bad_device_files_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(NasforgeError, match=message) as e:
        load_devices(f)
    assert "\n" not in str(e.value)


def test_unknown_device_lists_known() -> None:
    with pytest.raises(NasforgeError, match="unknown device 'pdp11'; known: host, iphone11, stm32f746, v100"):
        get_device("pdp11")
