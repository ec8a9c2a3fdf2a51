"""Dense-prediction datasets: images with per-pixel class masks and/or boxes, split into train / val / test.

A ``DenseDataset`` is the segmentation/detection counterpart of ``Dataset``: normalised image tensors plus, per
image, a mask of class ids (0 = background, object class k is k + 1) and boxes ``(x0, y0, x1, y1)`` in pixels
with their object classes (0-based, no background). ``num_classes`` follows the dense contract: segmentation
counts the background class, detection does not. ``load_dense_dataset`` gives the built-in multi-scale canvases
(``multiscale``: scikit-learn digits; ``multiscale-fashion``: Fashion-MNIST items) or a user's COCO or mask files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nasforge.errors import NasforgeError

DENSE_TASKS = ("segmentation", "detection")


@dataclass(frozen=True, eq=False)
class DenseSplit:
    """One split: images ``x`` (N, C, H, W) float32 normalised; ``masks`` (N, H, W) int64 class ids or None (box
    data); per image ``boxes`` (k, 4) float32 xyxy pixels and ``labels`` (k,) int64 object classes; ``sources``:
    per image the ids of the source images it was made from (for the built-in data: disjoint across splits)."""

    x: torch.Tensor
    masks: torch.Tensor | None
    boxes: tuple[torch.Tensor, ...]
    labels: tuple[torch.Tensor, ...]
    sources: tuple[tuple[int, ...], ...]

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def take(self, index: Sequence[int] | np.ndarray) -> DenseSplit:
        """The images at ``index`` (in that order)."""
        idx = [int(i) for i in index]
        t = torch.as_tensor(idx, dtype=torch.long)
        return DenseSplit(self.x[t], None if self.masks is None else self.masks[t],
                          tuple(self.boxes[i] for i in idx), tuple(self.labels[i] for i in idx),
                          tuple(self.sources[i] for i in idx))


@dataclass(frozen=True, eq=False)
class DenseDataset:
    """Splits of a dense dataset for one ``task`` and what a model needs to know: input shape, classes, stats.

    ``classes`` names the object classes (no background); ``class_names`` is what the network's outputs mean
    (segmentation: ``background`` first). ``mean``/``std`` are the training split's per-channel statistics of
    pixels in [0, 1] that every split was normalised with.
    """

    name: str
    task: str
    train: DenseSplit
    val: DenseSplit
    test: DenseSplit
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str = ""

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.x.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        """Network outputs: object classes plus background for segmentation, object classes for detection."""
        return len(self.classes) + (1 if self.task == "segmentation" else 0)

    @property
    def class_names(self) -> tuple[str, ...]:
        return ("background", *self.classes) if self.task == "segmentation" else self.classes

    def resized(self, size: int | tuple[int, int]) -> DenseDataset:
        """Images resized bilinearly, masks by nearest neighbour, boxes scaled; self if already that size."""
        hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if hw[0] < 1 or hw[1] < 1:
            raise NasforgeError(f"resize must be positive, got {size!r}")
        if hw == self.input_shape[1:]:
            return self
        return replace(self, train=_resize(self.train, hw), val=_resize(self.val, hw), test=_resize(self.test, hw))

    def with_channels(self, channels: int) -> DenseDataset:
        """Grayscale repeated to ``channels`` channels (e.g. 1 -> 3); self if already so."""
        c = self.input_shape[0]
        if channels == c:
            return self
        if c != 1:
            raise NasforgeError(f"{self.name} has {c} channels; can only repeat 1 channel, not make {channels}")

        def rep(s: DenseSplit) -> DenseSplit:
            return replace(s, x=s.x.expand(-1, channels, -1, -1).contiguous())

        return replace(self, train=rep(self.train), val=rep(self.val), test=rep(self.test),
                       mean=self.mean * channels, std=self.std * channels)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "task": self.task, "input_shape": list(self.input_shape),
                "num_classes": self.num_classes, "classes": list(self.class_names), "train": len(self.train),
                "val": len(self.val), "test": len(self.test), "source": self.source}


def _resize(s: DenseSplit, hw: tuple[int, int]) -> DenseSplit:
    h, w = s.x.shape[2:]
    shrink = hw[0] < h or hw[1] < w
    x = F.interpolate(s.x, size=hw, mode="bilinear", align_corners=False, antialias=shrink) if len(s) else \
        s.x.new_zeros((0, s.x.shape[1], *hw))
    masks = None
    if s.masks is not None:
        masks = F.interpolate(s.masks[:, None].float(), size=hw, mode="nearest")[:, 0].long() if len(s) else \
            s.masks.new_zeros((0, *hw))
    scale = torch.tensor([hw[1] / w, hw[0] / h, hw[1] / w, hw[0] / h], dtype=torch.float32)
    return DenseSplit(x.contiguous(), masks, tuple(b * scale for b in s.boxes), s.labels, s.sources)


def make_dense_dataset(name: str, task: str, splits: Sequence[tuple[Any, ...]], classes: tuple[str, ...],
                       source: str) -> DenseDataset:
    """A ``DenseDataset`` from raw (train, val, test) splits of (images (N, C, H, W) in [0, 1], masks (N, H, W) or
    None, boxes per image, labels per image, source ids per image), normalised with the training split's stats."""
    if task not in DENSE_TASKS:
        raise NasforgeError(f"unknown dense task {task!r}; allowed: {', '.join(DENSE_TASKS)}")
    if len(splits[0][0]) == 0:
        raise NasforgeError(f"{name}: the training split is empty")
    xt = torch.from_numpy(np.ascontiguousarray(splits[0][0], dtype=np.float32))
    mean = xt.mean(dim=(0, 2, 3))
    std = xt.std(dim=(0, 2, 3)).clamp_min(1e-6)

    def one(x: np.ndarray, m: np.ndarray | None, boxes: list[np.ndarray], labels: list[np.ndarray],
            src: list[tuple[int, ...]]) -> DenseSplit:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        t = ((t - mean[None, :, None, None]) / std[None, :, None, None]).contiguous()
        mt = None if m is None else torch.from_numpy(np.ascontiguousarray(m, dtype=np.int64))
        return DenseSplit(t, mt, tuple(torch.as_tensor(np.asarray(b, np.float32).reshape(-1, 4)) for b in boxes),
                          tuple(torch.as_tensor(np.asarray(lab, np.int64).reshape(-1)) for lab in labels),
                          tuple(tuple(int(v) for v in s) for s in src))

    tr, va, te = (one(*s) for s in splits)
    return DenseDataset(name, task, tr, va, te, classes, tuple(float(v) for v in mean),
                        tuple(float(v) for v in std), source)


DENSE_DATASETS = ("multiscale", "multiscale-fashion", "coco", "masks")
#: the tasks each dense dataset has targets for
DATASET_TASKS = {"multiscale": DENSE_TASKS, "multiscale-fashion": DENSE_TASKS, "coco": ("detection",),
                 "masks": ("segmentation",)}


DATASET_OPTIONS = {"multiscale": ("canvas", "min_size", "max_size", "max_objects", "counts"),
                   "coco": ("image_size",), "masks": ("image_size",)}


def list_dense_datasets() -> list[str]:
    return list(DENSE_DATASETS)


def check_dense_dataset(name: str, task: str) -> None:
    """One line unless ``name`` is a dense dataset with targets for ``task``."""
    if name not in DATASET_TASKS:
        raise NasforgeError(f"dataset {name!r} has no {task} targets; for task {task!r} use one of: "
                            f"{', '.join(n for n in DENSE_DATASETS if task in DATASET_TASKS[n])}")
    if task not in DATASET_TASKS[name]:
        raise NasforgeError(f"dataset {name!r} has no {task} targets (it serves: {', '.join(DATASET_TASKS[name])}); "
                            f"for task {task!r} use one of: "
                            f"{', '.join(n for n in DENSE_DATASETS if task in DATASET_TASKS[n])}")


def load_dense_dataset(name: str, task: str, data_dir: str | os.PathLike[str] | None = None, seed: int = 0,
                       subset: int | None = None, **options: Any) -> DenseDataset:
    """A dense dataset for ``task``: ``multiscale`` / ``multiscale-fashion`` (built-in canvases, seeded by ``seed``;
    ``options`` go to ``multiscale_dataset``), ``coco`` (``data_dir/annotations.json`` + ``data_dir/images/``) or
    ``masks`` (``data_dir/images/`` + ``data_dir/masks/``). ``subset`` caps the training split."""
    from nasforge.data._dense_files import read_coco, read_masks
    from nasforge.data._multiscale import multiscale_dataset

    check_dense_dataset(name, task)
    allowed = DATASET_OPTIONS["multiscale" if name.startswith("multiscale") else name]
    for key in options:
        if key not in allowed:
            raise NasforgeError(f"unknown {name} dataset option {key!r}; allowed: {', '.join(allowed)}")
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, int) or subset < 1):
        raise NasforgeError(f"subset must be a positive integer (training images), got {subset!r}")
    if name.startswith("multiscale"):
        src = "digits" if name == "multiscale" else "fashion-mnist"
        ds = multiscale_dataset(task, source=src, seed=seed, data_dir=None if data_dir is None else str(data_dir),
                                **options)
    else:
        if data_dir is None:
            layout = "annotations.json and images/" if name == "coco" else "images/ and masks/"
            raise NasforgeError(f"{name}: no data directory given (pass --data-dir with {layout})")
        reader = read_coco if name == "coco" else read_masks
        ds = reader(os.fspath(data_dir), task=task, seed=seed, **options)
    if subset is not None and subset < len(ds.train):
        ds = replace(ds, train=ds.train.take(range(subset)))
    return ds
