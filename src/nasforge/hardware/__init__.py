"""Hardware: device profiles (memory limits), latency measurement, lookup tables, predictors.

Building tables, parsing sizes and keys, and the predictor's features are in the private modules
(``_devices``, ``_latency``, ``_lut``, ``_predictor``).
"""

from __future__ import annotations

from nasforge.hardware._devices import Device, get_device
from nasforge.hardware._latency import measure_latencies, measure_latency
from nasforge.hardware._lut import LatencyTable, load_ofa_table
from nasforge.hardware._predictor import LatencyPredictor, load_latency_model, resave_pickled_predictor
from nasforge.hardware._transfer import LatencyPrior, TransferModel, choose_reference

__all__ = [
    "Device",
    "LatencyPredictor",
    "LatencyPrior",
    "LatencyTable",
    "TransferModel",
    "choose_reference",
    "get_device",
    "load_latency_model",
    "load_ofa_table",
    "measure_latencies",
    "measure_latency",
    "resave_pickled_predictor",
]
