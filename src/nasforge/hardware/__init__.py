"""Hardware: device profiles (memory limits), latency measurement, lookup tables, predictors."""

from __future__ import annotations

from nasforge.hardware._devices import (
    DEVICE_KINDS,
    Device,
    builtin_devices,
    get_device,
    list_devices,
    load_devices,
    parse_bytes,
)

__all__ = [
    "DEVICE_KINDS",
    "Device",
    "builtin_devices",
    "get_device",
    "list_devices",
    "load_devices",
    "parse_bytes",
]
