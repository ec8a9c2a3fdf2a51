"""Readers of the built-in datasets and ``load_dataset``: digits, Fashion-MNIST (IDX) and CIFAR-10 (pickles).

Raw arrays are read once per path and cached; splits, subsets and normalisation are cheap and redone per
call. Every problem with the files is a one-line ``NasforgeError`` naming the path and what was expected.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.data._dataset import Dataset, DatasetInfo, make_dataset, split_indices
from nasforge.data._own import OwnRaw
from nasforge.errors import NasforgeError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IDX_FILES = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
             "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST = "test_batch"
DIGITS_TEST_FRACTION = 0.2  # digits has no official test split: 20% of it, seeded, is held out

# (train_x, train_y, test_x, test_y, classes, scale, source); test arrays may be None (carved from train)
Raw = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, tuple[str, ...], float, str]


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    read: Callable[[str | None], Raw]


# -- digits ------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.asarray(d.images, dtype=np.float32)[:, None, :, :]
    x.setflags(write=False)
    y = np.asarray(d.target, dtype=np.int64)
    y.setflags(write=False)
    return x, y


def _read_digits(data_dir: str | None) -> Raw:
    x, y = _digits_raw()
    return x, y, None, None, tuple(str(i) for i in range(10)), 16.0, "sklearn.datasets.load_digits"


# -- Fashion-MNIST (IDX) -------------------------------------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """An unsigned-byte IDX array (gzip-compressed when the name ends in .gz)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError) as e:
        raise NasforgeError(f"cannot read {path}: {e}; expected an IDX file (optionally gzip-compressed)") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise NasforgeError(f"{path}: not an unsigned-byte IDX file (header {data[:4].hex()!r}, "
                            "expected 000008 then the number of dimensions)")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise NasforgeError(f"{path}: truncated IDX header ({len(data)} bytes)")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    count = int(np.prod(dims)) if dims else 0
    if len(data) != 4 + 4 * ndim + count:
        raise NasforgeError(f"{path}: IDX payload is {len(data) - 4 - 4 * ndim} bytes, expected {count} "
                            f"for shape {tuple(dims)}")
    arr = np.frombuffer(data, dtype=np.uint8, count=count, offset=4 + 4 * ndim).reshape(dims)
    return arr


def _find(folder: Path, stem: str, what: str, expected: str) -> Path:
    for name in (stem + ".gz", stem):
        p = folder / name
        if p.is_file():
            return p
    raise NasforgeError(f"{what}: missing {folder / (stem + '.gz')} (expected {expected})")


def _stamp(paths: Sequence[Path]) -> tuple[tuple[str, int, int], ...]:
    """Identity of files for the cache: a changed file is read again."""
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)


def _idx_raw(folder: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    d = Path(folder)
    expected = "the IDX files " + ", ".join(s + ".gz" for s in IDX_FILES.values())
    if not d.is_dir():
        raise NasforgeError(f"fashion-mnist: data directory {d} does not exist (expected {expected}; "
                            f"install the 'dataset-fashion-mnist' package or pass --data-dir)")
    files = [_find(d, stem, "fashion-mnist", expected) for stem in IDX_FILES.values()]
    return _idx_read(d, _stamp(files))


@lru_cache(maxsize=2)
def _idx_read(d: Path, stamp: tuple[tuple[str, int, int], ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                         np.ndarray]:
    arrs = {k: read_idx(Path(s[0])) for k, s in zip(IDX_FILES, stamp, strict=True)}
    for split in ("train", "test"):
        x, y = arrs[split + "_x"], arrs[split + "_y"]
        xp, yp = d / IDX_FILES[split + "_x"], d / IDX_FILES[split + "_y"]
        if x.ndim != 3 or y.ndim != 1:
            raise NasforgeError(f"{xp}: expected images (N, H, W) and labels (N,), got {x.shape} and {y.shape}")
        if len(x) != len(y):
            raise NasforgeError(f"{xp}: {len(x)} images but {yp} has {len(y)} labels")
        if len(y) and int(y.max()) >= 10:
            raise NasforgeError(f"{yp}: label {int(y.max())} out of range 0..9")
    if arrs["train_x"].shape[1:] != arrs["test_x"].shape[1:]:
        raise NasforgeError(f"{d}: train images {arrs['train_x'].shape[1:]} and test images "
                            f"{arrs['test_x'].shape[1:]} differ in size")
    return (arrs["train_x"][:, None], arrs["train_y"], arrs["test_x"][:, None], arrs["test_y"])


def _read_fashion(data_dir: str | None) -> Raw:
    folder = str(Path(data_dir or FASHION_MNIST_DIR).expanduser().resolve())
    xtr, ytr, xte, yte = _idx_raw(folder)
    return xtr, ytr, xte, yte, FASHION_MNIST_CLASSES, 255.0, folder


# -- CIFAR-10 (python pickles) ---------------------------------------------------------------------------

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a CIFAR batch from a user's folder runs no code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def _unpickle(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except OSError as e:
        raise NasforgeError(f"cannot read {path}: {e}") from None
    except Exception as e:  # any unpickling problem means "not a CIFAR batch"
        raise NasforgeError(f"{path}: not a CIFAR-10 python batch ({type(e).__name__}: {e}); "
                            "expected a pickled dict with 'data' and 'labels'") from None
    if not isinstance(obj, dict):
        raise NasforgeError(f"{path}: expected a pickled dict with 'data' and 'labels', got {type(obj).__name__}")
    return {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(path)
    if "data" not in d or "labels" not in d:
        raise NasforgeError(f"{path}: expected keys 'data' and 'labels', found {sorted(d)}")
    x = np.asarray(d["data"])
    y = np.asarray(d["labels"], dtype=np.int64)
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
        raise NasforgeError(f"{path}: 'data' must be uint8 of shape (N, 3072), got {x.dtype} {x.shape}")
    if y.shape != (x.shape[0],):
        raise NasforgeError(f"{path}: {x.shape[0]} images but {y.size} labels")
    if y.size and (y.min() < 0 or y.max() >= 10):
        raise NasforgeError(f"{path}: labels must be in 0..9, found {int(y.min())}..{int(y.max())}")
    return x.reshape(-1, 3, 32, 32), y


def _cifar_raw(folder: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    d = Path(folder)
    expected = f"the CIFAR-10 python batches {', '.join(CIFAR10_TRAIN)}, {CIFAR10_TEST}"
    if not d.is_dir():
        raise NasforgeError(f"cifar10: data directory {d} does not exist (expected {expected})")
    if not (d / CIFAR10_TEST).is_file() and (d / "cifar-10-batches-py").is_dir():
        d = d / "cifar-10-batches-py"
    for name in (*CIFAR10_TRAIN, CIFAR10_TEST):
        if not (d / name).is_file():
            raise NasforgeError(f"cifar10: missing {d / name} (expected {expected})")
    names = [*CIFAR10_TRAIN, CIFAR10_TEST] + (["batches.meta"] if (d / "batches.meta").is_file() else [])
    return _cifar_read(d, _stamp([d / n for n in names]))


@lru_cache(maxsize=2)
def _cifar_read(d: Path, stamp: tuple[tuple[str, int, int], ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                           np.ndarray, tuple[str, ...]]:
    train = [_cifar_batch(d / n) for n in CIFAR10_TRAIN]
    xte, yte = _cifar_batch(d / CIFAR10_TEST)
    classes: tuple[str, ...] = CIFAR10_CLASSES
    meta = d / "batches.meta"
    if meta.is_file():
        names = _unpickle(meta).get("label_names")
        if isinstance(names, list) and len(names) == 10:
            classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), xte, yte, classes)


def _read_cifar10(data_dir: str | None) -> Raw:
    if not data_dir:
        raise NasforgeError("cifar10: no data directory given (pass --data-dir with the CIFAR-10 python batches "
                            "data_batch_1..5 and test_batch)")
    folder = str(Path(data_dir).expanduser().resolve())
    xtr, ytr, xte, yte, classes = _cifar_raw(folder)
    return xtr, ytr, xte, yte, classes, 255.0, folder


# -- registry and load_dataset -------------------------------------------------------------------------------

_DATASETS: dict[str, _Entry] = {
    "digits": _Entry(DatasetInfo("digits", (1, 8, 8), 10, tuple(str(i) for i in range(10))), _read_digits),
    "fashion-mnist": _Entry(DatasetInfo("fashion-mnist", (1, 28, 28), 10, FASHION_MNIST_CLASSES), _read_fashion),
    "cifar10": _Entry(DatasetInfo("cifar10", (3, 32, 32), 10, CIFAR10_CLASSES), _read_cifar10),
}


OWN_DATASETS = ("imagefolder", "npz")
"""Datasets read from the user's own files: ``imagefolder`` (a folder of class folders) and ``npz`` (a file)."""
IN_MEMORY = "arrays"
"""The name of a dataset given from Python (arrays or a torch ``Dataset``)."""


def list_datasets() -> list[str]:
    """The dataset names ``load_dataset`` and the jobs' ``--dataset`` accept."""
    return sorted([*_DATASETS, *OWN_DATASETS])


def _entry(name: str) -> _Entry:
    e = _DATASETS.get(name)
    if e is None:
        raise NasforgeError(f"unknown dataset {name!r}; known: {', '.join(list_datasets())}")
    return e


def dataset_info(name: str, resize: int | None = None, data_dir: str | os.PathLike[str] | None = None
                 ) -> DatasetInfo:
    """Input shape and classes of a dataset (after ``resize`` if given): for the built-in ones without reading
    any file; an image folder's headers or an npz file are read (and cached) to know them."""
    if name == "imagefolder":
        from nasforge.data._own import folder_shape

        shape, classes = folder_shape(data_dir)
        info = DatasetInfo(name, shape, len(classes), classes)
    elif name == "npz":
        from nasforge.data._own import read_npz

        raw = read_npz(data_dir)
        info = DatasetInfo(name, tuple(int(v) for v in raw.train[0].shape[1:]),  # type: ignore[arg-type]
                           len(raw.classes), raw.classes)
    else:
        info = _entry(name).info
    if resize is None:
        return info
    _check_resize(resize)
    return DatasetInfo(info.name, (info.input_shape[0], resize, resize), info.num_classes, info.classes)


def _check_resize(resize: int) -> None:
    if isinstance(resize, bool) or not isinstance(resize, int) or resize < 1:
        raise NasforgeError(f"resize must be a positive integer (pixels), got {resize!r}")


def _subset_sizes(subset: int | Sequence[int | None] | None) -> tuple[int | None, int | None, int | None]:
    if subset is None:
        return None, None, None
    if isinstance(subset, int) and not isinstance(subset, bool):
        sizes: list[int | None] = [subset, None, None]
    elif isinstance(subset, Sequence) and not isinstance(subset, str) and len(subset) == 3:
        sizes = list(subset)
    else:
        raise NasforgeError(f"subset must be an int (training images) or (train, val, test) sizes, got {subset!r}")
    for s in sizes:
        if s is not None and (isinstance(s, bool) or not isinstance(s, int) or s < 1):
            raise NasforgeError(f"subset sizes must be positive integers or None, got {subset!r}")
    return sizes[0], sizes[1], sizes[2]


def _own_raw(source: Any, data_dir: str | os.PathLike[str] | None, resize: int | None,
             classes: Sequence[str] | None) -> tuple[str, OwnRaw]:
    """(name, arrays) of a source that is not a built-in dataset, or None for a built-in name."""
    from nasforge.data import _own

    if isinstance(source, str):
        if source == "imagefolder":
            return source, _own.read_folder(data_dir, None if resize is None else (resize, resize))
        return source, _own.read_npz(data_dir)
    if isinstance(source, tuple) and len(source) in (2, 4):
        import torch

        first = source[0]
        if isinstance(first, torch.Tensor):  # torch's layout: (N, C, H, W)
            arrs = [a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a for a in source]
        else:
            arrs = list(source)
        xt, yt = (arrs[2], arrs[3]) if len(arrs) == 4 else (None, None)
        return IN_MEMORY, _own.from_arrays(arrs[0], arrs[1], xt, yt, classes=classes,
                                           channels_first=isinstance(first, torch.Tensor))
    if hasattr(source, "__getitem__") and hasattr(source, "__len__"):
        return IN_MEMORY, _own.from_torch(source, classes=classes)
    raise NasforgeError(f"cannot load a dataset from a {type(source).__name__}; expected a dataset name "
                        f"({', '.join(list_datasets())}), a torch Dataset of (image, label) or (x, y) arrays")


def load_dataset(name: str | Any, data_dir: str | os.PathLike[str] | None = None, split_seed: int = 0,
                 subset: int | Sequence[int | None] | None = None, resize: int | None = None,
                 val_fraction: float = 0.1, classes: Sequence[str] | None = None) -> Dataset:
    """Load a dataset as normalised in-memory tensors with fixed, seeded train/validation/test splits.

    - ``name``: ``digits`` (scikit-learn's 8x8 digits, embedded), ``fashion-mnist`` (the four IDX files
      ``train-images-idx3-ubyte[.gz]`` ... in ``data_dir``, default ``/usr/share/datasets/fashion-mnist``),
      ``cifar10`` (the python batches ``data_batch_1..5`` and ``test_batch`` in ``data_dir`` or its
      ``cifar-10-batches-py`` folder), ``imagefolder`` (``data_dir`` holds one sub-folder per class of PNG/JPEG
      files, optionally under ``train/``, ``val/``, ``test/``; read with Pillow as grey when every image is,
      else RGB, at their most common size or ``resize``; unreadable files are skipped with a warning line)
      or ``npz`` (``data_dir`` is a file with arrays ``x`` (N, H, W[, C]), ``y``, optional ``x_test``,
      ``y_test``, ``classes``).
      Or the data itself: ``(x, y)`` or ``(x, y, x_test, y_test)`` arrays (numpy: (N, H, W[, C]); torch tensors:
      (N, C, H, W)) or a map-style ``torch.utils.data.Dataset`` of (image, label); its name is ``arrays``.
      Images are uint8 (0..255) or numbers in [0, 1] (or 0..255); ``classes`` names the labels 0..K-1.
    - The validation split is ``val_fraction`` of the training images, drawn with ``split_seed`` (or the
      folder's ``val/``); the test split is the official one (the folder's ``test/``, ``x_test``); where there
      is none (digits, a flat folder, arrays without ``x_test``) a seeded 20% is held out first.
    - ``subset``: an int caps the training split at that many images; a (train, val, test) triple caps each
      (None keeps a split whole). Subsets are seeded random draws of each split.
    - ``resize``: square side in pixels to resize all images to (bilinear).
    Normalisation uses the per-channel mean and std of the (possibly capped) training split.
    """
    if not 0.0 < val_fraction < 1.0:
        raise NasforgeError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if resize is not None:
        _check_resize(resize)
    n_train, n_val, n_test = _subset_sizes(subset)
    xva = yva = None
    skipped: tuple[str, ...] = ()
    if isinstance(name, str) and name in _DATASETS:
        xtr, ytr, xte, yte, classes_, scale, source = _entry(name).read(
            None if data_dir is None else os.fspath(data_dir))
    elif isinstance(name, str) and name not in OWN_DATASETS:
        raise NasforgeError(f"unknown dataset {name!r}; known: {', '.join(list_datasets())}")
    else:
        name, raw = _own_raw(name, data_dir, resize, classes)
        (xtr, ytr), classes_, scale, source, skipped = raw.train, raw.classes, raw.scale, raw.source, raw.skipped
        xte, yte = raw.test if raw.test is not None else (None, None)
        if raw.val is not None:
            xva, yva = raw.val
    rng = np.random.default_rng(split_seed)
    if xte is None or yte is None:
        tr, va, te = split_indices(len(ytr), rng, val_fraction, DIGITS_TEST_FRACTION)
        xte, yte = xtr, ytr
    else:
        tr, va, _ = split_indices(len(ytr), rng, val_fraction)
        te = rng.permutation(len(yte))
    if xva is not None and yva is not None and len(yva):  # the folder's own val/: all of train trains
        tr, va = np.concatenate([tr, va]), rng.permutation(len(yva))
    else:
        xva, yva = xtr, ytr
    tr, va, te = tr[:n_train], va[:n_val], te[:n_test]
    if len(va) == 0:
        raise NasforgeError(f"{name}: validation split is empty ({len(ytr)} images x val_fraction {val_fraction})")
    if len(te) == 0:
        raise NasforgeError(f"{name}: test split is empty ({len(ytr)} images); expected more images or a test set")
    ds = make_dataset(name, xtr[np.sort(tr)], ytr[np.sort(tr)], xva[np.sort(va)], yva[np.sort(va)],
                      xte[np.sort(te)], yte[np.sort(te)], classes_, scale, source, skipped)
    return ds if resize is None else ds.resized(resize)
