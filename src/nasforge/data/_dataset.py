"""In-memory datasets: normalised image tensors split into train / validation / test.

A ``Dataset`` is a value of three ``Split``s (tensors already normalised with the training split's
per-channel mean and std) plus what a model needs to know about it: the input shape (C, H, W), the number
of classes and their names. Everything is small enough to live in memory, so training loops can slice
prebatched tensors instead of running a ``DataLoader``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nasforge.errors import NasforgeError


@dataclass(frozen=True, eq=False)
class Split:
    """One split: images ``x`` (N, C, H, W) float32, normalised; labels ``y`` (N,) int64."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


@dataclass(frozen=True)
class DatasetInfo:
    """What is known about a dataset without loading it: its input shape and classes."""

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    classes: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train / validation / test splits of one dataset and what a model needs to know about them.

    ``mean`` and ``std`` are the per-channel statistics (of pixels scaled to [0, 1]) of the training split
    that every split was normalised with. ``source`` says where the data came from (a path or a package).
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str = ""
    skipped: tuple[str, ...] = ()  #: files that could not be read (image folders), skipped with a warning

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.train.x.shape[1:]
        return int(c), int(h), int(w)

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(self.name, self.input_shape, self.num_classes, self.classes)

    def resized(self, size: int | tuple[int, int]) -> Dataset:
        """The same data resized to ``size`` (bilinear, antialiased when shrinking); self if already so."""
        hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if hw[0] < 1 or hw[1] < 1:
            raise NasforgeError(f"resize must be positive, got {size!r}")
        if hw == self.input_shape[1:]:
            return self
        return replace(self, train=_resize_split(self.train, hw), val=_resize_split(self.val, hw),
                       test=_resize_split(self.test, hw))

    def with_channels(self, channels: int) -> Dataset:
        """The same data with ``channels`` channels: grayscale repeated (e.g. 1 -> 3); self if already so."""
        c = self.input_shape[0]
        if channels == c:
            return self
        if c != 1:
            raise NasforgeError(f"{self.name} has {c} channels; can only repeat 1 channel, not make {channels}")

        def rep(s: Split) -> Split:
            return Split(s.x.expand(-1, channels, -1, -1).contiguous(), s.y)

        return replace(self, train=rep(self.train), val=rep(self.val), test=rep(self.test),
                       mean=self.mean * channels, std=self.std * channels)

    def summary(self) -> dict[str, Any]:
        """A small JSON-able description (sizes, shape, classes, source)."""
        return {"name": self.name, "input_shape": list(self.input_shape), "num_classes": self.num_classes,
                "train": len(self.train), "val": len(self.val), "test": len(self.test), "source": self.source,
                "skipped_files": len(self.skipped)}


def _resize_split(s: Split, hw: tuple[int, int], chunk: int = 8192) -> Split:
    if len(s) == 0:
        return Split(s.x.new_zeros((0, s.x.shape[1], *hw)), s.y)
    shrink = hw[0] < s.x.shape[2] or hw[1] < s.x.shape[3]
    parts = [F.interpolate(s.x[i:i + chunk], size=hw, mode="bilinear", align_corners=False, antialias=shrink)
             for i in range(0, len(s), chunk)]
    return Split(torch.cat(parts).contiguous(), s.y)


def split_indices(n: int, rng: np.random.Generator, val_fraction: float, test_fraction: float = 0.0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seeded permutation of ``range(n)`` cut into (train, val, test) index arrays."""
    perm = rng.permutation(n)
    n_test = round(n * test_fraction)
    n_val = round((n - n_test) * val_fraction)
    return perm[n_test + n_val:], perm[n_test:n_test + n_val], perm[:n_test]


def make_dataset(name: str, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                 x_test: np.ndarray, y_test: np.ndarray, classes: tuple[str, ...], scale: float,
                 source: str, skipped: tuple[str, ...] = ()) -> Dataset:
    """Normalise raw (N, C, H, W) arrays with the training split's per-channel statistics into a ``Dataset``.

    ``scale`` maps raw values to [0, 1] (255 for bytes, 16 for sklearn digits).
    """
    if len(x_train) == 0:
        raise NasforgeError(f"{name}: the training split is empty")
    xt = torch.from_numpy(np.ascontiguousarray(x_train)).float().div_(scale)
    mean = xt.mean(dim=(0, 2, 3))
    std = xt.std(dim=(0, 2, 3)).clamp_min(1e-6)

    def norm(x: np.ndarray | torch.Tensor) -> torch.Tensor:
        t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x)).float().div_(scale)
        return t.sub_(mean[None, :, None, None]).div_(std[None, :, None, None]).contiguous()

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(y, dtype=np.int64).copy())

    return Dataset(
        name=name,
        train=Split(norm(xt), labels(y_train)),
        val=Split(norm(x_val), labels(y_val)),
        test=Split(norm(x_test), labels(y_test)),
        num_classes=len(classes),
        classes=classes,
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        source=source,
        skipped=tuple(skipped),
    )
