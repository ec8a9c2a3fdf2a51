"""Post-training static int8 quantization of an exported network with ONNX Runtime, and its measured accuracy.

Why ONNX Runtime rather than PyTorch's quantization: it quantizes the very ONNX graph the run already exports
and checks, with no change to the network's code (PyTorch's eager mode needs QuantStub/DeQuantStub and fused
modules per architecture, its FX mode is deprecated in favour of PT2E in the separate torchao package, and
neither exports a quantized network to ONNX reliably); its QDQ output (QuantizeLinear/DequantizeLinear pairs
around each conv and matmul, int8 weights per output channel, int8 activations) is the standard form that
microcontroller and accelerator toolchains read, and the same runtime measures its accuracy.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nasforge._files import atomic_path

METADATA_KEY = "nasforge.preprocessing"
CALIBRATION_IMAGES = 256
"""Training images the activation ranges are calibrated on: enough for stable ranges on the small networks a
microcontroller holds, and about a second of calibration (all 1,294 digits training images gave the same
accuracy as 256, bench/RESULTS.md)."""
CALIBRATION_PERCENTILE = 99.99
"""Activation ranges cover this percentile of the calibration values (outliers clipped). On the `make run`
network (digits, 359 test images) it kept 0.975 test accuracy against MinMax's 0.967 and entropy's 0.967
(fp32: 0.986), at the same cost (bench/RESULTS.md)."""
INT8_DROP_WARN = 0.01
"""An int8 test accuracy more than this below the fp32 one (1 point) is called out in the summary and report."""


def set_metadata(path: str | Path, preprocessing: Mapping[str, Any]) -> None:
    """Write the preprocessing (JSON) into the ONNX model's metadata (``metadata_props``), atomically."""
    import onnx

    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    props[METADATA_KEY] = json.dumps(dict(preprocessing))
    del model.metadata_props[:]
    for k, v in props.items():
        model.metadata_props.add(key=k, value=v)
    model.doc_string = ("Input: float32 (N, C, H, W) preprocessed as the metadata's "
                        f"'{METADATA_KEY}' says (resize, [0, 1] scaling, mean/std); output: class logits.")
    with atomic_path(Path(path)) as tmp:
        onnx.save(model, str(tmp))


def read_metadata(path: str | Path) -> dict[str, Any] | None:
    """The preprocessing stored in an ONNX model by ``set_metadata`` (None if it has none)."""
    import onnxruntime as ort

    meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
    text = meta.custom_metadata_map.get(METADATA_KEY)
    return None if text is None else dict(json.loads(text))


def session(path: str | Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def onnx_logits(path_or_session: Any, x: np.ndarray, batch: int = 512) -> np.ndarray:
    """The model's outputs on ``x`` (N, C, H, W) float32, in batches."""
    sess = session(path_or_session) if isinstance(path_or_session, (str, Path)) else path_or_session
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: np.ascontiguousarray(x[i:i + batch], dtype=np.float32)})[0]
            for i in range(0, len(x), batch)]
    return np.concatenate(outs) if outs else np.zeros((0, 0), dtype=np.float32)


def onnx_accuracy(path: str | Path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy (a fraction) of an ONNX classifier run by onnxruntime."""
    if len(y) == 0:
        return float("nan")
    return float((onnx_logits(path, x).argmax(1) == y).mean())


def initializer_bytes(path: str | Path) -> dict[str, int]:
    """Bytes of a model's stored constants by kind: int8 weights, int32 biases, float (scales and any weight
    left in float) and the rest (zero points); ``total`` is what a device's flash holds."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    out = {"int8": 0, "int32": 0, "float": 0, "other": 0}
    for t in model.graph.initializer:
        a = numpy_helper.to_array(t)
        if a.dtype in (np.int8, np.uint8):
            out["int8"] += a.nbytes
        elif a.dtype == np.int32:
            out["int32"] += a.nbytes
        elif a.dtype.kind == "f":
            out["float"] += a.nbytes
        else:
            out["other"] += a.nbytes
    out["total"] = sum(out.values())
    return out


class _Calibration:
    """ONNX Runtime's calibration reader over a batch of images, one image per call."""

    def __init__(self, name: str, x: np.ndarray) -> None:
        self.name, self.x, self.i = name, x, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.x):
            return None
        self.i += 1
        return {self.name: self.x[self.i - 1:self.i]}

    def rewind(self) -> None:
        self.i = 0


def quantize_int8(fp32_path: str | Path, int8_path: str | Path, calibration: np.ndarray) -> None:
    """Static int8 quantization (QDQ, per-channel symmetric int8 weights, asymmetric int8 activations calibrated
    on ``calibration`` images (N, C, H, W) float32, preprocessed: ranges at the ``CALIBRATION_PERCENTILE``
    percentile) written atomically to ``int8_path``."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    name = ort.InferenceSession(str(fp32_path), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    calib = np.ascontiguousarray(calibration, dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="nasforge-int8-") as d:
        pre = os.path.join(d, "pre.onnx")
        quant_pre_process(str(fp32_path), pre, skip_symbolic_shape=True)  # shapes + graph clean-up (BN folded)
        # onnxruntime's calibrator prints a progress line to stdout, which would break `--json`: keep it out
        with atomic_path(Path(int8_path)) as tmp, contextlib.redirect_stdout(io.StringIO()):
            quantize_static(pre, str(tmp), _Calibration(name, calib), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.Percentile,
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True,
                                           "CalibPercentile": CALIBRATION_PERCENTILE})


def int8_report(fp32_path: str | Path, int8_path: str | Path, calibration: np.ndarray, test_x: np.ndarray,
                test_y: np.ndarray, analytic_int8_weight_bytes: int, preprocessing: Mapping[str, Any] | None = None,
                ) -> dict[str, Any]:
    """Quantize, stamp the preprocessing into the int8 model, and measure it: test accuracy of both ONNX models
    with onnxruntime, the int8 model's constant bytes against the analytic int8 weight bytes."""
    start = time.perf_counter()
    quantize_int8(fp32_path, int8_path, calibration)
    if preprocessing is not None:
        set_metadata(int8_path, preprocessing)
    acc32 = onnx_accuracy(fp32_path, test_x, test_y)
    acc8 = onnx_accuracy(int8_path, test_x, test_y)
    sizes = initializer_bytes(int8_path)
    drop = acc32 - acc8
    return {
        "format": "onnx QDQ (ONNX Runtime static quantization: int8 weights per channel, int8 activations, "
                  f"ranges at the {CALIBRATION_PERCENTILE} percentile of {len(calibration)} training images)",
        "file": Path(int8_path).name,
        "test_acc": acc8, "test_acc_fp32_onnx": acc32, "accuracy_drop": drop,
        "drop_over_1_point": bool(drop > INT8_DROP_WARN),
        "weight_bytes": sizes["total"], "weight_bytes_by_kind": {k: v for k, v in sizes.items() if k != "total"},
        "analytic_weight_bytes": int(analytic_int8_weight_bytes),
        "weight_bytes_vs_analytic": round(sizes["total"] / analytic_int8_weight_bytes, 4)
        if analytic_int8_weight_bytes else None,
        "file_bytes": Path(int8_path).stat().st_size,
        "calibration_images": len(calibration),
        "seconds": round(time.perf_counter() - start, 2),
    }
