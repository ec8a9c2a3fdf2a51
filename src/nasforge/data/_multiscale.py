"""The built-in multi-scale dense data: real small images (digits, Fashion-MNIST items) pasted onto canvases.

Each canvas holds 1..``max_objects`` items, each scaled to a side drawn log-uniformly in ``[min_size, max_size]``
pixels and placed where it overlaps no earlier item, on faint noise. An item's mask is its pixels brighter than
``MASK_THRESHOLD`` of full scale; its box is the tight box of that mask. The source images are split first
(70 / 15 / 15 %, seeded), and the train, val and test canvases are built from their own share only, so no test
object was seen in training. Everything flows from one ``numpy.random.Generator`` seeded with ``seed``: the same
arguments give the same canvases, bit for bit.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from nasforge.data._dense import DenseDataset, make_dense_dataset
from nasforge.errors import NasforgeError

MASK_THRESHOLD = 0.3  # an item's pixel belongs to its mask above this fraction of full brightness
SOURCE_SPLIT = (0.7, 0.15, 0.15)  # shares of the source images for the train, val and test canvases
DEFAULTS: dict[str, Any] = {"canvas": 64, "min_size": 8, "max_size": 32, "max_objects": 3,
                            "counts": (512, 128, 128)}
PLACE_TRIES = 30


def _items(source: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Source images (N, h, w) in [0, 1] and labels."""
    from nasforge.data._loaders import FASHION_MNIST_CLASSES, _digits_raw, _read_fashion

    if source == "digits":
        x, y = _digits_raw()
        return x[:, 0] / 16.0, y, tuple(str(i) for i in range(10))
    if source == "fashion-mnist":
        xtr, ytr, xte, yte, *_ = _read_fashion(data_dir)
        assert xte is not None and yte is not None
        x = np.concatenate([xtr, xte])[:, 0].astype(np.float32) / 255.0
        return x, np.concatenate([ytr, yte]), FASHION_MNIST_CLASSES
    raise NasforgeError(f"unknown multiscale source {source!r}; allowed: digits, fashion-mnist")


def _check(canvas: int, min_size: int, max_size: int, max_objects: int, counts: tuple[int, int, int]) -> None:
    for name, v in (("canvas", canvas), ("min_size", min_size), ("max_size", max_size),
                    ("max_objects", max_objects), *zip(("train", "val", "test"), counts, strict=True)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise NasforgeError(f"multiscale option {name}={v!r} must be a positive integer")
    if not 2 <= min_size <= max_size <= canvas:
        raise NasforgeError(f"multiscale sizes must satisfy 2 <= min_size <= max_size <= canvas, got "
                            f"{min_size}, {max_size}, {canvas}")


def multiscale_dataset(task: str, source: str = "digits", seed: int = 0, data_dir: str | None = None,
                       canvas: int = DEFAULTS["canvas"], min_size: int = DEFAULTS["min_size"],
                       max_size: int = DEFAULTS["max_size"], max_objects: int = DEFAULTS["max_objects"],
                       counts: tuple[int, int, int] = DEFAULTS["counts"]) -> DenseDataset:
    """Canvases of ``canvas`` x ``canvas`` px (1 channel) for ``task``; ``counts`` = (train, val, test) canvases."""
    counts = tuple(counts)  # type: ignore[assignment]
    if len(counts) != 3:
        raise NasforgeError(f"multiscale counts must be (train, val, test), got {counts!r}")
    _check(canvas, min_size, max_size, max_objects, counts)
    splits, classes = _build(source, seed, data_dir, canvas, min_size, max_size, max_objects, counts)
    masks_used = task == "segmentation"
    name = "multiscale" if source == "digits" else "multiscale-fashion"
    raw = [(x, m if masks_used else None, b, lab, s) for x, m, b, lab, s in splits]
    return make_dense_dataset(name, task, raw, classes,
                              f"{source} items on {canvas}px canvases, sizes {min_size}..{max_size}, seed {seed}")


@lru_cache(maxsize=4)
def _build(source: str, seed: int, data_dir: str | None, canvas: int, min_size: int, max_size: int,
           max_objects: int, counts: tuple[int, int, int]) -> tuple[list[Any], tuple[str, ...]]:
    items, labels, classes = _items(source, data_dir)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(items))
    a = round(len(items) * SOURCE_SPLIT[0])
    b = a + round(len(items) * SOURCE_SPLIT[1])
    pools = (perm[:a], perm[a:b], perm[b:])
    splits = []
    for pool, n in zip(pools, counts, strict=True):
        splits.append(_canvases(rng, items, labels, pool, n, canvas, min_size, max_size, max_objects))
    return splits, classes


def _canvases(rng: np.random.Generator, items: np.ndarray, labels: np.ndarray, pool: np.ndarray, n: int,
              canvas: int, min_size: int, max_size: int, max_objects: int) -> tuple[Any, ...]:
    xs = np.zeros((n, 1, canvas, canvas), np.float32)
    masks = np.zeros((n, canvas, canvas), np.int64)
    boxes: list[np.ndarray] = []
    labs: list[np.ndarray] = []
    sources: list[tuple[int, ...]] = []
    lo, hi = np.log(min_size), np.log(max_size + 1)
    for i in range(n):
        xs[i, 0] = rng.uniform(0.0, 0.1, (canvas, canvas)).astype(np.float32)
        taken = np.zeros((canvas, canvas), bool)
        bx: list[list[float]] = []
        lb: list[int] = []
        src: list[int] = []
        for _ in range(int(rng.integers(1, max_objects + 1))):
            k = int(pool[rng.integers(len(pool))])
            side = int(min(max_size, np.floor(np.exp(rng.uniform(lo, hi)))))
            img = _scaled(items[k], side)
            for _try in range(PLACE_TRIES):
                y0, x0 = (int(v) for v in rng.integers(0, canvas - side + 1, size=2))
                if not taken[y0:y0 + side, x0:x0 + side].any():
                    break
            else:
                continue
            m = img > MASK_THRESHOLD
            if not m.any():
                continue
            region = xs[i, 0, y0:y0 + side, x0:x0 + side]
            np.maximum(region, img, out=region)
            masks[i, y0:y0 + side, x0:x0 + side][m] = int(labels[k]) + 1
            taken[y0:y0 + side, x0:x0 + side] = True
            rows, cols = np.nonzero(m)
            bx.append([x0 + cols.min(), y0 + rows.min(), x0 + cols.max() + 1, y0 + rows.max() + 1])
            lb.append(int(labels[k]))
            src.append(k)
        boxes.append(np.asarray(bx, np.float32).reshape(-1, 4))
        labs.append(np.asarray(lb, np.int64))
        sources.append(tuple(src))
    return xs, masks, boxes, labs, sources


def _scaled(img: np.ndarray, side: int) -> np.ndarray:
    """``img`` (h, w) in [0, 1] resized to ``side`` x ``side`` (Pillow's bilinear filter, which also antialiases
    when shrinking; a float image, so no rounding)."""
    from PIL import Image

    out = Image.fromarray(np.ascontiguousarray(img, dtype=np.float32), mode="F").resize(
        (side, side), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(out, np.float32), 0.0, 1.0)
