"""The dense training estimator: train each candidate from scratch for segmentation or detection.

The same contract and knobs as ``TrainingEstimator`` (budget, optimiser, cosine schedule, seed, rungs for
multi-fidelity, failures as ``Result.failure``, the caller's RNG untouched), with the task's loss and metric:

- segmentation: per-pixel cross-entropy; reward = validation mean IoU (background included, VOC convention);
- detection: the FCOS loss (``_fcos``); reward = validation COCO mAP@0.5 by pycocotools (mAP@[.5:.95] reported).

The networks follow the dense contract (HELPERS/DESIGN): a segmentation net gives ``(N, K, H, W)`` logits (other
sizes are resized bilinearly to the masks), a detection net a tuple of per-level ``(N, K + 5, h, w)`` maps and a
``strides`` attribute.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.data import DenseDataset, DenseSplit
from nasforge.errors import NasforgeError
from nasforge.estimators._base import Result
from nasforge.estimators._dense_metrics import Detections, coco_map, confusion, iou_scores
from nasforge.estimators._fcos import FcosSettings, decode, fcos_loss
from nasforge.estimators._train import RungCallback, TrainingEstimator, _deterministic_kernels, _NonFinite
from nasforge.spaces import Architecture, SearchSpace

#: the reward's metric name per task (a fraction, higher is better)
REWARD_METRIC = {"segmentation": "miou", "detection": "map50"}


@dataclass(frozen=True)
class _DenseRun:
    model: nn.Module
    scores: dict[str, Any]
    train_loss: float
    epochs: int
    images_per_s: float
    train_seconds: float
    train_cpu_seconds: float
    stopped: str | None


def strides_of(model: nn.Module) -> tuple[int, ...]:
    strides = getattr(model, "strides", None)
    if not strides:
        raise NasforgeError(f"{type(model).__name__} has no 'strides' attribute: a detection network must say the "
                            "stride of each output level (the dense contract)")
    return tuple(int(s) for s in strides)


class DenseTrainingEstimator(TrainingEstimator):
    """Trains each architecture on a ``DenseDataset`` (its ``task`` picks loss and metric); reward = val mIoU or
    mAP@0.5. ``fcos`` tunes detection's target assignment and decoding (``FcosSettings``).

    ``evaluate`` returns ``Result(reward, metrics={val_<metric>..., train_loss, epochs, images_per_s,
    train_seconds, train_cpu_seconds, params}, cost=...)``; ``final_evaluate`` adds the test split's figures
    (``test_<metric>``) and the per-class ones (``per_class``: class name -> IoU or AP@0.5) to its returned
    metrics dict.
    """

    def __init__(self, space: SearchSpace, dataset: DenseDataset, epochs: int = 5, batch_size: int = 32,
                 fcos: FcosSettings | None = None, optimizer: str = "adamw", **options: Any) -> None:
        if not isinstance(dataset, DenseDataset):
            raise NasforgeError(f"the dense estimator needs a DenseDataset, got {type(dataset).__name__}")
        options.setdefault("weight_decay", 1e-4)
        super().__init__(space, dataset, epochs=epochs, batch_size=batch_size, optimizer=optimizer,  # type: ignore[arg-type]
                         **options)
        self.dense: DenseDataset = dataset
        self.task = dataset.task
        self.fcos = fcos or FcosSettings()
        self._dense_cache: dict[tuple[int, int, int], DenseDataset] = {}
        self._strides: tuple[int, ...] = ()

    # -- the Estimator contract ----------------------------------------------------------------------
    def evaluate(self, arch: Architecture, epochs: int | None = None, *, rungs: Collection[int] = (),
                 on_rung: RungCallback | None = None) -> Result:
        start = time.perf_counter()
        try:
            run = self._train_dense(arch, self.epochs if epochs is None else epochs, set(rungs), on_rung)
            metrics, stopped = self._dense_metrics(run, "val"), run.stopped
            del run
        except Exception as e:
            self._release()
            return Result.failure(self._explain(e), seconds=time.perf_counter() - start)
        cost = self._cost(arch)
        seconds = time.perf_counter() - start
        if stopped is not None:
            return Result(None, metrics, cost, seconds, "pruned", stopped)
        return Result(metrics["val_" + REWARD_METRIC[self.task]], metrics, cost, seconds)

    def final_evaluate(self, arch: Architecture, epochs: int | None = None, *, on_step: Any = None,
                       on_epoch: Any = None) -> tuple[Result, nn.Module | None]:
        """Train ``arch``, also score the test split; the module comes back on the CPU in eval mode (the progress
        callbacks of the classification estimator are accepted and not called)."""
        start = time.perf_counter()
        try:
            run = self._train_dense(arch, self.epochs if epochs is None else epochs, set(), None)
            data = self._dense_for(self._input_shape(arch))
            test = self.score(run.model, data.test)
            metrics: dict[str, Any] = self._dense_metrics(run, "val")
            metrics.update({f"test_{k}": v for k, v in test.items() if k != "per_class"})
            metrics["per_class"] = test["per_class"]
            metrics["val_per_class"] = run.scores["per_class"]
            model = run.model.to("cpu").eval()
            if self.channels_last:
                model = model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
        except Exception as e:
            self._release()
            return Result.failure(self._explain(e), seconds=time.perf_counter() - start), None
        reward = metrics["val_" + REWARD_METRIC[self.task]]
        return Result(reward, metrics, self._cost(arch), time.perf_counter() - start), model

    # -- data ------------------------------------------------------------------------------------------
    def _dense_for(self, shape: tuple[int, int, int]) -> DenseDataset:
        if shape not in self._dense_cache:
            ds = self.dense.with_channels(shape[0]).resized((shape[1], shape[2]))
            dev = self.device

            def put(s: DenseSplit) -> DenseSplit:
                return DenseSplit(s.x.to(dev), None if s.masks is None else s.masks.to(dev), s.boxes, s.labels,
                                  s.sources)

            from dataclasses import replace

            self._dense_cache = {shape: replace(ds, train=put(ds.train), val=put(ds.val), test=put(ds.test))}
        return self._dense_cache[shape]

    # -- loss and scores ---------------------------------------------------------------------------------
    def loss(self, out: Any, split: DenseSplit, idx: torch.Tensor) -> torch.Tensor:
        """The task's training loss of a batch's outputs (``idx``: the batch's rows of ``split``)."""
        if self.task == "segmentation":
            assert split.masks is not None
            target = split.masks[idx]
            if out.shape[-2:] != target.shape[-2:]:
                out = F.interpolate(out, size=target.shape[-2:], mode="bilinear", align_corners=False)
            return F.cross_entropy(out, target)
        rows = idx.tolist()
        return fcos_loss(out, self._strides, [split.boxes[i] for i in rows], [split.labels[i] for i in rows],
                         self.num_classes, self.fcos)

    @torch.inference_mode()
    def predict(self, model: nn.Module, x: torch.Tensor) -> list[Any]:
        """Per image: the predicted class-id mask (segmentation) or ``Detections`` (detection), eval mode."""
        model.eval()
        out: list[Any] = []
        h, w = int(x.shape[2]), int(x.shape[3])
        for i in range(0, int(x.shape[0]), self.eval_batch_size):
            y = model(x[i:i + self.eval_batch_size])
            if self.task == "segmentation":
                if y.shape[-2:] != (h, w):
                    y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
                out.extend(y.argmax(1).cpu())
            else:
                out.extend(decode(y, strides_of(model), self.num_classes, (h, w), self.fcos))
        return out

    def score(self, model: nn.Module, split: DenseSplit) -> dict[str, Any]:
        """The task's figures on a split: miou, miou_fg, pixel_acc or map50, map; plus per_class (name -> value)."""
        names = self.dense.class_names
        preds = self.predict(model, split.x)
        if self.task == "segmentation":
            assert split.masks is not None
            conf = torch.zeros((self.num_classes, self.num_classes), dtype=torch.long)
            for p, m in zip(preds, split.masks.cpu(), strict=True):
                conf += confusion(p, m, self.num_classes)
            s = iou_scores(conf)
            return {"miou": s.miou, "miou_fg": s.miou_fg, "pixel_acc": s.pixel_acc,
                    "per_class": {names[k]: v for k, v in sorted(s.per_class.items())}}
        dets: Sequence[Detections] = preds
        m = coco_map(dets, split.boxes, split.labels, self.num_classes, tuple(split.x.shape[2:]))  # type: ignore[arg-type]
        return {"map50": m.map50, "map": m.map, "per_class": {names[k]: v for k, v in sorted(m.per_class50.items())}}

    # -- training -------------------------------------------------------------------------------------------
    def _train_dense(self, arch: Architecture, epochs: int, rungs: set[int], on_rung: RungCallback | None
                     ) -> _DenseRun:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise NasforgeError(f"epochs must be a positive integer, got {epochs!r}")
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        data = self._dense_for(self._input_shape(arch))
        tr = data.train
        cuda = self.device.type == "cuda"
        fork_devices = [self.device.index or 0] if cuda else []
        with torch.random.fork_rng(devices=fork_devices), _deterministic_kernels(self.deterministic and cuda):
            torch.manual_seed(self.seed)
            model = self.build(arch).to(self.device)
            if self.task == "detection":
                self._strides = strides_of(model)
            if self.channels_last:
                model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            opt = self._make_optimizer(model)
            gen = torch.Generator().manual_seed(self.seed)
            n = len(tr)
            bs = min(self.batch_size, n)
            steps = n // bs
            total = steps * epochs
            step = 0
            train_time = cpu_time = 0.0
            loss_value = math.nan
            stopped: str | None = None
            scores: dict[str, Any] | None = None
            done = 0
            metric = REWARD_METRIC[self.task]
            for epoch in range(1, epochs + 1):
                t0, c0 = time.perf_counter(), time.process_time()
                model.train()
                perm = torch.randperm(n, generator=gen)
                loss_sum = torch.zeros((), device=self.device)
                for i in range(steps):
                    if self.schedule == "cosine":
                        lr = 0.5 * self.lr * (1.0 + math.cos(math.pi * step / total))
                        for g in opt.param_groups:
                            g["lr"] = lr
                    idx = perm[i * bs:(i + 1) * bs]
                    xb = tr.x[idx.to(self.device)]
                    if self.channels_last:
                        xb = xb.contiguous(memory_format=torch.channels_last)
                    loss = self.loss(model(xb), tr, idx.to(self.device) if self.task == "segmentation" else idx)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
                    opt.step()
                    loss_sum += loss.detach()
                    step += 1
                loss_value = float(loss_sum) / steps
                train_time += time.perf_counter() - t0
                cpu_time += time.process_time() - c0
                done = epoch
                if not math.isfinite(loss_value):
                    raise _NonFinite(f"training loss is {loss_value} at epoch {epoch}")
                if on_rung is not None and epoch in rungs and epoch < epochs:
                    scores = self.score(model, data.val)
                    stopped = on_rung(epoch, float(scores[metric]))
                    if stopped is not None:
                        break
            if stopped is None:
                scores = self.score(model, data.val)
        assert scores is not None
        return _DenseRun(model, scores, loss_value, done, steps * bs * done / max(train_time, 1e-9), train_time,
                         cpu_time, stopped)

    def _dense_metrics(self, run: _DenseRun, split: str) -> dict[str, Any]:
        params = sum(p.numel() for p in run.model.parameters())
        out: dict[str, Any] = {f"{split}_{k}": float(v) for k, v in run.scores.items() if k != "per_class"}
        out.update({"train_loss": run.train_loss, "epochs": float(run.epochs), "images_per_s": run.images_per_s,
                    "train_seconds": run.train_seconds, "train_cpu_seconds": run.train_cpu_seconds,
                    "params": float(params)})
        return out
