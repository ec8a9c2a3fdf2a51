"""Classify image files with the best network of a search run, prepared exactly as its training images were
(the preprocessing stored in ``best/summary.json`` and ``best/model.pt``), with PyTorch or the int8 ONNX model."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.data._preprocess import Preprocessing
from nasforge.errors import NasforgeError
from nasforge.report._search import BEST_DIR, SUMMARY

INT8_FILE = "model.int8.onnx"


def run_preprocessing(run_dir: str | os.PathLike[str]) -> Preprocessing:
    """The preprocessing the best network of a finished search run was trained with."""
    best = Path(run_dir) / BEST_DIR
    path = best / SUMMARY
    if not path.is_file():
        raise NasforgeError(f"{path} does not exist: is {run_dir} a finished `nasforge search` run?")
    try:
        meta = json.loads(path.read_text()).get("preprocessing")
    except (ValueError, AttributeError):
        raise NasforgeError(f"{path} is not a search summary (JSON object)") from None
    if not meta:
        raise NasforgeError(f"{path} has no preprocessing (the run was written by an older nasforge); run the "
                            "search again to classify images with it")
    return Preprocessing.from_dict(meta)


def predict(run_dir: str | os.PathLike[str], images: Sequence[str | os.PathLike[str]], int8: bool = False,
            batch: int = 256) -> list[dict[str, Any]]:
    """One row per image: ``image``, ``class`` (name), ``index`` and ``probability`` (softmax of the logits),
    from the fp32 network (PyTorch) or, with ``int8``, ``best/model.int8.onnx`` (onnxruntime)."""
    prep = run_preprocessing(run_dir)
    x = prep.read(images)
    if int8:
        from nasforge.jobs._quantize import onnx_logits

        path = Path(run_dir) / BEST_DIR / INT8_FILE
        if not path.is_file():
            raise NasforgeError(f"{path} does not exist; write it with `nasforge export {run_dir} --format onnx-int8`")
        logits = onnx_logits(path, x.numpy(), batch)
    else:
        import torch

        from nasforge.jobs._search import load_best

        model, _ = load_best(Path(run_dir))
        with torch.no_grad():
            logits = torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)]).numpy()
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    idx = probs.argmax(axis=1)
    return [{"image": str(p), "class": prep.classes[int(i)] if int(i) < len(prep.classes) else str(int(i)),
             "index": int(i), "probability": float(probs[n, i])} for n, (p, i) in enumerate(zip(images, idx,
                                                                                               strict=True))]
