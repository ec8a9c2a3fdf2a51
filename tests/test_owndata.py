"""The user's own data (image folders, npz files, arrays and torch Datasets), the int8 model and `nasforge predict`.

The slow end-to-end test searches an image folder written here (PNG digits, 3 classes, one corrupt file), then
checks the int8 model in onnxruntime against fp32 and that `nasforge predict` on the test images reproduces the
reported test accuracies.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nasforge.cli import main
from nasforge.data import load_dataset
from nasforge.errors import NasforgeError

INT8_BOUND = 0.05
"""The int8 model's test accuracy is within 5 points of the fp32 ONNX model's on the 3-class digits test split
(~100 images, so 5 images); the summary flags a drop above 1 point."""


def digits_folder(root: Path, classes: int = 3, split: bool = True, corrupt: bool = True) -> Path:
    """scikit-learn's 8x8 digits of the first ``classes`` classes as grey PNG files, one folder per class
    (under train/ and test/ when ``split``: every 5th image is a test image), plus one corrupt file."""
    from sklearn.datasets import load_digits

    d = load_digits()
    for i, (img, t) in enumerate(zip(d.images, d.target, strict=True)):
        if t >= classes:
            continue
        sub = ("test" if i % 5 == 0 else "train") if split else "."
        folder = root / sub / f"digit{t}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 255 / 16).round().astype(np.uint8)).save(folder / f"{i:04d}.png")
    if corrupt:
        (root / ("train" if split else ".") / "digit1" / "broken.png").write_bytes(b"\x89PNG not really")
    return root


def test_imagefolder_reads_classes_skips_corrupt_and_keeps_test(tmp_path: Path, capfd: pytest.CaptureFixture[str]
                                                                ) -> None:
    root = digits_folder(tmp_path / "split")
    ds = load_dataset("imagefolder", root)
    err = capfd.readouterr().err.strip().splitlines()
    assert err == [f"warning: skipped unreadable image {root / 'train' / 'digit1' / 'broken.png'}"]
    assert ds.classes == ("digit0", "digit1", "digit2") and ds.input_shape == (1, 8, 8)
    assert ds.summary()["skipped_files"] == 1
    n_test = len(list((root / "test").rglob("*.png")))
    assert len(ds.test) == n_test  # the folder's test/ is the test split
    assert len(ds.train) + len(ds.val) == len(list((root / "train").rglob("*.png"))) - 1
    flat = load_dataset("imagefolder", digits_folder(tmp_path / "flat", split=False, corrupt=False), resize=16)
    assert flat.input_shape == (1, 16, 16) and flat.skipped == ()
    assert len(flat.test) == round(0.2 * (len(flat.train) + len(flat.val) + len(flat.test)))  # seeded 20%


def test_rgb_folder_of_mixed_sizes_is_read_at_the_most_common_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / c).mkdir()
        for i in range(6):
            size = (12, 10) if i else (20, 20)  # (W, H) of PIL; one odd one out
            Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(tmp_path / c / f"{i}.jpg")
    (tmp_path / "cat" / "grey.png").parent.mkdir(exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (10, 12), dtype=np.uint8)).save(tmp_path / "cat" / "grey.png")
    ds = load_dataset("imagefolder", tmp_path, val_fraction=0.2)
    assert ds.input_shape == (3, 10, 12) and ds.classes == ("cat", "dog")
    assert len(ds.train) + len(ds.val) + len(ds.test) == 13


def test_npz_torch_dataset_and_arrays_give_the_same_splits(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (120, 6, 5, 3), dtype=np.uint8)
    y = rng.integers(0, 4, 120)
    xt, yt = rng.integers(0, 256, (30, 6, 5, 3), dtype=np.uint8), rng.integers(0, 4, 30)
    np.savez(tmp_path / "d.npz", x=x, y=y, x_test=xt, y_test=yt)
    a = load_dataset((x, y, xt, yt), split_seed=3)
    b = load_dataset("npz", tmp_path / "d.npz", split_seed=3)
    tds = torch.utils.data.TensorDataset(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(y))
    c = load_dataset(tds, split_seed=3)  # no x_test: a seeded 20% test split, as for the arrays alone
    d = load_dataset((x, y), split_seed=3)
    for one, other in ((a, b), (c, d)):
        assert one.input_shape == other.input_shape == (3, 6, 5) and one.mean == other.mean
        for s in ("train", "val", "test"):
            assert torch.equal(getattr(one, s).x, getattr(other, s).x)
            assert torch.equal(getattr(one, s).y, getattr(other, s).y)
    assert len(a.test) == 30 and len(d.test) == 24 and a.classes == ("0", "1", "2", "3")


def test_preprocessing_of_files_equals_the_loaded_test_split(tmp_path: Path) -> None:
    """What `nasforge predict` does to a file is what the loader and the estimator did to the training data."""
    from nasforge.jobs._owndata import preprocessing

    root = digits_folder(tmp_path, corrupt=False)
    ds = load_dataset("imagefolder", root)
    prep = preprocessing(ds, (3, 16, 16))
    files = sorted((root / "test").rglob("*.png"), key=lambda p: (p.parent.name, p.name))
    got = prep.read(files)
    want = ds.with_channels(3).resized((16, 16)).test.x
    assert got.shape == want.shape == (len(files), 3, 16, 16)
    assert torch.equal(got, want)
    assert prep.to_dict()["classes"] == ["digit0", "digit1", "digit2"]


def test_bad_arrays_are_one_clear_error(tmp_path: Path) -> None:
    np.savez(tmp_path / "nox.npz", images=np.zeros((4, 8, 8)), y=np.zeros(4))
    with pytest.raises(NasforgeError, match=r"no array 'x' \(found: images, y\)"):
        load_dataset("npz", tmp_path / "nox.npz")
    with pytest.raises(NasforgeError, match=r"'y' has shape \(3,\); expected \(4,\)"):
        load_dataset((np.zeros((4, 8, 8), np.uint8), np.zeros(3, int)))
    with pytest.raises(NasforgeError, match="x_test images"):
        load_dataset((np.zeros((4, 8, 8), np.uint8), np.arange(4) % 2, np.zeros((2, 9, 8), np.uint8),
                      np.zeros(2, int)))
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(NasforgeError, match=r"not a readable \.npz"):
        load_dataset("npz", tmp_path / "junk.npz")


def _empty_folder(p: Path) -> Path:
    (p / "a").mkdir(parents=True)
    (p / "b").mkdir()
    (p / "a" / "notes.txt").write_text("no image")
    return p


def _empty_class(p: Path) -> Path:
    digits_folder(p, split=False, corrupt=False)
    (p / "digit9").mkdir()
    return p


def _unreadable_only(p: Path) -> Path:
    for c in ("a", "b"):
        (p / c).mkdir(parents=True)
        (p / c / "x.png").write_bytes(b"nope")
    return p


def _npz_without_x(p: Path) -> Path:
    p.mkdir()
    np.savez(p / "d.npz", images=np.zeros((4, 8, 8), np.uint8), y=np.arange(4) % 2)
    return p / "d.npz"


def _npz_mismatched(p: Path) -> Path:
    p.mkdir()
    np.savez(p / "d.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.arange(5) % 2)
    return p / "d.npz"


@pytest.mark.parametrize(("dataset", "make", "needle"), [
    ("imagefolder", _empty_folder, "class folder {d}/a has no images"),
    ("imagefolder", _empty_class, "class folder {d}/digit9 has no images"),
    ("imagefolder", _unreadable_only, "no image in {d} could be read"),
    ("imagefolder", lambda p: p / "missing", "{d}/missing is not a directory"),
    ("npz", _npz_without_x, "{d}/d.npz: no array 'x'"),
    ("npz", _npz_mismatched, "'y' has shape (5,); expected (4,)"),
])
def test_bad_data_is_one_line_exit_2_and_writes_nothing(dataset: str, make: object, needle: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "data"
    path = make(d)  # type: ignore[operator]
    out = tmp_path / "run"
    assert main(["search", "--dataset", dataset, "--data-dir", str(path), "--budget", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert needle.format(d=d.resolve()) in err, err
    assert not out.exists()


# -- end to end: search an image folder, int8, predict ----------------------------------------------------------


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    base = tmp_path_factory.mktemp("owndata")
    root = digits_folder(base / "digits")
    out = base / "run"
    rc = main(["search", "--dataset", "imagefolder", "--data-dir", str(root), "--budget", "2", "--epochs", "1",
               "--final-epochs", "10", "--out", str(out), "--json"])
    assert rc == 0
    return root, out, json.loads((out / "best" / "summary.json").read_text())


@pytest.mark.slow
def test_image_folder_search_end_to_end_with_int8(folder_run: tuple[Path, Path, dict]) -> None:
    import onnxruntime as ort

    _, out, best = folder_run
    assert best["data"]["skipped_files"] == 1 and best["data"]["name"] == "imagefolder"
    assert best["num_classes"] == 3 and best["preprocessing"]["classes"] == ["digit0", "digit1", "digit2"]
    assert best["test_acc"] > 0.6
    int8 = best["int8"]
    assert (out / "best" / "model.int8.onnx").is_file()
    assert abs(int8["test_acc"] - int8["test_acc_fp32_onnx"]) <= INT8_BOUND, int8
    assert int8["drop_over_1_point"] == (int8["accuracy_drop"] > 0.01)
    assert 0 < int8["analytic_weight_bytes"] == best["cost"]["weight_bytes"]  # the run's precision is int8
    assert int8["weight_bytes"] == sum(int8["weight_bytes_by_kind"].values())
    assert int8["fits"]["device"] == "stm32f746" and int8["fits"]["precision"] == "int8"
    sess = ort.InferenceSession(str(out / "best" / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    ops = {n.op_type for n in __import__("onnx").load(str(out / "best" / "model.int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    meta = json.loads(sess.get_modelmeta().custom_metadata_map["nasforge.preprocessing"])
    assert meta == best["preprocessing"]
    html = (out / "report.html").read_text()
    assert "Int8 model" in html
    ckpt = torch.load(out / "best" / "model.pt", weights_only=True)
    assert ckpt["preprocessing"] == best["preprocessing"]


@pytest.mark.slow
def test_predict_on_the_test_images_reproduces_the_test_accuracy(folder_run: tuple[Path, Path, dict],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root, out, best = folder_run
    files = sorted((root / "test").rglob("*.png"))
    truth = [f.parent.name for f in files]
    for flag, want in (([], best["test_acc"]), (["--int8"], best["int8"]["test_acc"])):
        assert main(["predict", str(out), *map(str, files), *flag, "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        acc = sum(r["class"] == t for r, t in zip(rows, truth, strict=True)) / len(files)
        assert acc == pytest.approx(want, abs=1e-9), flag
    assert main(["predict", str(out), str(root / "train" / "digit1" / "broken.png")]) == 2
    assert "cannot read image" in capsys.readouterr().err


@pytest.mark.slow
def test_export_onnx_int8_rewrites_the_int8_model(folder_run: tuple[Path, Path, dict], tmp_path: Path) -> None:
    _, out, best = folder_run
    assert main(["export", str(out), "--format", "onnx-int8", "--out", str(tmp_path / "m.onnx")]) == 0
    from nasforge.jobs._quantize import read_metadata

    assert read_metadata(tmp_path / "m.onnx") == best["preprocessing"]


@pytest.mark.slow
def test_a_job_takes_a_dataset_given_from_python(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    from nasforge.jobs._search import run_job

    d = load_digits()
    keep = d.target < 3
    ds = load_dataset(((d.images[keep] / 16).astype(np.float32), d.target[keep]), classes=["zero", "one", "two"])
    out = tmp_path / "run"
    summary = run_job({"budget": 1, "epochs": 1, "final_epochs": 1, "batch_size": 32, "out": str(out)}, data=ds)
    assert summary["data"]["name"] == "arrays" and summary["best"]["num_classes"] == 3
    assert summary["best"]["preprocessing"]["classes"] == ["zero", "one", "two"]
    assert "arrays" in (out / "config.yaml").read_text()
    with pytest.raises(NasforgeError, match="data given from Python"):
        run_job({"dataset": "arrays", "out": str(tmp_path / "other")})
