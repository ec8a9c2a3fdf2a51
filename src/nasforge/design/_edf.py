"""RegNet's error EDF: compare design spaces by the empirical distribution of error of sampled models.

Sample ``n`` architectures from each space, evaluate each with an estimator (a tabular lookup, or
training), and report ``F(e)`` = share of models with error below ``e``. A space whose curve lies to
the left/above holds better models at every quantile, not just a lucky best one.

A space may be restricted by removing choice values from every decision that offers them:
``nb201:-avg_pool_3x3,-none`` is NB201 without pooling and without ``none`` edges.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge._files import save_figure
from nasforge.errors import NasforgeError
from nasforge.spaces import Architecture, SearchSpace, get_space

if TYPE_CHECKING:  # the estimators import torch: the CLI's `design` commands start without it
    from nasforge.estimators import Estimator

#: how a reward becomes an error: "accuracy" (a fraction in [0, 1], as every nasforge reward: error = 1 - reward)
#: or "error" (the reward already is the error)
ERROR_FROM = ("accuracy", "error")


@dataclass(frozen=True)
class SpaceSpec:
    """A space name, its options, and the choice values removed from it."""

    label: str
    space: SearchSpace
    removed: tuple[str, ...] = ()

    def sampler(self) -> Callable[[np.random.Generator], Architecture]:
        """Uniform over the remaining choices of each decision."""
        if not self.removed:
            return self.space.sample
        decs = self.space.decisions()
        allowed = []
        for d in decs:
            keep = [i for i, v in enumerate(d.choices) if str(v) not in self.removed]
            if not keep:
                raise NasforgeError(f"space {self.label!r}: removing {', '.join(self.removed)} leaves decision "
                                    f"{d.name!r} without a choice")
            allowed.append(keep)
        values = {str(v) for d in decs for v in d.choices}
        unknown = [r for r in self.removed if r not in values]
        if unknown:
            raise NasforgeError(f"space {self.label!r}: {unknown[0]!r} is not a choice of any decision; "
                                f"choices: {', '.join(sorted(values))}")

        def sample(rng: np.random.Generator) -> Architecture:
            return self.space.decode([a[int(rng.integers(len(a)))] for a in allowed])

        return sample


def parse_space_spec(text: str, options: dict[str, Any] | None = None) -> SpaceSpec:
    """``NAME`` or ``NAME:-VALUE,-VALUE`` (choice values removed from every decision)."""
    name, _, rest = text.partition(":")
    removed: list[str] = []
    for tok in (t.strip() for t in rest.split(",") if t.strip()):
        if not tok.startswith("-") or len(tok) < 2:
            raise NasforgeError(f"bad space {text!r}; expected NAME or NAME:-VALUE,-VALUE (values to remove)")
        removed.append(tok[1:])
    return SpaceSpec(text, get_space(name, **(options or {})), tuple(removed))


def to_error(reward: float, error_from: str) -> float:
    """The error of a reward: ``1 - reward`` for an accuracy (a fraction), the reward itself for "error"."""
    return 1.0 - reward if error_from == "accuracy" else reward


@dataclass(frozen=True)
class EDFCurve:
    """The sorted errors of one space's sample and their summary."""

    label: str
    errors: tuple[float, ...]
    requested: int

    def cdf(self, e: float) -> float:
        """Share of sampled models with error <= ``e``."""
        return float(np.searchsorted(self.errors, e, side="right") / len(self.errors))

    def to_dict(self) -> dict[str, Any]:
        x = np.asarray(self.errors)
        q = np.percentile(x, [5, 25, 50, 75])
        return {"space": self.label, "n": len(x), "requested": self.requested, "min": float(x.min()),
                "mean": float(x.mean()), "p5": float(q[0]), "p25": float(q[1]), "median": float(q[2]),
                "p75": float(q[3])}


def edf(spaces: Sequence[SpaceSpec], estimator_of: Callable[[SpaceSpec], Estimator], n: int, seed: int = 0,
        error_from: str = "accuracy", distinct: bool = True) -> list[EDFCurve]:
    """Sample ``n`` architectures per space (distinct ones when the space allows), evaluate, return curves."""
    if error_from not in ERROR_FROM:
        raise NasforgeError(f"unknown error mapping {error_from!r}; allowed: {', '.join(ERROR_FROM)}")
    if n < 1:
        raise NasforgeError(f"-n {n} must be >= 1")
    if not spaces:
        raise NasforgeError("give at least one --space")
    curves = []
    for k, s in enumerate(spaces):
        est = estimator_of(s)
        size = len(est) if isinstance(est, Sized) else None
        if distinct and size is not None and n > size:
            raise NasforgeError(f"-n {n} is larger than the table's {size} architectures for space {s.label!r}")
        rng = np.random.default_rng([seed, k])
        sample = s.sampler()
        seen: set[Architecture] = set()
        archs: list[Architecture] = []
        tries = 0
        while len(archs) < n and tries < 50 * n:
            tries += 1
            a = sample(rng)
            if distinct and a in seen:
                continue
            seen.add(a)
            archs.append(a)
        errs = []
        for a in archs:
            try:
                r = est.evaluate(a)
            except NasforgeError:  # a tabular estimator without this architecture
                continue
            if r.ok and r.reward is not None:
                errs.append(to_error(float(r.reward), error_from))
        if not errs:
            raise NasforgeError(f"none of the {len(archs)} sampled architectures of space {s.label!r} could be "
                                "evaluated (not in the table?)")
        curves.append(EDFCurve(s.label, tuple(sorted(errs)), n))
    return curves


def plot_edf(curves: Sequence[EDFCurve], path: str, xlabel: str = "error") -> None:
    """One EDF step curve per space."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for c in curves:
        x = np.asarray(c.errors)
        ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", label=f"{c.label} (n={len(x)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cumulative prob.")
    ax.set_title("error EDF")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)
