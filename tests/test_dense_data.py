"""Dense data: the built-in multi-scale canvases (deterministic, splits disjoint by source image, masks and boxes
that agree) and the COCO / masks readers with their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.data import load_dense_dataset
from nasforge.data._loaders import FASHION_MNIST_DIR
from nasforge.data._multiscale import _build
from nasforge.errors import NasforgeError

SMALL = {"canvas": 32, "min_size": 6, "max_size": 16, "counts": (40, 12, 12)}


def _fresh(task: str, seed: int = 0, **kw: object) -> object:
    _build.cache_clear()  # build it again, not the cached copy
    return load_dense_dataset("multiscale", task, seed=seed, **{**SMALL, **kw})  # type: ignore[arg-type]


def test_multiscale_is_deterministic_for_a_seed() -> None:
    a, b, c = _fresh("segmentation"), _fresh("segmentation"), _fresh("segmentation", seed=1)
    for split in ("train", "val", "test"):
        sa, sb = getattr(a, split), getattr(b, split)
        assert torch.equal(sa.x, sb.x) and torch.equal(sa.masks, sb.masks)
        assert all(torch.equal(x, y) for x, y in zip(sa.boxes, sb.boxes, strict=True))
        assert sa.sources == sb.sources
    assert not torch.equal(a.train.x, c.train.x)  # type: ignore[attr-defined]


def test_multiscale_splits_are_disjoint_by_source_image() -> None:
    ds = _fresh("detection", counts=(200, 60, 60))
    used = [{k for s in getattr(ds, split).sources for k in s} for split in ("train", "val", "test")]
    assert all(used)
    assert not used[0] & used[1] and not used[0] & used[2] and not used[1] & used[2]


def test_multiscale_masks_boxes_and_sizes_agree() -> None:
    seg, det = _fresh("segmentation"), _fresh("detection")
    assert seg.input_shape == det.input_shape == (1, 32, 32)
    assert seg.num_classes == 11 and det.num_classes == 10 and seg.class_names[0] == "background"
    assert det.train.masks is None
    sides = []
    for i in range(len(seg.train)):
        mask = seg.train.masks[i]
        boxes, labels = seg.train.boxes[i], seg.train.labels[i]
        assert len(boxes) == len(labels) == len(seg.train.sources[i]) >= 1
        for (x0, y0, x1, y1), c in zip(boxes.long().tolist(), labels.tolist(), strict=True):
            assert 0 <= x0 < x1 <= 32 and 0 <= y0 < y1 <= 32
            inside = mask[y0:y1, x0:x1]
            assert (inside == c + 1).any()  # the object's pixels are in its box ...
            rows, cols = torch.nonzero(inside == c + 1, as_tuple=True)
            assert rows.min() == 0 and cols.min() == 0 and rows.max() == y1 - y0 - 1 and cols.max() == x1 - x0 - 1
            sides.append(max(x1 - x0, y1 - y0))
        # ... and no object pixel lies outside every box
        covered = torch.zeros_like(mask, dtype=torch.bool)
        for x0, y0, x1, y1 in boxes.long().tolist():
            covered[y0:y1, x0:x1] = True
        assert not ((mask > 0) & ~covered).any()
    assert max(sides) <= 16 and min(sides) < 10  # several scales


def test_multiscale_bad_options_and_dataset_task_pairs() -> None:
    with pytest.raises(NasforgeError, match="min_size"):
        load_dense_dataset("multiscale", "detection", canvas=16, min_size=8, max_size=32)
    with pytest.raises(NasforgeError, match="no segmentation targets"):
        load_dense_dataset("coco", "segmentation", data_dir="x")
    with pytest.raises(NasforgeError, match="no data directory"):
        load_dense_dataset("coco", "detection")


@pytest.mark.slow  # reads the 70,000 Fashion-MNIST images
@pytest.mark.skipif(not Path(FASHION_MNIST_DIR).is_dir(), reason="Fashion-MNIST is not installed")
def test_multiscale_fashion_uses_the_fashion_items() -> None:
    ds = load_dense_dataset("multiscale-fashion", "segmentation", **SMALL)  # type: ignore[arg-type]
    assert ds.classes[0] == "T-shirt/top" and ds.num_classes == 11


# -- the user's files ------------------------------------------------------------------------------------------


def _image(path: Path, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(path)


def _coco(root: Path, n: int = 4, bbox: list[float] | None = None, missing: bool = False) -> Path:
    images = [{"id": i + 10, "file_name": f"im{i}.png", "width": 40, "height": 30} for i in range(n)]
    for i in range(n - (1 if missing else 0)):
        _image(root / "images" / f"im{i}.png")
    anns = [{"id": i + 1, "image_id": i + 10, "category_id": 7 if i % 2 else 3, "bbox": bbox or [4, 2, 20, 10]}
            for i in range(n)]
    cats = [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return root


def test_coco_reader_scales_boxes_and_maps_categories(tmp_path: Path) -> None:
    ds = load_dense_dataset("coco", "detection", data_dir=_coco(tmp_path, n=6), image_size=80)
    assert ds.input_shape == (3, 80, 80) and ds.classes == ("cat", "dog") and ds.num_classes == 2
    assert len(ds.train) + len(ds.val) + len(ds.test) == 6 and len(ds.val) >= 1 and len(ds.test) >= 1
    b = ds.train.boxes[0]
    assert torch.allclose(b, torch.tensor([[4 * 80 / 40, 2 * 80 / 30, 24 * 80 / 40, 12 * 80 / 30]]))
    ids = {s for split in (ds.train, ds.val, ds.test) for s in split.sources}
    assert len(ids) == 6


@pytest.mark.parametrize(("case", "match"), [
    ("missing", r"image .*im3\.png \(id 13 .*does not exist"),
    ("bad_box", r"annotation 0 \(id 1\): bad bbox \[4, 2, -3, 10\]"),
    ("outside", r"bad bbox \[30, 2, 20, 10\].*inside the 40x30 image"),
    ("json", r"annotations\.json is not valid JSON"),
    ("keys", r"must be an object with lists 'images'"),
    ("category", r"category_id 99 is not among the categories"),
])
def test_coco_reader_bad_files_are_one_line(tmp_path: Path, case: str, match: str) -> None:
    if case == "missing":
        _coco(tmp_path, missing=True)
    elif case == "bad_box":
        _coco(tmp_path, bbox=[4, 2, -3, 10])
    elif case == "outside":
        _coco(tmp_path, bbox=[30, 2, 20, 10])
    elif case == "json":
        _coco(tmp_path)
        (tmp_path / "annotations.json").write_text("{not json")
    elif case == "keys":
        _coco(tmp_path)
        (tmp_path / "annotations.json").write_text(json.dumps({"images": []}))
    else:
        _coco(tmp_path)
        doc = json.loads((tmp_path / "annotations.json").read_text())
        doc["annotations"][1]["category_id"] = 99
        (tmp_path / "annotations.json").write_text(json.dumps(doc))
    with pytest.raises(NasforgeError, match=match) as e:
        load_dense_dataset("coco", "detection", data_dir=tmp_path)
    assert "\n" not in str(e.value) and str(tmp_path) in str(e.value)


def _masks(root: Path, n: int = 5) -> Path:
    from PIL import Image

    for i in range(n):
        _image(root / "images" / f"p{i}.jpg")
        m = np.zeros((30, 40), np.uint8)
        m[5:15, 10:30] = 1 + i % 3
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(m, "L").save(root / "masks" / f"p{i}.png")
    return root


def test_masks_reader_reads_class_ids(tmp_path: Path) -> None:
    ds = load_dense_dataset("masks", "segmentation", data_dir=_masks(tmp_path), image_size=20)
    assert ds.input_shape == (3, 20, 20) and ds.num_classes == 4 and ds.class_names == ("background", "1", "2", "3")
    all_ids = torch.cat([s.masks.flatten() for s in (ds.train, ds.val, ds.test)]).unique().tolist()
    assert all_ids == [0, 1, 2, 3]


def test_masks_reader_bad_files_are_one_line(tmp_path: Path) -> None:
    from PIL import Image

    with pytest.raises(NasforgeError, match=r"missing folder .*images"):
        load_dense_dataset("masks", "segmentation", data_dir=tmp_path)
    root = _masks(tmp_path)
    (root / "masks" / "p2.png").unlink()
    with pytest.raises(NasforgeError, match=r"missing .*masks/p2\.png \(the mask of"):
        load_dense_dataset("masks", "segmentation", data_dir=root)
    _image(root / "masks" / "p2.png", mode="RGB")
    with pytest.raises(NasforgeError, match=r"p2\.png has mode RGB; expected a single-channel PNG"):
        load_dense_dataset("masks", "segmentation", data_dir=root)
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(root / "masks" / "p2.png")
    with pytest.raises(NasforgeError, match=r"p2\.png is 8x8 but its image .* is 40x30"):
        load_dense_dataset("masks", "segmentation", data_dir=root)
