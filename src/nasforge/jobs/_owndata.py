"""What the jobs do with the user's own data and for deployment: the dataset of a run (a name and files, or a
``Dataset`` given from Python), the preprocessing a trained network expects, and the int8 model of ``best/``.

A ``Dataset`` given from Python is recorded in the run's config as dataset ``arrays`` (its arrays are not
stored); resuming such a run needs the same ``data`` again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.data import Dataset
from nasforge.data._dataset import DatasetInfo, Split
from nasforge.data._loaders import IN_MEMORY
from nasforge.data._preprocess import Preprocessing
from nasforge.errors import NasforgeError


def with_data(given: Mapping[str, Any], data: Any) -> dict[str, Any]:
    """The options given, with ``dataset: arrays`` when the data itself is given."""
    out = dict(given)
    if data is None:
        return out
    if not isinstance(data, Dataset):
        raise NasforgeError(f"data must be a nasforge Dataset (from nasforge.data.load_dataset), got "
                            f"{type(data).__name__}; load_dataset((x, y)) or load_dataset(torch_dataset) gives one")
    if out.get("dataset", IN_MEMORY) != IN_MEMORY or out.get("data_dir"):
        raise NasforgeError(f"give either data (in memory) or dataset/data_dir, not both (dataset "
                            f"{out.get('dataset')!r})")
    out["dataset"] = IN_MEMORY
    return out


def job_info(cfg: Any, data: Dataset | None) -> DatasetInfo:
    """The input shape and classes of a run's data (an image folder's headers or an npz file are read)."""
    if data is not None:
        return data.info
    from nasforge.data import dataset_info  # looked up at call time (tests stand in for it)

    if cfg.dataset == IN_MEMORY:
        raise NasforgeError("dataset 'arrays' is data given from Python: pass it as data=load_dataset((x, y)) "
                            "(or of a torch Dataset)")
    return dataset_info(cfg.dataset, data_dir=cfg.data_dir)


def load_size(cfg: Any, space: Any, info: DatasetInfo) -> int | None:
    """The side an image folder is read at: the space's largest resolution when its images are larger (so they
    are resized once, by Pillow, as they are read), else None (their own size)."""
    res = getattr(space, "resolutions", None)
    if cfg.dataset != "imagefolder" or not res:
        return None
    r = max(int(v) for v in res)
    return r if r < min(info.input_shape[1:]) else None


def capped(data: Dataset, n: int | None, seed: int) -> Dataset:
    """``data`` with its training split capped at ``n`` images (a seeded draw, in order)."""
    if n is None or n >= len(data.train):
        return data
    idx = np.sort(np.random.default_rng(seed).permutation(len(data.train))[:n])
    t = torch_index(idx)
    return dataclasses.replace(data, train=Split(data.train.x[t], data.train.y[t]))


def torch_index(idx: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(idx.astype(np.int64))


def job_data(cfg: Any, space: Any, info: DatasetInfo, data: Dataset | None) -> tuple[Dataset, Dataset | None]:
    """(the data the search runs on, the whole data when that is a subset of data given from Python)."""
    from nasforge.data import load_dataset  # looked up at call time (tests stand in for it)

    if data is not None:
        if cfg.subset is None:
            return data, None
        return capped(data, cfg.subset, cfg.seed), data
    return load_dataset(cfg.dataset, data_dir=cfg.data_dir, split_seed=cfg.seed, subset=cfg.subset,
                        resize=load_size(cfg, space, info)), None


def final_data(cfg: Any, space: Any, dataset: Dataset, full: Dataset | None) -> Dataset:
    """The data the best architecture is trained on at the end: every training image."""
    from nasforge.data import load_dataset

    if full is not None:
        return full
    if cfg.subset is None:
        return dataset
    return load_dataset(cfg.dataset, data_dir=cfg.data_dir, split_seed=cfg.seed,
                        resize=load_size(cfg, space, dataset.info))


def preprocessing(data: Dataset, input_shape: Sequence[int]) -> Preprocessing:
    """What the network trained on ``data`` with input ``input_shape`` (C, H, W) expects of an image."""
    c, h, w = data.input_shape
    return Preprocessing(data_size=(h, w), channels=c, input_size=(int(input_shape[1]), int(input_shape[2])),
                         input_channels=int(input_shape[0]), mean=tuple(data.mean), std=tuple(data.std),
                         classes=tuple(data.classes))


def deploy_int8(folder: Path, data: Dataset, input_shape: Sequence[int], cost_int8: Any, device: Any,
                preprocessing: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Stamp the preprocessing into ``folder/model.onnx``, quantize it to ``folder/model.int8.onnx`` (calibrated on
    training images) and measure it (``jobs/_quantize.int8_report``), with the device verdict of the int8 model:
    its stored bytes (weights, biases, scales) against flash, the analytic int8 peak memory against SRAM.
    A quantization that fails is reported (``error``), not raised: the fp32 model stays usable."""
    from nasforge.jobs._quantize import CALIBRATION_IMAGES, int8_report, set_metadata

    set_metadata(folder / "model.onnx", preprocessing)
    shaped = data.with_channels(int(input_shape[0])).resized((int(input_shape[1]), int(input_shape[2])))
    rng = np.random.default_rng(seed)
    n = min(CALIBRATION_IMAGES, len(shaped.train))
    idx = np.sort(rng.choice(len(shaped.train), n, replace=False))
    calib = shaped.train.x[torch_index(idx)].numpy()
    try:
        rep = int8_report(folder / "model.onnx", folder / "model.int8.onnx", calib, shaped.test.x.numpy(),
                          shaped.test.y.numpy(), cost_int8.weight_bytes, preprocessing)
    except Exception as e:  # an op ONNX Runtime cannot quantize: say so, keep the run
        (folder / "model.int8.onnx").unlink(missing_ok=True)
        return {"error": f"int8 quantization failed: {type(e).__name__}: {e}"}
    if device is not None:
        rep["fits"] = device.fits(_Int8Model(cost_int8.peak_memory_bytes, int(rep["weight_bytes"])))
    return rep


@dataclasses.dataclass(frozen=True)
class _Int8Model:
    """The two numbers a device verdict reads, for the int8 model: stored bytes measured, peak memory analytic."""

    peak_memory_bytes: int
    weight_bytes: int
    precision: str = "int8"
