"""Hardware: device profiles (memory limits), latency measurement, lookup tables, predictors."""

from __future__ import annotations

from nasforge.hardware._devices import (
    DEVICE_KINDS,
    Device,
    builtin_devices,
    get_device,
    list_devices,
    load_devices,
)
from nasforge.hardware._latency import LatencyStats, measure_latencies, measure_latency, measure_onnx_file
from nasforge.hardware._lut import (
    LatencyTable,
    build_table,
    load_ofa_table,
    parse_ofa_key,
    per_decision_latency,
    spec_key,
)
from nasforge.hardware._predictor import LatencyPredictor, latency_metrics, load_latency_model

__all__ = [
    "DEVICE_KINDS",
    "Device",
    "LatencyPredictor",
    "LatencyStats",
    "LatencyTable",
    "build_table",
    "builtin_devices",
    "get_device",
    "latency_metrics",
    "list_devices",
    "load_devices",
    "load_latency_model",
    "load_ofa_table",
    "measure_latencies",
    "measure_latency",
    "measure_onnx_file",
    "parse_ofa_key",
    "per_decision_latency",
    "spec_key",
]
