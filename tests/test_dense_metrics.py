"""Dense metrics and the FCOS pieces: mIoU against scikit-learn, mAP (pycocotools) on hand-made cases, target
assignment, decoding and NMS (a network output built from the targets decodes back to the boxes: mAP 1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nasforge.estimators._dense_metrics import Detections, coco_map, confusion, iou_scores, mean_iou
from nasforge.estimators._fcos import (
    FcosSettings,
    assign,
    box_iou,
    decode,
    fcos_loss,
    level_ranges,
    locations,
    nms,
)


def test_miou_agrees_with_sklearn_and_its_edge_cases() -> None:
    from sklearn.metrics import jaccard_score

    rng = np.random.default_rng(0)
    target = torch.as_tensor(rng.integers(0, 4, (3, 16, 16)))
    pred = torch.where(torch.as_tensor(rng.random((3, 16, 16)) < 0.6), target, torch.as_tensor(
        rng.integers(0, 4, (3, 16, 16))))
    want = jaccard_score(target.flatten().numpy(), pred.flatten().numpy(), average="macro")
    assert mean_iou(pred, target, 4) == pytest.approx(want)
    assert mean_iou(target, target, 4) == 1.0  # perfect
    s = iou_scores(confusion(torch.zeros_like(target), target, 4))  # an empty (all background) prediction
    assert s.miou_fg == 0.0 and s.per_class[0] == pytest.approx(float((target == 0).float().mean()))
    assert iou_scores(confusion((target + 1) % 4, target, 4)).miou == 0.0  # every pixel wrong


def _one(boxes: list[list[float]], labels: list[int], scores: list[float] | None = None) -> Detections:
    return Detections(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                      torch.tensor(scores or [0.9] * len(boxes)), torch.tensor(labels, dtype=torch.long))


def test_map_on_hand_made_cases() -> None:
    gt_b = [torch.tensor([[2.0, 2, 12, 12], [20, 20, 40, 30]]), torch.tensor([[5.0, 5, 25, 25]])]
    gt_l = [torch.tensor([0, 1]), torch.tensor([1])]
    perfect = [_one(b.tolist(), lab.tolist()) for b, lab in zip(gt_b, gt_l, strict=True)]
    m = coco_map(perfect, gt_b, gt_l, 2, (48, 48))
    assert m.map50 == 1.0 and m.map == 1.0 and m.per_class50 == pytest.approx({0: 1.0, 1: 1.0})
    empty = [_one([], []), _one([], [])]
    m = coco_map(empty, gt_b, gt_l, 2)
    assert m.map50 == 0.0 and m.map == 0.0 and m.per_class50 == {0: 0.0, 1: 0.0}
    # class 1: one of its two objects found (recall 0.5 at precision 1): 101-point AP = 51/101; class 0 found
    half = [_one([[2.0, 2, 12, 12]], [0]), _one([[5.0, 5, 25, 25]], [1])]
    m = coco_map(half, gt_b, gt_l, 2)
    assert m.per_class50 == pytest.approx({0: 1.0, 1: 51 / 101})
    assert m.map50 == pytest.approx((1 + 51 / 101) / 2)
    # a box shifted to IoU 1/3 counts at no threshold; a wrong class counts for nothing
    off = [_one([[7.0, 2, 17, 12], [20, 20, 40, 30]], [0, 0]), _one([[5.0, 5, 25, 25]], [1])]
    assert coco_map(off, gt_b, gt_l, 2).per_class50 == pytest.approx({0: 0.0, 1: 51 / 101})


def test_nms_and_box_iou() -> None:
    b = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    assert box_iou(b[:1], b[2:3]).item() == 0.0 and box_iou(b[:1], b[3:]).item() == 1.0
    keep = nms(b, torch.tensor([0.5, 0.9, 0.3, 0.1]), 0.5)
    assert keep.tolist() == [1, 2]


def test_assignment_puts_objects_on_levels_by_size() -> None:
    strides = (8, 16)
    pts, st, lv = locations([(8, 8), (4, 4)], strides)
    ranges = level_ranges(strides, 4.0)
    assert ranges == [(0.0, 32.0), (32.0, math.inf)]
    boxes = torch.tensor([[4.0, 4, 20, 20], [0, 0, 64, 64]])
    cls, ltrb = assign(pts, st, lv, boxes, torch.tensor([3, 5]), ranges, 1.5)
    small = (cls == 3).nonzero().flatten()
    big = (cls == 5).nonzero().flatten()
    assert len(small) and len(big)
    assert (lv[small] == 0).all() and (lv[big] == 1).all()
    p = pts[small[0]]
    assert torch.allclose(ltrb[small[0]], torch.stack([p[0] - 4, p[1] - 4, 20 - p[0], 20 - p[1]]))


def _perfect_outputs(boxes: list[torch.Tensor], labels: list[torch.Tensor], k: int, strides: tuple[int, ...],
                     shapes: list[tuple[int, int]]) -> tuple[torch.Tensor, ...]:
    """Network outputs that say exactly the targets: +-10 logits, raw = log(distance / stride)."""
    pts, st, lv = locations(shapes, strides)
    ranges = level_ranges(strides, FcosSettings().level_scale)
    flat = torch.full((len(boxes), len(pts), k + 5), -10.0)
    for i, (b, lab) in enumerate(zip(boxes, labels, strict=True)):
        cls, ltrb = assign(pts, st, lv, b, lab, ranges, 1.5)
        pos = cls >= 0
        flat[i, pos, cls[pos]] = 10.0
        flat[i, pos, k:k + 4] = torch.log(ltrb[pos] / st[pos, None])
        flat[i, pos, k + 4] = 10.0
    out, start = [], 0
    for h, w in shapes:
        out.append(flat[:, start:start + h * w].reshape(len(boxes), h, w, k + 5).permute(0, 3, 1, 2).contiguous())
        start += h * w
    return tuple(out)


def test_outputs_that_say_the_targets_decode_to_them_and_score_map_one() -> None:
    strides, shapes, k = (8, 16), [(8, 8), (4, 4)], 3
    boxes = [torch.tensor([[4.0, 4, 20, 20], [30, 30, 62, 62]]), torch.tensor([[10.0, 40, 24, 60]])]
    labels = [torch.tensor([0, 2]), torch.tensor([1])]
    outs = _perfect_outputs(boxes, labels, k, strides, shapes)
    dets = decode(outs, strides, k, (64, 64))
    assert [len(d.boxes) for d in dets] == [2, 1]  # NMS leaves one box per object
    assert coco_map(dets, boxes, labels, k).map == pytest.approx(1.0)
    # and their loss is lower than that of outputs saying nothing
    zero = tuple(torch.zeros_like(o) for o in outs)
    assert fcos_loss(outs, strides, boxes, labels, k) < fcos_loss(zero, strides, boxes, labels, k)


@pytest.mark.slow  # 30 training steps
def test_fcos_loss_trains_a_tiny_net() -> None:
    """Gradient steps on one batch lower the loss (the loss is differentiable end to end, no NaN)."""
    torch.manual_seed(0)
    from dense_toy import TinyDet

    net = TinyDet(1, 3, 8)
    x = torch.randn(4, 1, 32, 32)
    boxes = [torch.tensor([[4.0, 4, 20, 20]])] * 4
    labels = [torch.tensor([1])] * 4
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    first = None
    for _ in range(30):
        loss = fcos_loss(net(x), net.strides, boxes, labels, 3)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert math.isfinite(float(loss.detach())) and float(loss.detach()) < 0.5 * first
