"""Dense metrics: mean IoU of class masks (a confusion matrix) and COCO mAP of boxes (pycocotools).

mIoU follows the PASCAL VOC convention: the IoU of each class that occurs in the ground truth or the prediction,
averaged, background (class 0) included; ``miou_fg`` averages the object classes only (an all-background
prediction scores 0 there). mAP is pycocotools' COCOeval on boxes (area range all, 100 detections per image):
``map50`` = AP at IoU 0.5, ``map`` = AP averaged over IoU 0.5:0.95; an image set with no detections scores 0.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


def confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) int64 counts, rows = target class, columns = predicted class."""
    t = target.reshape(-1).long()
    p = pred.reshape(-1).long()
    ok = (t >= 0) & (t < num_classes)
    return torch.bincount(t[ok] * num_classes + p[ok], minlength=num_classes ** 2).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class IoUScores:
    miou: float
    miou_fg: float
    pixel_acc: float
    per_class: dict[int, float]  # class id -> IoU, for classes present in target or prediction


def iou_scores(conf: torch.Tensor) -> IoUScores:
    """mIoU (background included), object-class mIoU and pixel accuracy of a confusion matrix."""
    c = conf.double()
    tp = c.diag()
    union = c.sum(0) + c.sum(1) - tp
    present = union > 0
    iou = torch.where(present, tp / union.clamp_min(1), torch.zeros_like(tp))
    per = {int(k): float(iou[k]) for k in torch.nonzero(present).flatten()}
    fg = [v for k, v in per.items() if k != 0]
    total = float(c.sum())
    return IoUScores(float(np.mean(list(per.values()))) if per else 0.0, float(np.mean(fg)) if fg else 0.0,
                     float(tp.sum()) / total if total else 0.0, per)


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> float:
    """mIoU of predicted class ids against target class ids (any equal shapes)."""
    return iou_scores(confusion(pred, target, num_classes)).miou


@dataclass(frozen=True)
class Detections:
    """One image's detections: boxes (k, 4) xyxy pixels, scores (k,), labels (k,) object classes."""

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor


@dataclass(frozen=True)
class MapScores:
    map50: float
    map: float
    per_class50: dict[int, float] = field(default_factory=dict)  # class -> AP@0.5 (classes with ground truth)


def coco_map(detections: Sequence[Detections], gt_boxes: Sequence[torch.Tensor], gt_labels: Sequence[torch.Tensor],
             num_classes: int, image_size: tuple[int, int] | None = None) -> MapScores:
    """COCO box mAP of ``detections`` against ground truth (one entry per image) with pycocotools."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(detections) != len(gt_boxes) or len(gt_boxes) != len(gt_labels):
        raise ValueError(f"{len(detections)} detection sets for {len(gt_boxes)} images")
    h, w = image_size or (0, 0)
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    dets: list[dict[str, Any]] = []
    for i, (b, lab) in enumerate(zip(gt_boxes, gt_labels, strict=True)):
        images.append({"id": i + 1, "width": int(w), "height": int(h)})
        for box, c in zip(b.tolist(), lab.tolist(), strict=True):
            bw, bh = box[2] - box[0], box[3] - box[1]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(c) + 1,
                         "bbox": [box[0], box[1], bw, bh], "area": bw * bh, "iscrowd": 0})
    for i, d in enumerate(detections):
        for box, s, c in zip(d.boxes.tolist(), d.scores.tolist(), d.labels.tolist(), strict=True):
            dets.append({"image_id": i + 1, "category_id": int(c) + 1, "score": float(s),
                         "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    if not anns:
        return MapScores(0.0, 0.0, {})
    if not dets:  # nothing detected: every class with ground truth scores 0
        return MapScores(0.0, 0.0, {int(a["category_id"]) - 1: 0.0 for a in anns})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns,
                      "categories": [{"id": k + 1, "name": str(k)} for k in range(num_classes)]}
        gt.createIndex()
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"]  # (iou thresholds, recall points, classes, area ranges, max dets)
    per: dict[int, float] = {}
    for k, cat in enumerate(ev.params.catIds):
        p = prec[0, :, k, 0, -1]
        p = p[p > -1]
        if p.size:
            per[int(cat) - 1] = float(p.mean())
    return MapScores(max(0.0, float(ev.stats[1])), max(0.0, float(ev.stats[0])), per)
