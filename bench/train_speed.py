"""Training throughput: ``TrainingEstimator`` vs a plain hand-written PyTorch loop, same model and data.

Both train the same architecture (same initial weights) for the same epochs on the same in-memory tensors
with SGD + Nesterov momentum; images/s counts training steps only (the estimator's own ``images_per_s``
metric; for the plain loop the same span: shuffle + steps). Runs alternate (plain, estimator, ...) so that
load from other processes hits both alike; the ratio of medians is printed (target >= 0.95), in wall time
and in process CPU time (the latter does not move with the load other processes put on a shared machine).

    .venv/bin/python bench/train_speed.py [--dataset digits|fashion-mnist] [--subset 4096] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from nasforge.data import load_dataset
from nasforge.estimators import TrainingEstimator
from nasforge.spaces import get_space

SPACE_OPTIONS = {"resolutions": [32], "in_channels": 1, "widths": [0.5], "num_classes": 10,
                 "stage_channels": [16, 24, 40, 80], "stage_strides": [1, 2, 2, 2], "depths": [1, 2],
                 "head_channels": 256}


def plain_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int,
               lr: float, seed: int) -> tuple[float, float]:
    """The textbook loop: shuffle, slice, forward, loss, backward, step. Returns (images/s, images/CPU-s)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(seed)
    n = len(y)
    steps = n // batch_size
    t = c = 0.0
    for _ in range(epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        model.train()
        perm = torch.randperm(n, generator=gen)
        xs, ys = x[perm], y[perm]
        for i in range(steps):
            loss = F.cross_entropy(model(xs[i * batch_size:(i + 1) * batch_size]),
                                   ys[i * batch_size:(i + 1) * batch_size])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        t += time.perf_counter() - t0
        c += time.process_time() - c0
    images = steps * batch_size * epochs
    return images / t, images / c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--subset", type=int, default=4096)
    ap.add_argument("--space-options", default=json.dumps(SPACE_OPTIONS))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--channels-last", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    space = get_space("mobilenet", **json.loads(args.space_options))
    arch = space.sample(np.random.default_rng(0))
    ds = load_dataset(args.dataset, subset=(args.subset, 512, 512))
    est = TrainingEstimator(space, ds, epochs=args.epochs, batch_size=args.batch_size, lr=0.05,
                            schedule="none", channels_last=args.channels_last)
    shape = tuple(space.input_shape(arch))
    ds_in = ds.with_channels(shape[0]).resized((shape[1], shape[2]))
    x, y = ds_in.train.x.contiguous(), ds_in.train.y
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    print(f"arch {arch} on {args.dataset} ({len(y)} images {tuple(x.shape[1:])}), batch {args.batch_size}, "
          f"{args.epochs} epochs, torch threads {args.threads}, channels_last {args.channels_last}")
    # warm-up: first optimizer construction imports torch._dynamo; first conv calls pick kernels
    est.evaluate(arch, epochs=1)
    ours: list[float] = []
    plain: list[float] = []
    ours_cpu: list[float] = []
    plain_cpu: list[float] = []
    for rep in range(args.reps):
        # alternate which one goes first, so neither always runs right after the other
        for which in (("plain", "estimator") if rep % 2 == 0 else ("estimator", "plain")):
            if which == "plain":
                torch.manual_seed(est.seed)
                model = space.build(arch, num_classes=ds.num_classes)
                if args.channels_last:
                    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
                wall, cpu = plain_loop(model, x, y, args.epochs, args.batch_size, 0.05, est.seed)
                plain.append(wall)
                plain_cpu.append(cpu)
            else:
                r = est.evaluate(arch)
                if not r.ok:
                    print(f"estimator failed: {r.error}", file=sys.stderr)
                    return 1
                ours.append(r.metrics["images_per_s"])
                ours_cpu.append(r.metrics["images_per_s"] * r.metrics["train_seconds"] / r.metrics["train_cpu_seconds"])
        print(f"  rep {rep + 1}: plain {plain[-1]:8.0f} img/s ({plain_cpu[-1]:.0f} per CPU-s)   "
              f"estimator {ours[-1]:8.0f} img/s ({ours_cpu[-1]:.0f} per CPU-s)")
    med = statistics.median
    print(f"median images/s (wall): plain {med(plain):.0f}, estimator {med(ours):.0f}; "
          f"ratio {med(ours) / med(plain):.3f} (target >= 0.95)")
    print(f"median images per CPU-second: plain {med(plain_cpu):.0f}, estimator {med(ours_cpu):.0f}; "
          f"ratio {med(ours_cpu) / med(plain_cpu):.3f} (robust to load from other processes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
