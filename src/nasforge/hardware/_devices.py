"""Device profiles: the memory a network must fit in, built in or read from a YAML file.

A microcontroller (``kind: mcu``) holds activations in SRAM and weights in flash, so a network fits when its
peak activation memory fits the SRAM and its weights fit the flash. Phones, GPUs and hosts hold both in one
RAM (``ram_bytes``): weights + peak activations must fit. Bytes follow the cost's precision (fp32 = 4 bytes
per element, int8 = 1).

User devices come from YAML, either one device or a list under ``devices:``::

    devices:
      - name: nano33
        kind: mcu
        sram_bytes: 256KiB      # an int, or a number with a unit: B, kB/MB/GB (1000^k), KiB/MiB/GiB (1024^k)
        flash_bytes: 1MiB
        description: Arduino Nano 33 BLE (nRF52840)

Sizes are read by ``nasforge.units.parse_bytes``, the parser constraints use too: ``kB`` = 1000 bytes and
``KiB`` = 1024 bytes. Datasheets that say "320 KB SRAM" mean 320 KiB: write ``320KiB``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from nasforge.cost import Cost
from nasforge.errors import NasforgeError
from nasforge.units import parse_bytes

DEVICE_KINDS: tuple[str, ...] = ("mcu", "phone", "gpu", "cpu")
KIB, MIB, GIB = 1024, 1024**2, 1024**3


@dataclass(frozen=True)
class Device:
    """A target's memory limits in bytes: ``sram_bytes`` and ``flash_bytes`` for microcontrollers,
    ``ram_bytes`` for everything else."""

    name: str
    kind: str
    sram_bytes: int | None = None
    flash_bytes: int | None = None
    ram_bytes: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise NasforgeError(f"device name {self.name!r} must be a non-empty string")
        if self.kind not in DEVICE_KINDS:
            raise NasforgeError(f"device {self.name!r}: kind {self.kind!r} is not allowed; allowed: "
                                f"{', '.join(DEVICE_KINDS)}")
        need = ("sram_bytes", "flash_bytes") if self.kind == "mcu" else ("ram_bytes",)
        for key in ("sram_bytes", "flash_bytes", "ram_bytes"):
            v = getattr(self, key)
            if v is None:
                if key in need:
                    raise NasforgeError(f"device {self.name!r} of kind {self.kind!r} needs {key}")
            elif isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise NasforgeError(f"device {self.name!r}: {key} {v!r} must be a positive integer")

    def fits(self, cost: Cost) -> dict[str, Any]:
        """Verdicts with the numbers, at the cost's precision: per resource, what is needed and the limit."""
        peak, weights = cost.peak_memory_bytes, cost.weight_bytes
        if self.kind == "mcu":
            assert self.sram_bytes is not None and self.flash_bytes is not None
            rows = [("sram", "peak activation memory", peak, self.sram_bytes),
                    ("flash", "weights", weights, self.flash_bytes)]
        else:
            assert self.ram_bytes is not None
            rows = [("ram", "weights + peak activation memory", weights + peak, self.ram_bytes)]
        checks = [{"resource": r, "holds": what, "need_bytes": need, "limit_bytes": limit, "ok": need <= limit,
                   "used": round(need / limit, 4)} for r, what, need, limit in rows]
        return {"device": self.name, "kind": self.kind, "precision": cost.precision,
                "fits": all(c["ok"] for c in checks), "checks": checks}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def host_ram_bytes() -> int:
    """Physical memory of this machine (POSIX ``sysconf``), or 8 GiB where it cannot be read."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * GIB


def builtin_devices() -> dict[str, Device]:
    """The profiles shipped with nasforge (``host`` reads this machine's RAM)."""
    devs = [
        Device("stm32f746", "mcu", sram_bytes=320 * KIB, flash_bytes=1 * MIB,
               description="STM32F746 (Cortex-M7, 216 MHz): 320 KiB SRAM, 1 MiB flash; the MCUNet board"),
        Device("iphone11", "phone", ram_bytes=4 * GIB, description="Apple iPhone 11 (A13 Bionic): 4 GiB RAM"),
        Device("v100", "gpu", ram_bytes=32 * GIB, description="NVIDIA V100 SXM2: 32 GiB HBM2"),
        Device("host", "cpu", ram_bytes=host_ram_bytes(), description="this machine: its physical RAM"),
    ]
    return {d.name: d for d in devs}


_FIELDS = {f.name for f in fields(Device)}


def _device_from(entry: Any, where: str) -> Device:
    if not isinstance(entry, dict):
        raise NasforgeError(f"{where}: a device must be a mapping with keys {', '.join(sorted(_FIELDS))}")
    unknown = sorted(set(map(str, entry)) - _FIELDS)
    if unknown:
        raise NasforgeError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(_FIELDS))}")
    for key in ("name", "kind"):
        if key not in entry:
            raise NasforgeError(f"{where}: missing key {key!r}")
    for key in ("name", "kind", "description"):
        if key in entry and not isinstance(entry[key], str):
            raise NasforgeError(f"{where}: {key} {entry[key]!r} must be a string")
    where = f"{where} (device {entry['name']!r})"
    sizes = {k: parse_bytes(entry[k], f"{where}: {k}")
             for k in ("sram_bytes", "flash_bytes", "ram_bytes") if entry.get(k) is not None}
    return Device(entry["name"], entry["kind"], description=entry.get("description", ""), **sizes)


def load_devices(path: str | Path) -> dict[str, Device]:
    """The devices a YAML file defines (one device mapping, or a list under ``devices:``), validated strictly."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise NasforgeError(f"device file {str(p)!r} is not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise NasforgeError(f"cannot read device file {str(p)!r}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise NasforgeError(f"device file {str(p)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    if isinstance(data, dict) and "devices" in data:
        extra = sorted(set(map(str, data)) - {"devices"})
        if extra:
            raise NasforgeError(f"{p}: unknown top-level key {extra[0]!r}; allowed: devices")
        entries = data["devices"]
        if not isinstance(entries, list) or not entries:
            raise NasforgeError(f"{p}: 'devices' must be a non-empty list of device mappings")
    elif isinstance(data, dict):
        entries = [data]
    else:
        raise NasforgeError(f"{p}: expected a device mapping or 'devices:' with a list of them")
    out: dict[str, Device] = {}
    for i, entry in enumerate(entries):
        d = _device_from(entry, f"{p}: device {i}")
        if d.name in out:
            raise NasforgeError(f"{p}: device name {d.name!r} is defined twice")
        out[d.name] = d
    return out


def list_devices() -> list[str]:
    return sorted(builtin_devices())


def get_device(name_or_path: str) -> Device:
    """A built-in device by name, the one device of a YAML file, or ``FILE.yaml:NAME`` for one of several."""
    builtin = builtin_devices()
    if name_or_path in builtin:
        return builtin[name_or_path]
    path, _, pick = name_or_path.partition(":") if not Path(name_or_path).exists() else (name_or_path, "", "")
    if Path(path).is_file():
        devs = load_devices(path)
        if pick:
            if pick not in devs:
                raise NasforgeError(f"device {pick!r} is not in {path}; it defines: {', '.join(sorted(devs))}")
            return devs[pick]
        if len(devs) > 1:
            raise NasforgeError(f"{path} defines {len(devs)} devices ({', '.join(sorted(devs))}); "
                                f"name one as {path}:NAME")
        return next(iter(devs.values()))
    raise NasforgeError(f"unknown device {name_or_path!r}; known: {', '.join(sorted(builtin))}, "
                        f"or a YAML file defining one")
