"""The user's own data: an image folder (torchvision's ImageFolder layout, read with Pillow), an ``.npz`` file of
arrays, or arrays / a ``torch.utils.data.Dataset`` given from Python.

Each reader gives ``OwnRaw``: uint8 or float arrays (N, C, H, W) for the training images and, where the data has
them, the validation and test images; ``load_dataset`` splits and normalises them like the built-in datasets.
Everything is held in memory (see README, "Your own data"). A file that cannot be read is skipped with one
warning line naming it; a folder or file that cannot serve as a dataset is one ``NasforgeError`` line naming the
path and what was expected.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.data._preprocess import IMAGE_EXTENSIONS, read_image
from nasforge.errors import NasforgeError

SPLIT_DIRS = ("train", "val", "test")
IMAGEFOLDER_EXPECTED = ("one sub-folder per class of PNG/JPEG images (optionally under train/, val/, test/)")
NPZ_EXPECTED = "arrays x (N, H, W) or (N, H, W, C) and y (N,), optional x_test and y_test (and classes)"
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "La"})


@dataclass(frozen=True, eq=False)
class OwnRaw:
    """Arrays (N, C, H, W) of one source; ``val``/``test`` None where the splits are drawn from ``train``."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray] | None
    test: tuple[np.ndarray, np.ndarray] | None
    classes: tuple[str, ...]
    scale: float
    source: str
    skipped: tuple[str, ...] = ()


def warn(msg: str) -> None:
    """One warning line on stderr (the CLI and library callers alike)."""
    print(f"warning: {msg}", file=sys.stderr, flush=True)


# -- image folders ------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FolderScan:
    """The files of an image folder per split and class, and what their headers say (size, channels)."""

    root: str
    classes: tuple[str, ...]
    files: dict[str, tuple[tuple[str, int], ...]]  # split -> (path, label); split "" when there are no split dirs
    size: tuple[int, int]  # the most common (H, W)
    channels: int
    unreadable: tuple[str, ...]


def _class_dirs(d: Path) -> list[Path]:
    return sorted((p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _images_in(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                  and not p.name.startswith("."))


def _stamp(root: Path) -> tuple[tuple[str, int], ...]:
    """The folder tree's directory mtimes: files added or removed anywhere change it (cache key)."""
    return tuple((str(p), p.stat().st_mtime_ns) for p in [root, *sorted(q for q in root.rglob("*") if q.is_dir())])


def scan_folder(data_dir: str | os.PathLike[str] | None) -> FolderScan:
    """List an image folder's classes and files and read every header (not the pixels); cached per folder."""
    if not data_dir:
        raise NasforgeError(f"imagefolder: no data directory given (pass --data-dir DIR with {IMAGEFOLDER_EXPECTED})")
    root = Path(data_dir).expanduser().resolve()
    if not root.is_dir():
        raise NasforgeError(f"imagefolder: {root} is not a directory (expected {IMAGEFOLDER_EXPECTED})")
    return _scan(root, _stamp(root))


@lru_cache(maxsize=4)
def _scan(root: Path, stamp: tuple[tuple[str, int], ...]) -> FolderScan:
    from PIL import Image, UnidentifiedImageError

    splits = {s: root / s for s in SPLIT_DIRS if (root / s).is_dir()}
    if splits and "train" not in splits:
        raise NasforgeError(f"imagefolder: {root} has {', '.join(s + '/' for s in splits)} but no train/ "
                            f"(expected {IMAGEFOLDER_EXPECTED})")
    tops = splits or {"": root}
    classes = [p.name for p in _class_dirs(tops["train" if splits else ""])]
    if not classes:
        raise NasforgeError(f"imagefolder: {tops['train' if splits else '']} has no class sub-folders "
                            f"(expected {IMAGEFOLDER_EXPECTED})")
    if len(classes) < 2:
        raise NasforgeError(f"imagefolder: {root} has one class folder ({classes[0]}); expected at least 2 classes")
    sizes: Counter[tuple[int, int]] = Counter()
    modes: set[str] = set()
    unreadable: list[str] = []
    files: dict[str, tuple[tuple[str, int], ...]] = {}
    for split, top in tops.items():
        found = [p.name for p in _class_dirs(top)]
        extra = sorted(set(found) - set(classes))
        if extra:
            raise NasforgeError(f"imagefolder: {top / extra[0]} is not a class of {tops['train']} "
                                f"(classes: {', '.join(classes)})")
        rows: list[tuple[str, int]] = []
        for label, name in enumerate(classes):
            paths = _images_in(top / name) if (top / name).is_dir() else []
            if not paths and split in ("", "train"):
                raise NasforgeError(f"imagefolder: class folder {top / name} has no images (expected PNG/JPEG "
                                    f"files: {', '.join(IMAGE_EXTENSIONS)})")
            for p in paths:
                try:
                    with Image.open(p) as im:
                        sizes[(im.height, im.width)] += 1
                        modes.add(im.mode)
                except (OSError, UnidentifiedImageError, ValueError):
                    unreadable.append(str(p))
                    continue
                rows.append((str(p), label))
        files[split] = tuple(rows)
    if not sizes:
        raise NasforgeError(f"imagefolder: no image in {root} could be read (expected {IMAGEFOLDER_EXPECTED})")
    channels = 1 if modes <= GREY_MODES else 3
    return FolderScan(str(root), tuple(classes), files, sizes.most_common(1)[0][0], channels, tuple(unreadable))


def folder_shape(data_dir: str | os.PathLike[str] | None) -> tuple[tuple[int, int, int], tuple[str, ...]]:
    """(C, H, W) the folder's images are read at (their most common size) and its class names."""
    s = scan_folder(data_dir)
    return (s.channels, *s.size), s.classes


def read_folder(data_dir: str | os.PathLike[str] | None, size: tuple[int, int] | None = None) -> OwnRaw:
    """Every readable image of the folder as uint8 (N, C, H, W) at ``size`` (default: the most common size);
    unreadable files are skipped with one warning line each (once per folder and size: the pixels are cached)."""
    s = scan_folder(data_dir)
    return _read_folder(s, (int(size[0]), int(size[1])) if size is not None else s.size)


@lru_cache(maxsize=2)
def _read_folder(s: FolderScan, size: tuple[int, int]) -> OwnRaw:
    skipped = list(s.unreadable)
    for p in s.unreadable:
        warn(f"skipped unreadable image {p}")
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split, rows in s.files.items():
        x = np.empty((len(rows), s.channels, *size), dtype=np.uint8)
        y = np.empty(len(rows), dtype=np.int64)
        n = 0
        for path, label in rows:
            try:
                x[n] = read_image(path, s.channels, size)
            except (OSError, ValueError) as e:
                skipped.append(path)
                warn(f"skipped unreadable image {path} ({str(e).splitlines()[0] if str(e) else type(e).__name__})")
                continue
            y[n] = label
            n += 1
        out[split] = (x[:n], y[:n])
    root = Path(s.root)
    train = out["train"] if "train" in out else out[""]
    if len(train[1]) == 0:
        raise NasforgeError(f"imagefolder: no image in {root} could be read (expected {IMAGEFOLDER_EXPECTED})")
    counts = np.bincount(train[1], minlength=len(s.classes))
    if (counts == 0).any():
        empty = s.classes[int(np.argmin(counts))]
        top = root / "train" if "train" in out else root
        raise NasforgeError(f"imagefolder: class folder {top / empty} has no readable image")
    return OwnRaw(train, out.get("val"), out.get("test"), s.classes, 255.0, str(root), tuple(skipped))


# -- arrays: npz files and Python objects -------------------------------------------------------------------


def _nchw(x: np.ndarray, where: str, name: str) -> np.ndarray:
    """Channels-last images (N, H, W) or (N, H, W, C) with C 1 or 3 -> (N, C, H, W)."""
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[3] in (1, 3):
        return x.transpose(0, 3, 1, 2)
    raise NasforgeError(f"{where}: '{name}' has shape {x.shape}; expected (N, H, W) or (N, H, W, C) with C 1 or 3")


def _labels(y: Any, n: int, where: str, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise NasforgeError(f"{where}: '{name}' has shape {y.shape}; expected ({n},), one label per image")
    if y.size and (not np.issubdtype(y.dtype, np.integer) and not np.all(np.equal(np.mod(y, 1), 0))):
        raise NasforgeError(f"{where}: '{name}' must hold integer class labels, got {y.dtype}")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise NasforgeError(f"{where}: '{name}' has label {int(y.min())}; labels must be 0..K-1")
    return y


def _scale(arrays: Sequence[np.ndarray], where: str) -> float:
    """What divides the values into [0, 1]: 255 for uint8 (or values up to 255), 1 for values already in [0, 1]."""
    if all(a.dtype == np.uint8 for a in arrays):
        return 255.0
    for a in arrays:
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            raise NasforgeError(f"{where}: images must be numbers, got dtype {a.dtype}")
    hi = max(float(a.max()) if a.size else 0.0 for a in arrays)
    lo = min(float(a.min()) if a.size else 0.0 for a in arrays)
    if lo < 0 or hi > 255 or not np.isfinite(hi):
        raise NasforgeError(f"{where}: pixel values span {lo:g}..{hi:g}; expected 0..1 or 0..255")
    return 1.0 if hi <= 1.0 else 255.0


def from_arrays(x: Any, y: Any, x_test: Any = None, y_test: Any = None, classes: Sequence[str] | None = None,
                where: str = "arrays", channels_first: bool = False) -> OwnRaw:
    """Checked arrays -> ``OwnRaw``. Images are (N, H, W[, C]) (numpy's channels-last) or, with
    ``channels_first``, (N, C, H, W) (torch's)."""
    xs = [np.asarray(x)] + ([] if x_test is None else [np.asarray(x_test)])
    if (x_test is None) != (y_test is None):
        raise NasforgeError(f"{where}: give both x_test and y_test or neither")
    names = ("x", "x_test")
    if channels_first:
        for a, nm in zip(xs, names, strict=False):
            if a.ndim != 4 or a.shape[1] not in (1, 3):
                raise NasforgeError(f"{where}: '{nm}' has shape {a.shape}; expected (N, C, H, W) with C 1 or 3")
        arrs = xs
    else:
        arrs = [_nchw(a, where, nm) for a, nm in zip(xs, names, strict=False)]
    if len(arrs) == 2 and arrs[1].shape[1:] != arrs[0].shape[1:]:
        raise NasforgeError(f"{where}: x_test images are {arrs[1].shape[1:]} (C, H, W), x images "
                            f"{arrs[0].shape[1:]}; expected the same")
    if len(arrs[0]) == 0:
        raise NasforgeError(f"{where}: 'x' holds no image; expected {NPZ_EXPECTED}")
    ytr = _labels(y, len(arrs[0]), where, "y")
    yte = None if y_test is None else _labels(y_test, len(arrs[1]), where, "y_test")
    k = int(max(ytr.max(), yte.max() if yte is not None and yte.size else 0)) + 1
    if classes is not None:
        classes = tuple(str(c) for c in classes)
        if len(classes) < k:
            raise NasforgeError(f"{where}: {len(classes)} class names for labels 0..{k - 1}; expected at least {k}")
    else:
        classes = tuple(str(i) for i in range(k))
    if len(classes) < 2:
        raise NasforgeError(f"{where}: every label is 0; expected at least 2 classes")
    scale = _scale(arrs, where)
    test = None if yte is None else (arrs[1], yte)
    return OwnRaw((arrs[0], ytr), None, test, classes, scale, where)


def read_npz(path: str | os.PathLike[str] | None) -> OwnRaw:
    """An ``.npz`` file of arrays (never unpickled: object arrays are refused)."""
    if not path:
        raise NasforgeError(f"npz: no file given (pass --data-dir FILE.npz with {NPZ_EXPECTED})")
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise NasforgeError(f"npz: {p} is not a file (expected a .npz file with {NPZ_EXPECTED})")
    st = p.stat()
    return _read_npz(p, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=2)
def _read_npz(p: Path, mtime: int, size: int) -> OwnRaw:
    import zipfile

    if not zipfile.is_zipfile(p):
        raise NasforgeError(f"{p}: not a readable .npz file (not a zip archive of arrays); expected {NPZ_EXPECTED}")
    try:
        with np.load(p, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as e:
        why = "it holds object arrays, which are never unpickled" if "pickle" in str(e) else str(e)
        raise NasforgeError(f"{p}: cannot read ({why}); expected a .npz file with {NPZ_EXPECTED}") from None
    except Exception as e:  # zipfile.BadZipFile, OSError, EOFError: not an npz file
        raise NasforgeError(f"{p}: not a readable .npz file ({type(e).__name__}: {e}); expected {NPZ_EXPECTED}"
                            ) from None
    for key in ("x", "y"):
        if key not in arrays:
            raise NasforgeError(f"{p}: no array '{key}' (found: {', '.join(sorted(arrays)) or 'none'}); "
                                f"expected {NPZ_EXPECTED}")
    classes = arrays.get("classes")
    return from_arrays(arrays["x"], arrays["y"], arrays.get("x_test"), arrays.get("y_test"),
                       None if classes is None else [str(c) for c in classes.tolist()], where=str(p))


def from_torch(ds: Any, classes: Sequence[str] | None = None) -> OwnRaw:
    """A map-style ``torch.utils.data.Dataset`` of (image, label): images are tensors (C, H, W) or (H, W),
    numpy arrays (H, W[, C]) or PIL images; all of one shape."""
    import torch

    try:
        n = len(ds)
    except TypeError:
        raise NasforgeError("a torch Dataset must have a length (map-style); an IterableDataset cannot be split"
                            ) from None
    if n == 0:
        raise NasforgeError("the torch Dataset is empty; expected (image, label) items")
    xs: list[np.ndarray] = []
    ys: list[int] = []
    for i in range(n):
        item = ds[i]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise NasforgeError(f"item {i} of the torch Dataset is a {type(item).__name__}; expected (image, label)")
        img, label = item[0], item[1]
        if isinstance(img, torch.Tensor):
            a = img.detach().cpu().numpy()
            a = a[None] if a.ndim == 2 else a
        else:
            a = np.asarray(img)
            a = a[None] if a.ndim == 2 else (a.transpose(2, 0, 1) if a.ndim == 3 else a)
        if a.ndim != 3 or a.shape[0] not in (1, 3):
            raise NasforgeError(f"item {i} of the torch Dataset: image shape {tuple(np.shape(img))}; expected "
                                "(C, H, W) with C 1 or 3 (tensors) or (H, W[, C]) (arrays, PIL images)")
        if xs and a.shape != xs[0].shape:
            raise NasforgeError(f"item {i} of the torch Dataset: image shape {a.shape}, item 0 {xs[0].shape}; "
                                "expected one shape (resize them in the Dataset)")
        xs.append(a)
        ys.append(int(label.item() if isinstance(label, torch.Tensor) else label))
    raw = from_arrays(np.stack(xs), np.asarray(ys), classes=classes, where="torch Dataset", channels_first=True)
    return raw
