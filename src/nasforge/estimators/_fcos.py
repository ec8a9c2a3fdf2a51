"""FCOS-style anchor-free detection: targets, loss, decoding and NMS for the dense contract's outputs.

Why FCOS rather than CenterNet: the contract's networks give a pyramid (one output per level), and FCOS assigns
each object to one level by its size, so every pyramid level is trained, which is what a searched neck (NAS-FPN)
must be judged on; CenterNet predicts from one stride-4 map.

Each level ``i`` is ``(N, K + 5, H // s_i, W // s_i)``: ``K`` class logits (sigmoid), 4 raw distances (distance in
pixels = ``exp(raw) * s_i``, left/top/right/bottom from the location) and a centerness logit. Locations sit at the
cell centres ``((x + 0.5) s_i, (y + 0.5) s_i)``.

Target assignment (FCOS with centre sampling): a location is a candidate of an object when it lies inside the
object's box and within ``center_radius * s_i`` of the box centre, and the largest of its four distances falls in
the level's range; ranges split at ``level_scale * s_i`` (FCOS uses 8 * s_i for 800 px images; the small
canvases here default to 4). A location with several candidates takes the smallest box. Loss: sigmoid focal loss
(alpha 0.25, gamma 2) over all locations / positives, GIoU loss of the boxes weighted by the centerness target,
and centerness BCE on positives. Decoding: score = sqrt(class prob * centerness), the top ``pre_nms`` per level and
then over all levels of those above ``score_threshold``, class-wise NMS at ``nms_iou``, at most ``max_detections``
per image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from nasforge.estimators._dense_metrics import Detections

MAX_RAW = 8.0  # raw distances are clamped before exp: exp(8) * stride is far beyond any image


@dataclass(frozen=True)
class FcosSettings:
    level_scale: float = 4.0
    center_radius: float = 1.5
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    score_threshold: float = 0.05
    pre_nms: int = 100
    nms_iou: float = 0.6
    max_detections: int = 100


def locations(shapes: Sequence[tuple[int, int]], strides: Sequence[int], device: torch.device | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All levels' locations flattened: points (P, 2) xy pixels, their stride (P,) and level index (P,)."""
    pts, st, lv = [], [], []
    for i, ((h, w), s) in enumerate(zip(shapes, strides, strict=True)):
        ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                                torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
        p = torch.stack([(xs.reshape(-1) + 0.5) * s, (ys.reshape(-1) + 0.5) * s], 1)
        pts.append(p)
        st.append(torch.full((h * w,), float(s), device=device))
        lv.append(torch.full((h * w,), i, device=device, dtype=torch.long))
    return torch.cat(pts), torch.cat(st), torch.cat(lv)


def level_ranges(strides: Sequence[int], level_scale: float) -> list[tuple[float, float]]:
    """(low, high] of the largest distance each level regresses."""
    bounds = [0.0, *(level_scale * s for s in strides[:-1]), math.inf]
    return [(bounds[i], bounds[i + 1]) for i in range(len(strides))]


def assign(points: torch.Tensor, strides: torch.Tensor, levels: torch.Tensor, boxes: torch.Tensor,
           labels: torch.Tensor, ranges: Sequence[tuple[float, float]], center_radius: float
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's targets: class per location (P,) (-1 = background) and box distances (P, 4) ltrb pixels."""
    p = points.shape[0]
    if boxes.numel() == 0:
        return torch.full((p,), -1, dtype=torch.long, device=points.device), points.new_zeros((p, 4))
    x, y = points[:, 0:1], points[:, 1:2]
    ltrb = torch.stack([x - boxes[:, 0], y - boxes[:, 1], boxes[:, 2] - x, boxes[:, 3] - y], 2)  # (P, k, 4)
    inside = ltrb.min(2).values > 0
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    r = strides[:, None] * center_radius
    near = ((x - cx).abs() < r) & ((y - cy).abs() < r)
    lo = torch.tensor([a for a, _ in ranges], device=points.device)[levels][:, None]
    hi = torch.tensor([b for _, b in ranges], device=points.device)[levels][:, None]
    m = ltrb.max(2).values
    ok = inside & near & (m > lo) & (m <= hi)
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[None].expand(p, -1)
    area = torch.where(ok, area, torch.full_like(area, math.inf))
    best_area, best = area.min(1)
    cls = torch.where(torch.isfinite(best_area), labels[best], torch.full_like(best, -1))
    return cls, ltrb[torch.arange(p, device=points.device), best]


def centerness(ltrb: torch.Tensor) -> torch.Tensor:
    lr, tb = ltrb[:, [0, 2]], ltrb[:, [1, 3]]
    return torch.sqrt((lr.min(1).values / lr.max(1).values.clamp_min(1e-6)).clamp_min(0)
                      * (tb.min(1).values / tb.max(1).values.clamp_min(1e-6)).clamp_min(0))


def giou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - GIoU of boxes given as ltrb distances around the same point (both (P, 4), positive)."""
    pa = (pred[:, 0] + pred[:, 2]) * (pred[:, 1] + pred[:, 3])
    ta = (target[:, 0] + target[:, 2]) * (target[:, 1] + target[:, 3])
    wi = torch.min(pred[:, 0], target[:, 0]) + torch.min(pred[:, 2], target[:, 2])
    hi = torch.min(pred[:, 1], target[:, 1]) + torch.min(pred[:, 3], target[:, 3])
    inter = wi.clamp_min(0) * hi.clamp_min(0)
    union = pa + ta - inter
    iou = inter / union.clamp_min(1e-6)
    we = torch.max(pred[:, 0], target[:, 0]) + torch.max(pred[:, 2], target[:, 2])
    he = torch.max(pred[:, 1], target[:, 1]) + torch.max(pred[:, 3], target[:, 3])
    enclose = (we * he).clamp_min(1e-6)
    return 1 - (iou - (enclose - union) / enclose)


def _flatten(outputs: Sequence[torch.Tensor], num_classes: int) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """(N, P, K + 5) of all levels and the levels' (h, w)."""
    flat, shapes = [], []
    for o in outputs:
        if o.dim() != 4 or o.shape[1] != num_classes + 5:
            raise ValueError(f"a detection level must be (N, {num_classes + 5}, h, w), got {tuple(o.shape)}")
        shapes.append((int(o.shape[2]), int(o.shape[3])))
        flat.append(o.permute(0, 2, 3, 1).reshape(o.shape[0], -1, num_classes + 5))
    return torch.cat(flat, 1), shapes


def fcos_loss(outputs: Sequence[torch.Tensor], strides: Sequence[int], boxes: Sequence[torch.Tensor],
              labels: Sequence[torch.Tensor], num_classes: int, settings: FcosSettings = FcosSettings()
              ) -> torch.Tensor:
    """Focal + GIoU + centerness loss of one batch (scalar)."""
    if len(outputs) != len(strides):
        raise ValueError(f"{len(outputs)} output levels but {len(strides)} strides")
    flat, shapes = _flatten(outputs, num_classes)
    dev = flat.device
    pts, st, lv = locations(shapes, strides, dev)
    ranges = level_ranges(strides, settings.level_scale)
    cls_t, reg_t = zip(*(assign(pts, st, lv, b.to(dev), lab.to(dev), ranges, settings.center_radius)
                         for b, lab in zip(boxes, labels, strict=True)), strict=True)
    cls_target = torch.stack(cls_t)  # (N, P)
    reg_target = torch.stack(reg_t)  # (N, P, 4)
    pos = cls_target >= 0
    num_pos = max(1.0, float(pos.sum()))
    onehot = torch.zeros_like(flat[..., :num_classes])
    onehot[pos, cls_target[pos]] = 1.0
    logits = flat[..., :num_classes]
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, onehot, reduction="none")
    p_t = prob * onehot + (1 - prob) * (1 - onehot)
    a_t = settings.focal_alpha * onehot + (1 - settings.focal_alpha) * (1 - onehot)
    cls_loss = (a_t * (1 - p_t) ** settings.focal_gamma * ce).sum() / num_pos
    if not bool(pos.any()):
        return cls_loss + 0.0 * flat.sum()
    stride_pos = st[None].expand(pos.shape[0], -1)[pos]
    pred = torch.exp(flat[..., num_classes:num_classes + 4][pos].clamp(max=MAX_RAW)) * stride_pos[:, None]
    tgt = reg_target[pos]
    ctr_t = centerness(tgt)
    reg_loss = (giou_loss(pred, tgt) * ctr_t).sum() / ctr_t.sum().clamp_min(1e-6)
    ctr_loss = F.binary_cross_entropy_with_logits(flat[..., num_classes + 4][pos], ctr_t, reduction="sum") / num_pos
    return cls_loss + reg_loss + ctr_loss


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(len(a), len(b)) IoU of xyxy boxes."""
    area_a = (a[:, 2] - a[:, 0]).clamp_min(0) * (a[:, 3] - a[:, 1]).clamp_min(0)
    area_b = (b[:, 2] - b[:, 0]).clamp_min(0) * (b[:, 3] - b[:, 1]).clamp_min(0)
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp_min(0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None] - inter).clamp_min(1e-9)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes kept by greedy non-maximum suppression, highest score first (torch only)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = scores.argsort(descending=True)
    over = (box_iou(boxes[order], boxes[order]) > iou_threshold).cpu().numpy()
    removed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if removed[i]:
            continue
        keep.append(i)
        removed |= over[i]
    return order[torch.as_tensor(keep, dtype=torch.long, device=order.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float
                ) -> torch.Tensor:
    """NMS within each class (boxes of different classes never suppress each other)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    offset = labels.to(boxes.dtype)[:, None] * (boxes.max() + 1)
    return nms(boxes + offset, scores, iou_threshold)


@torch.no_grad()
def decode(outputs: Sequence[torch.Tensor], strides: Sequence[int], num_classes: int,
           image_size: tuple[int, int], settings: FcosSettings = FcosSettings()) -> list[Detections]:
    """Per image: the boxes, scores and classes of the network's outputs after thresholds and NMS."""
    h_img, w_img = image_size
    n = int(outputs[0].shape[0])
    per_image: list[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = [[] for _ in range(n)]
    for o, s in zip(outputs, strides, strict=True):
        k = num_classes
        _, _, h, w = o.shape
        pts, _, _ = locations([(int(h), int(w))], [s], o.device)
        flat = o.permute(0, 2, 3, 1).reshape(n, -1, k + 5).float()
        score = torch.sqrt(flat[..., :k].sigmoid() * flat[..., k + 4:k + 5].sigmoid())  # (N, P, K)
        cls_prob = flat[..., :k].sigmoid()
        dist = torch.exp(flat[..., k:k + 4].clamp(max=MAX_RAW)) * s
        for i in range(n):
            cand = cls_prob[i] > settings.score_threshold
            sc = score[i][cand]
            loc, lab = torch.nonzero(cand, as_tuple=True)
            if sc.numel() > settings.pre_nms:
                top = sc.topk(settings.pre_nms).indices
                sc, loc, lab = sc[top], loc[top], lab[top]
            d, p = dist[i][loc], pts[loc]
            bx = torch.stack([(p[:, 0] - d[:, 0]).clamp(0, w_img), (p[:, 1] - d[:, 1]).clamp(0, h_img),
                              (p[:, 0] + d[:, 2]).clamp(0, w_img), (p[:, 1] + d[:, 3]).clamp(0, h_img)], 1)
            per_image[i].append((bx, sc, lab))
    out = []
    for parts in per_image:
        bx = torch.cat([b for b, _, _ in parts])
        sc = torch.cat([s for _, s, _ in parts])
        lab = torch.cat([c for _, _, c in parts])
        if len(sc) > settings.pre_nms:  # the best over all levels
            top = sc.topk(settings.pre_nms).indices
            bx, sc, lab = bx[top], sc[top], lab[top]
        keep = batched_nms(bx, sc, lab, settings.nms_iou)[:settings.max_detections]
        out.append(Detections(bx[keep].cpu(), sc[keep].cpu(), lab[keep].cpu()))
    return out
