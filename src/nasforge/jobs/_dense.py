"""The search job's dense tasks (segmentation, detection): the task option's checks, the data, the estimator and the
final pick's files (``best/``: model.pt, the multi-output ONNX checked with onnxruntime, summary.json with the
metric and per-class figures, predictions.png of a few validation canvases).

``jobs/_search.py`` calls these from one line each, so the classification path stays as it was.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge._files import atomic_dir, atomic_path
from nasforge.errors import NasforgeError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from nasforge.data import DenseDataset
    from nasforge.estimators import DenseTrainingEstimator
    from nasforge.spaces import SearchSpace

DENSE_DEFAULT_DATASET = "multiscale"
METRIC_NAMES = {"segmentation": ("miou", "mean IoU"), "detection": ("map50", "mAP@0.5")}
PREVIEW_IMAGES = 6


DEFAULT_SPACES = {"classification": "mobilenet", "segmentation": "lattice", "detection": "nasfpn"}


def default_space(task: Any) -> str:
    """The space of a task when none is given."""
    from nasforge.spaces import check_task

    return DEFAULT_SPACES[check_task(task)]


def default_dataset(task: Any) -> str:
    """The dataset of a task when none is given: digits for classification, the built-in canvases otherwise."""
    from nasforge.spaces import check_task

    return "digits" if check_task(task) == "classification" else DENSE_DEFAULT_DATASET


def check_task_dataset(task: Any, dataset: str) -> None:
    """One line unless ``task`` is known and ``dataset`` has its targets (class labels, masks or boxes)."""
    from nasforge.data import list_datasets
    from nasforge.data._dense import check_dense_dataset, list_dense_datasets
    from nasforge.spaces import check_task

    if check_task(task) == "classification":
        if dataset in list_dense_datasets():
            raise NasforgeError(f"dataset {dataset!r} holds segmentation/detection targets, not one class per image; "
                                f"with task 'classification' use one of: {', '.join(list_datasets())}")
        return
    check_dense_dataset(dataset, task)


def check_space_serves(space: str, options: dict[str, Any], task: str) -> None:
    """One line unless the space (with the user's options) serves ``task``; cheap, so it runs before the data."""
    from nasforge.spaces import get_space

    sp = get_space(space, **options)
    if task not in sp.tasks:
        raise NasforgeError(f"space {space!r} cannot serve task {task!r} (it serves: {', '.join(sp.tasks)})")


def load_data(cfg: Any) -> DenseDataset:
    """The dense dataset of a search config (its dataset, data_dir, dataset_options, seed, subset and task)."""
    from nasforge.data import load_dense_dataset

    opts = dict(getattr(cfg, "dataset_options", None) or {})
    if "counts" in opts:
        opts["counts"] = tuple(opts["counts"])
    return load_dense_dataset(cfg.dataset, cfg.task, data_dir=cfg.data_dir, seed=cfg.seed, subset=cfg.subset,
                              **opts)


def estimator(space: SearchSpace, data: DenseDataset, cfg: Any, epochs: int | None = None) -> DenseTrainingEstimator:
    """The dense estimator of a search config (adamw unless the user chose another optimizer)."""
    from nasforge.estimators import DenseTrainingEstimator

    opt = cfg.optimizer if cfg.optimizer != "sgd" or cfg.lr is not None else "adamw"
    return DenseTrainingEstimator(space, data, epochs=epochs or cfg.epochs, batch_size=cfg.batch_size,
                                  optimizer=opt, lr=cfg.lr, seed=cfg.seed, cost_precision=cfg.precision)


def export_dense_onnx(module: nn.Module, input_shape: Sequence[int], path: str | Path, atol: float = 1e-4,
                      seed: int = 0) -> float:
    """Write a dense network to ONNX (one output per level for detection, batch axis dynamic) and return the
    largest |onnxruntime - torch| over its outputs on a random batch; over ``atol`` is a ``NasforgeError``."""
    import onnxruntime as ort
    import torch

    module = module.eval()
    x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        want = module(x)
    outs = list(want) if isinstance(want, (tuple, list)) else [want]
    names = [f"level{i}" for i in range(len(outs))] if isinstance(want, (tuple, list)) else ["logits"]
    path = Path(path)
    with atomic_path(path) as tmp, torch.no_grad():
        torch.onnx.export(module, (x,), str(tmp), dynamo=False, input_names=["input"], output_names=names,
                          dynamic_axes={"input": {0: "batch"}, **{n: {0: "batch"} for n in names}})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})
    err = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, outs, strict=True))
    if err > atol:
        raise NasforgeError(f"ONNX check failed: max |onnxruntime - torch| = {err:.2e} > {atol:g}")
    return err


def finalize(prep: Any, arch_text: str) -> dict[str, Any]:
    """Train the best dense architecture for ``final_epochs``; write ``best/`` atomically; return its summary."""
    import torch

    from nasforge.cost import profile

    space, cfg = prep.space, prep.config
    arch = space.parse(arch_text)
    data: DenseDataset = prep.dataset
    if cfg.subset is not None:  # the search ran on a subset; the final pick trains on the whole training split
        from dataclasses import replace

        data = load_data(replace(cfg, subset=None))
    est = estimator(space, data, cfg, epochs=cfg.final_epochs)
    res, model = est.final_evaluate(arch)
    key, label = METRIC_NAMES[cfg.task]
    cost = space.cost(arch, precision=cfg.precision)
    shape = tuple(space.input_shape(arch))
    try:
        layers = profile(space.build(arch, num_classes=data.num_classes), shape, precision=cfg.precision)
        layer_rows = layers.to_dict()["layers"]
    except Exception:  # a network the tracer cannot follow still gets its files; its cost is the analytic one
        layer_rows = []
    m = res.metrics
    summary: dict[str, Any] = {
        "space": space.name, "arch": str(arch), "task": cfg.task, "metric": key, "metric_label": label,
        "status": res.status, "error": res.error,
        "val_metric": m.get(f"val_{key}"), "test_metric": m.get(f"test_{key}"),
        "val": {k[4:]: v for k, v in m.items() if k.startswith("val_") and k != "val_per_class"},
        "test": {k[5:]: v for k, v in m.items() if k.startswith("test_")},
        "per_class": m.get("per_class"), "val_per_class": m.get("val_per_class"),
        "final_epochs": cfg.final_epochs, "train_seconds": round(res.seconds, 2),
        "train_images": len(data.train), "input_shape": list(shape), "num_classes": data.num_classes,
        "classes": list(data.class_names),
        "cost": {k: v for k, v in cost.to_dict(layers=False).items() if k not in ("unknown_ops",)},
        "layers": layer_rows,
        "fits": prep.device.fits(cost) if prep.device is not None else None,
    }
    with atomic_dir(prep.out_dir / "best") as tmp:
        if model is not None:
            torch.save({"state_dict": model.state_dict(), "arch": str(arch), "space": space.name, "task": cfg.task,
                        "space_options": prep.space_options, "input_shape": list(shape),
                        "data_shape": list(data.input_shape), "num_classes": data.num_classes,
                        "classes": list(data.class_names), "mean": list(data.mean), "std": list(data.std)},
                       tmp / "model.pt")
            summary["onnx_max_abs_diff"] = export_dense_onnx(model, shape, tmp / "model.onnx")
            draw_predictions(est, model, data, tmp / "predictions.png")
        if hasattr(space, "graph"):  # spaces with a searchable topology describe it for drawing
            from nasforge.report._dense import draw_graph

            draw_graph(space.graph(arch), tmp / "topology.png", f"{space.name}:{arch}")
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return {k: v for k, v in summary.items() if k != "layers"}


def draw_predictions(est: DenseTrainingEstimator, model: nn.Module, data: DenseDataset, path: Path,
                     count: int = PREVIEW_IMAGES) -> None:
    """A picture of the first ``count`` validation canvases: the truth above, the prediction below (masks as
    colours; boxes green = truth, red = predicted with class and score)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    shaped = est._dense_for(data.input_shape)  # the estimator's copy at the network's input
    split = shaped.val.take(range(min(count, len(shaped.val))))
    preds = est.predict(model.to(est.device), split.x)
    n = len(split)
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 4.6), squeeze=False)
    names = data.class_names
    mean, std = np.asarray(data.mean), np.asarray(data.std)
    for i in range(n):
        img = split.x[i].cpu().numpy() * std[:, None, None] + mean[:, None, None]
        img = np.clip(img.transpose(1, 2, 0), 0, 1)
        img = img[..., 0] if img.shape[2] == 1 else img
        for ax in axes[:, i]:
            ax.imshow(img, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        if data.task == "segmentation":
            assert split.masks is not None
            for ax, mask in ((axes[0, i], split.masks[i].cpu().numpy()), (axes[1, i], _np(preds[i]))):
                ax.imshow(np.ma.masked_equal(mask, 0), cmap="tab20", vmin=0, vmax=max(20, len(names)),
                          alpha=0.6, interpolation="nearest")
        else:
            for b, c in zip(split.boxes[i].tolist(), split.labels[i].tolist(), strict=True):
                axes[0, i].add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, color="lime"))
                axes[0, i].text(b[0], b[1], names[c], color="lime", fontsize=6, va="bottom")
            d = preds[i]
            for b, s, c in zip(d.boxes.tolist(), d.scores.tolist(), d.labels.tolist(), strict=True):
                if s < 0.3:
                    continue
                axes[1, i].add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, color="red"))
                axes[1, i].text(b[0], b[1], f"{names[c]} {s:.2f}", color="red", fontsize=6, va="bottom")
    axes[0, 0].set_ylabel("truth")
    axes[1, 0].set_ylabel("predicted")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.cpu().numpy()
