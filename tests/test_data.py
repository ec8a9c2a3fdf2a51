"""Dataset loaders: digits (real), Fashion-MNIST (real files when installed, else a generated IDX fixture),
CIFAR-10 (a generated fixture in the python-pickle format); seeded splits, subsets, resize, clear errors."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.data import dataset_info, list_datasets, load_dataset
from nasforge.data._loaders import read_idx
from nasforge.errors import NasforgeError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def test_digits_splits_are_seeded_disjoint_and_normalised() -> None:
    ds = load_dataset("digits")
    assert ds.input_shape == (1, 8, 8) and ds.num_classes == 10
    assert len(ds.train) + len(ds.val) + len(ds.test) == 1797
    assert len(ds.test) == round(1797 * 0.2) and len(ds.val) == round((1797 - len(ds.test)) * 0.1)
    assert abs(float(ds.train.x.mean())) < 1e-4 and abs(float(ds.train.x.std()) - 1.0) < 1e-2
    assert ds.train.x.dtype == torch.float32 and ds.train.y.dtype == torch.int64
    assert set(ds.train.y.tolist()) == set(range(10))
    # splits are disjoint: no image appears in two of them (digits has a few duplicates, so compare counts)
    rows = {split: {tuple(r) for r in getattr(ds, split).x.reshape(len(getattr(ds, split)), -1).tolist()}
            for split in ("train", "val", "test")}
    total_distinct = len(rows["train"] | rows["val"] | rows["test"])
    assert total_distinct >= sum(len(r) for r in rows.values()) - 5
    again = load_dataset("digits", split_seed=0)
    other = load_dataset("digits", split_seed=1)
    assert torch.equal(again.val.x, ds.val.x) and torch.equal(again.test.y, ds.test.y)
    assert not torch.equal(other.val.y, ds.val.y)


def test_subset_and_resize() -> None:
    ds = load_dataset("digits", subset=100, resize=16)
    assert len(ds.train) == 100 and ds.input_shape == (1, 16, 16)
    small = load_dataset("digits", subset=(50, 20, 30))
    assert (len(small.train), len(small.val), len(small.test)) == (50, 20, 30)
    rgb = small.with_channels(3)
    assert rgb.input_shape == (3, 8, 8) and torch.equal(rgb.train.x[:, 2], small.train.x[:, 0])
    assert dataset_info("fashion-mnist").input_shape == (1, 28, 28)
    assert dataset_info("cifar10", resize=16).input_shape == (3, 16, 16)
    assert list_datasets() == ["cifar10", "digits", "fashion-mnist", "imagefolder", "npz"]


def _write_idx(path: Path, arr: np.ndarray, compress: bool = True) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def _fashion_fixture(folder: Path, n_train: int = 60, n_test: int = 20, compress: bool = True) -> None:
    rng = np.random.default_rng(0)
    sfx = ".gz" if compress else ""
    _write_idx(folder / f"train-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_train, 28, 28)), compress)
    _write_idx(folder / f"train-labels-idx1-ubyte{sfx}", np.arange(n_train) % 10, compress)
    _write_idx(folder / f"t10k-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_test, 28, 28)), compress)
    _write_idx(folder / f"t10k-labels-idx1-ubyte{sfx}", np.arange(n_test) % 10, compress)


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_fixture(tmp_path: Path, compress: bool) -> None:
    _fashion_fixture(tmp_path, compress=compress)
    ds = load_dataset("fashion-mnist", data_dir=tmp_path)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (54, 6, 20)
    assert ds.input_shape == (1, 28, 28) and ds.classes[0] == "T-shirt/top"
    raw = read_idx(tmp_path / ("t10k-labels-idx1-ubyte" + (".gz" if compress else "")))
    assert sorted(ds.test.y.tolist()) == sorted(raw.tolist())


@pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
                    reason=f"Fashion-MNIST not installed in {FASHION_DIR} (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_real_files() -> None:
    ds = load_dataset("fashion-mnist", subset=(2000, 500, 1000))
    assert (len(ds.train), len(ds.val), len(ds.test)) == (2000, 500, 1000)
    assert ds.input_shape == (1, 28, 28)
    assert set(ds.test.y.tolist()) == set(range(10))
    assert 0.2 < ds.mean[0] < 0.4  # Fashion-MNIST pixel mean is about 0.286


def _cifar_fixture(folder: Path, per_batch: int = 10, protocol: int = 2, with_meta: bool = True) -> None:
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        batch = {b"batch_label": name.encode(), b"labels": [int(v) for v in (np.arange(per_batch) + i) % 10],
                 b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"filenames": [f"{j}.png".encode() for j in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    if with_meta:
        meta = {b"label_names": [f"class{j}".encode() for j in range(10)], b"num_vis": 3072}
        (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar10_fixture(tmp_path: Path, protocol: int) -> None:
    _cifar_fixture(tmp_path / "cifar-10-batches-py", protocol=protocol)
    ds = load_dataset("cifar10", data_dir=tmp_path, subset=(40, None, None))  # finds the nested folder
    assert ds.input_shape == (3, 32, 32) and ds.classes[3] == "class3"
    assert (len(ds.train), len(ds.val), len(ds.test)) == (40, 5, 10)
    assert len(ds.mean) == 3
    assert abs(float(ds.train.x.mean())) < 1e-4


def test_bad_paths_and_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(NasforgeError, match="does not exist"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "nope")
    with pytest.raises(NasforgeError, match=r"missing .*train-images-idx3-ubyte"):
        load_dataset("fashion-mnist", data_dir=tmp_path)
    _fashion_fixture(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(NasforgeError, match=r"t10k-labels-idx1-ubyte\.gz") as e:
        load_dataset("fashion-mnist", data_dir=tmp_path)
    assert "\n" not in str(e.value)
    bad = tmp_path / "short"
    bad.mkdir()
    _fashion_fixture(bad)
    with gzip.open(bad / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", 5, 28, 28) + b"\0" * 10)
    with pytest.raises(NasforgeError, match="payload"):
        load_dataset("fashion-mnist", data_dir=bad)
    with pytest.raises(NasforgeError, match="no data directory"):
        load_dataset("cifar10")
    with pytest.raises(NasforgeError, match=r"missing .*data_batch_1"):
        load_dataset("cifar10", data_dir=tmp_path)
    with pytest.raises(NasforgeError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(NasforgeError, match="subset"):
        load_dataset("digits", subset=(1, 2))


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


def test_cifar10_refuses_code_and_bad_shapes(tmp_path: Path) -> None:
    _cifar_fixture(tmp_path)
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": []}))
    with pytest.raises(NasforgeError, match="data_batch_3: not a CIFAR-10 python batch"):
        load_dataset("cifar10", data_dir=tmp_path)
    other = tmp_path / "other"
    _cifar_fixture(other)
    (other / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4}))
    with pytest.raises(NasforgeError, match=r"test_batch: 'data' must be uint8 of shape \(N, 3072\)"):
        load_dataset("cifar10", data_dir=other)
