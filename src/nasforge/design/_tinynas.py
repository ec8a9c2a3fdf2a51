"""TinyNAS space choice (MCUNet): which (width multiplier, resolution) sub-space to search for a device.

For every candidate space of a grid, sample ``m`` architectures, keep those that fit the device's memory
(peak activation memory in SRAM, weights in flash, at int8 by default) and compare candidates by the
distribution of MACs of the fitting models: more MACs that still fit means more capacity, so the chosen
space is the one whose fitting models have the highest mean MACs.

Two defaults make this work on a microcontroller as MCUNet does:

- TinyNAS's width multiplier shrinks the whole network, head included. Spaces listed in
  ``TINYNAS_OPTIONS`` get those options unless the caller sets them (``mobilenet``: ``head_scale=True``;
  its fixed 1280-channel head has a 1.28 MB int8 classifier at 1000 classes, above a 1 MiB flash).
- Only candidates where at least ``min_share`` (default half) of the samples fit can be chosen. The mean
  over a handful of fitting samples is noisy and biased up (they are the few that squeezed under the
  limit): on stm32f746 at 1000 classes, w0.4-r192 has 1.6% fitting (16 of 1000) at 69 M mean MACs and
  would win the plain rule; a search in it would reject 98% of what it samples. ``min_share=0`` is the
  plain published rule. With 100 classes the default picks w0.5-r144, MCUNet's own ImageNet-100 choice
  (its figure: w0.5-r144 52.0 M mean, w0.4-r144 46.9 M; here 59 M and 47 M with our memory model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nasforge._files import save_figure
from nasforge.errors import NasforgeError
from nasforge.hardware import Device
from nasforge.spaces import get_space

#: Space options TinyNAS uses unless the caller sets them: the width multiplier scales the head too.
TINYNAS_OPTIONS: dict[str, dict[str, Any]] = {"mobilenet": {"head_scale": True}}
#: Default smallest share of fitting samples for a candidate to be chosen (see the module docstring).
DEFAULT_MIN_SHARE = 0.5


@dataclass(frozen=True)
class Candidate:
    """One candidate space and what its samples gave on the device."""

    width: float
    resolution: int
    sampled: int
    fitting: int
    macs: tuple[int, ...]  # sorted MACs of the fitting samples (the CDF's x values)
    closest_used: float  # over all samples, the smallest max(resource used / limit)

    @property
    def share(self) -> float:
        return self.fitting / self.sampled if self.sampled else 0.0

    @property
    def mean_macs(self) -> float | None:
        return float(np.mean(self.macs)) if self.macs else None

    @property
    def label(self) -> str:
        return f"w{self.width:g}-r{self.resolution}"

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.label, "width": self.width, "resolution": self.resolution, "sampled": self.sampled,
                "fitting": self.fitting, "share": self.share, "mean_macs": self.mean_macs,
                "median_macs": float(np.median(self.macs)) if self.macs else None}


@dataclass(frozen=True)
class TinyNASResult:
    """Per-candidate rows and the chosen candidate."""

    device: str
    precision: str
    candidates: tuple[Candidate, ...]
    chosen: Candidate
    space: str
    options: dict[str, Any] = field(default_factory=dict)
    min_share: float = 0.0

    def eligible(self, c: Candidate) -> bool:
        """Whether a candidate could be chosen: some samples fit, at least ``min_share`` of them."""
        return c.fitting > 0 and c.share >= self.min_share

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "precision": self.precision, "space": self.space,
                "options": _jsonable(self.options), "min_share": self.min_share,
                "chosen": self.chosen.to_dict(), "candidates": [c.to_dict() for c in self.candidates]}


def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}


def _used(check: dict[str, Any]) -> float:
    return max(float(c["used"]) for c in check["checks"])


def tinynas(space: str, device: Device, widths: Sequence[float] | None = None,
            resolutions: Sequence[int] | None = None, samples: int = 1000, seed: int = 0,
            precision: str = "int8", options: dict[str, Any] | None = None,
            min_share: float = DEFAULT_MIN_SHARE) -> TinyNASResult:
    """Evaluate the width x resolution grid of ``space`` (a space with ``widths``/``resolutions`` options).

    ``widths``/``resolutions`` default to the space's own choices; ``options`` are the space's options on
    top of ``TINYNAS_OPTIONS``. Only candidates where at least ``min_share`` of samples fit can be chosen
    (0 = the plain rule). Raises ``NasforgeError`` for an empty grid, a ``min_share`` outside 0..1, when no
    sampled model of any candidate fits (naming the closest candidate and what it needs), and when none
    reaches ``min_share`` (naming the best share).
    """
    if not 0.0 <= min_share <= 1.0:
        raise NasforgeError(f"min_share={min_share} must be in 0..1")
    opts = {**TINYNAS_OPTIONS.get(space, {}), **(options or {})}
    base = get_space(space, **opts)
    ws = tuple(widths) if widths is not None else tuple(getattr(base, "widths", ()))
    rs = tuple(resolutions) if resolutions is not None else tuple(getattr(base, "resolutions", ()))
    if not ws or not rs:
        raise NasforgeError(f"the candidate grid is empty ({len(ws)} widths x {len(rs)} resolutions); "
                            "give at least one width and one resolution")
    if samples < 1:
        raise NasforgeError(f"samples={samples} must be >= 1")
    cands: list[Candidate] = []
    closest: tuple[float, str, dict[str, Any]] | None = None
    for w in ws:
        for r in rs:
            sp = get_space(space, **{**opts, "widths": (w,), "resolutions": (r,)})
            rng = np.random.default_rng([seed, len(cands)])
            macs: list[int] = []
            best = float("inf")
            for _ in range(samples):
                cost = sp.cost(sp.sample(rng), precision=precision)
                check = device.fits(cost)
                u = _used(check)
                if u < best:
                    best = u
                    if closest is None or u < closest[0]:
                        closest = (u, f"w{w:g}-r{r}", check)
                if check["fits"]:
                    macs.append(cost.macs)
            cands.append(Candidate(float(w), int(r), samples, len(macs), tuple(sorted(macs)), best))
    fitting = [c for c in cands if c.fitting]
    if not fitting:
        assert closest is not None
        _, label, check = closest
        needs = ", ".join(f"{c['resource']} {c['need_bytes'] / 1024:.0f} KiB > {c['limit_bytes'] / 1024:.0f} KiB"
                          if not c["ok"] else f"{c['resource']} ok" for c in check["checks"])
        raise NasforgeError(f"no candidate space has a model that fits {device.name} at {precision} "
                            f"({len(cands)} candidates x {samples} samples); closest: {label} ({needs})")
    eligible = [c for c in fitting if c.share >= min_share]
    if not eligible:
        top = max(fitting, key=lambda c: c.share)
        raise NasforgeError(f"no candidate has at least {min_share:.0%} of its samples fitting {device.name}; "
                            f"the best is {top.label} with {top.share:.1%} (lower min_share to choose it)")
    chosen = max(eligible, key=lambda c: (c.mean_macs or 0.0, c.share))
    return TinyNASResult(device.name, precision, tuple(cands), chosen, space, opts, min_share)


def plot_tinynas(result: TinyNASResult, path: str, top: int = 8) -> None:
    """CDF of MACs of the fitting models for the ``top`` eligible candidates by mean MACs (the chosen one bold)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranked = sorted((c for c in result.candidates if result.eligible(c)), key=lambda c: -(c.mean_macs or 0.0))[:top]
    if result.chosen not in ranked:
        ranked[-1:] = [result.chosen]
    fig, ax = plt.subplots(figsize=(6, 4))
    for c in ranked:
        x = np.asarray(c.macs) / 1e6
        y = np.arange(1, len(x) + 1) / len(x)
        bold = c is result.chosen
        ax.step(x, y, where="post", lw=2.5 if bold else 1.0,
                label=f"{c.label} ({c.share:.0%} fit){' *' if bold else ''}")
    ax.set_xlabel("MACs of models that fit (M)")
    ax.set_ylabel("cumulative share")
    ax.set_title(f"TinyNAS space choice on {result.device} ({result.precision})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
