"""A user's dense data in the ecosystem's formats, read with Pillow; nothing in the files is executed.

- ``coco``: ``DIR/annotations.json`` (COCO: ``images`` with ``id``/``file_name``, ``annotations`` with
  ``image_id``/``category_id``/``bbox`` = [x, y, width, height] in pixels, ``categories`` with ``id``/``name``) and
  the images in ``DIR/images/``. Crowd annotations are left out. Detection only (boxes).
- ``masks``: ``DIR/images/NAME.{png,jpg,jpeg,bmp}`` and ``DIR/masks/NAME.png`` (one class id per pixel, 0 =
  background, single channel). Segmentation only.

Images become RGB, resized to ``image_size`` x ``image_size`` (boxes scaled, masks by nearest neighbour), and are
split 70 / 15 / 15 % by image with ``seed``. Every problem is one ``NasforgeError`` line naming the path and what
was expected.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.data._dense import DenseDataset, make_dense_dataset
from nasforge.errors import NasforgeError

IMAGE_SIZE = 128
SPLIT = (0.7, 0.15, 0.15)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
BOX_SLACK = 1.0  # pixels a box may reach past the image border (rounding in exported annotations)


def _open_image(path: Path, mode: str, what: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise NasforgeError(f"{what}: missing {path}")
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert(mode) if mode else im.copy()
    except (OSError, UnidentifiedImageError) as e:
        raise NasforgeError(f"{what}: cannot read {path} as an image ({type(e).__name__}: {e})") from None


def _rgb(path: Path, size: int, what: str) -> tuple[np.ndarray, tuple[int, int]]:
    """(3, size, size) float32 in [0, 1] and the original (width, height)."""
    from PIL import Image

    im = _open_image(path, "RGB", what)
    wh = im.size
    arr = np.asarray(im.resize((size, size), Image.Resampling.BILINEAR), np.float32) / 255.0
    return arr.transpose(2, 0, 1), wh


def _split(n: int, seed: int, what: str) -> list[np.ndarray]:
    if n < 3:
        raise NasforgeError(f"{what}: {n} image(s); need at least 3 (train, val and test get one each at least)")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * SPLIT[1]))
    n_test = max(1, round(n * SPLIT[2]))
    return [np.sort(perm[n_val + n_test:]), np.sort(perm[:n_val]), np.sort(perm[n_val:n_val + n_test])]


def _check_size(image_size: int) -> None:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise NasforgeError(f"image_size must be an integer >= 8, got {image_size!r}")


# -- COCO ------------------------------------------------------------------------------------------------------


def read_coco(data_dir: str, task: str = "detection", seed: int = 0, image_size: int = IMAGE_SIZE) -> DenseDataset:
    """Boxes of a COCO annotation file and its images (see the module docstring)."""
    _check_size(image_size)
    root = Path(data_dir).expanduser()
    ann_path = root / "annotations.json"
    if not ann_path.is_file():
        raise NasforgeError(f"coco: missing {ann_path} (expected a COCO annotation file with images, annotations "
                            "and categories, and the images in images/)")
    try:
        doc = json.loads(ann_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise NasforgeError(f"coco: {ann_path} is not valid JSON ({e})") from None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "annotations",
                                                                                   "categories")):
        raise NasforgeError(f"coco: {ann_path} must be an object with lists 'images', 'annotations' and "
                            "'categories'")
    cats: dict[int, str] = {}
    for i, c in enumerate(doc["categories"]):
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or isinstance(c.get("id"), bool):
            raise NasforgeError(f"coco: {ann_path} category {i} needs an integer 'id' (and a 'name')")
        cats[c["id"]] = str(c.get("name", c["id"]))
    if not cats:
        raise NasforgeError(f"coco: {ann_path} has no categories")
    cat_index = {cid: k for k, cid in enumerate(sorted(cats))}
    images: dict[int, str] = {}
    for i, im in enumerate(doc["images"]):
        if not isinstance(im, dict) or not isinstance(im.get("id"), int) or not isinstance(im.get("file_name"), str):
            raise NasforgeError(f"coco: {ann_path} image {i} needs an integer 'id' and a string 'file_name'")
        images[im["id"]] = im["file_name"]
    ids = list(images)
    files = [root / "images" / images[i] for i in ids]
    for i, f in zip(ids, files, strict=True):
        if not f.is_file():
            raise NasforgeError(f"coco: image {f} (id {i} in {ann_path}) does not exist (expected the images in "
                                f"{root / 'images'})")
    xs, sizes = [], []
    for f in files:
        x, wh = _rgb(f, image_size, "coco")
        xs.append(x)
        sizes.append(wh)
    row = {i: r for r, i in enumerate(ids)}
    boxes: list[list[list[float]]] = [[] for _ in ids]
    labels: list[list[int]] = [[] for _ in ids]
    for j, a in enumerate(doc["annotations"]):
        where = f"coco: {ann_path} annotation {j}" + (f" (id {a['id']})" if isinstance(a, dict) and "id" in a else "")
        if not isinstance(a, dict):
            raise NasforgeError(f"{where}: expected an object with image_id, category_id and bbox")
        if a.get("image_id") not in row:
            raise NasforgeError(f"{where}: image_id {a.get('image_id')!r} is not among the images")
        if a.get("category_id") not in cat_index:
            raise NasforgeError(f"{where}: category_id {a.get('category_id')!r} is not among the categories "
                                f"({', '.join(map(str, sorted(cats)))})")
        if a.get("iscrowd"):
            continue
        r = row[a["image_id"]]
        w_img, h_img = sizes[r]
        bb = a.get("bbox")
        ok = (isinstance(bb, list) and len(bb) == 4
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bb))
        bx = by = bw = bh = 0.0
        if ok:
            bx, by, bw, bh = (float(v) for v in bb)  # type: ignore[union-attr]
            ok = bw > 0 and bh > 0 and bx >= -BOX_SLACK and by >= -BOX_SLACK and bx + bw <= w_img + BOX_SLACK \
                and by + bh <= h_img + BOX_SLACK
        if not ok:
            raise NasforgeError(f"{where}: bad bbox {bb!r}; expected [x, y, width, height] with width and height > 0 "
                                f"inside the {w_img}x{h_img} image {files[r].name}")
        sx, sy = image_size / w_img, image_size / h_img
        x0, y0 = max(0.0, bx) * sx, max(0.0, by) * sy
        x1, y1 = min(float(w_img), bx + bw) * sx, min(float(h_img), by + bh) * sy
        boxes[r].append([x0, y0, x1, y1])
        labels[r].append(cat_index[a["category_id"]])
    parts = []
    for idx in _split(len(ids), seed, f"coco: {ann_path}"):
        parts.append((np.stack([xs[i] for i in idx]), None,
                      [np.asarray(boxes[i], np.float32).reshape(-1, 4) for i in idx],
                      [np.asarray(labels[i], np.int64) for i in idx], [(int(i),) for i in idx]))
    classes = tuple(cats[c] for c in sorted(cats))
    return make_dense_dataset("coco", task, parts, classes, str(root.resolve()))


# -- masks -----------------------------------------------------------------------------------------------------


def read_masks(data_dir: str, task: str = "segmentation", seed: int = 0,
               image_size: int = IMAGE_SIZE) -> DenseDataset:
    """Images and their class-id masks (see the module docstring)."""
    from PIL import Image

    _check_size(image_size)
    root = Path(data_dir).expanduser()
    img_dir, mask_dir = root / "images", root / "masks"
    for d in (img_dir, mask_dir):
        if not d.is_dir():
            raise NasforgeError(f"masks: missing folder {d} (expected images/ and masks/ with PNG class-id masks of "
                                "the same names)")
    files = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise NasforgeError(f"masks: no images ({', '.join(IMAGE_SUFFIXES)}) in {img_dir}")
    xs, ms = [], []
    for f in files:
        mp = mask_dir / (f.stem + ".png")
        if not mp.is_file():
            raise NasforgeError(f"masks: missing {mp} (the mask of {f}: a PNG of class ids)")
        x, wh = _rgb(f, image_size, "masks")
        m = _open_image(mp, "", "masks")
        if m.mode not in ("L", "P", "I", "I;16"):
            raise NasforgeError(f"masks: {mp} has mode {m.mode}; expected a single-channel PNG of class ids "
                                "(mode L, P or I)")
        if m.size != wh:
            raise NasforgeError(f"masks: {mp} is {m.size[0]}x{m.size[1]} but its image {f} is {wh[0]}x{wh[1]}")
        arr = np.asarray(m.resize((image_size, image_size), Image.Resampling.NEAREST)).astype(np.int64)
        if arr.min() < 0:
            raise NasforgeError(f"masks: {mp} has negative class ids")
        xs.append(x)
        ms.append(arr)
    k = int(max(int(m.max()) for m in ms))
    if k < 1:
        raise NasforgeError(f"masks: every mask in {mask_dir} is all background (0); expected class ids >= 1 too")
    parts = []
    for idx in _split(len(files), seed, f"masks: {root}"):
        parts.append((np.stack([xs[i] for i in idx]), np.stack([ms[i] for i in idx]),
                      [np.zeros((0, 4), np.float32) for _ in idx], [np.zeros(0, np.int64) for _ in idx],
                      [(int(i),) for i in idx]))
    return make_dense_dataset("masks", task, parts, tuple(str(c) for c in range(1, k + 1)), str(root.resolve()))
