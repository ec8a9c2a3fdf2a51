"""Export a trained network to ONNX (checked against PyTorch with onnxruntime) or TorchScript."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nasforge._files import atomic_path
from nasforge.errors import NasforgeError

FORMATS = ("onnx", "torchscript")


def export_onnx(module: nn.Module, input_shape: Sequence[int], path: str | Path, check: bool = True,
                atol: float = 1e-4, seed: int = 0) -> float:
    """Write ``path`` (batch axis dynamic) and return the largest |onnxruntime - torch| on a random batch.

    Uses the TorchScript-based exporter (``dynamo=False``), which needs no extra packages.
    Raises ``NasforgeError`` if the check exceeds ``atol``.
    """
    path = Path(path)
    module = module.eval()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, *input_shape, generator=g)
    with atomic_path(path) as tmp, torch.no_grad():
        torch.onnx.export(module, (x,), str(tmp), dynamo=False, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    if not check:
        return 0.0
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = module(x).numpy()
    err = float(np.abs(got - want).max())
    if err > atol:
        raise NasforgeError(f"ONNX check failed: max |onnxruntime - torch| = {err:.2e} > {atol:g}")
    return err


def export_torchscript(module: nn.Module, input_shape: Sequence[int], path: str | Path) -> Path:
    """Trace to TorchScript and save atomically."""
    path = Path(path)
    module = module.eval()
    x = torch.zeros(1, *input_shape)
    with torch.no_grad():
        scripted = torch.jit.trace(module, x)
    with atomic_path(path) as tmp:
        scripted.save(str(tmp))
    return path
