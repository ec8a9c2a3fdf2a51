"""Pareto local search and its surrogate-guided form: climb from the front through one-decision neighbours.

``pareto-local`` (Paquete et al. 2004): after a random design, pick an unexplored member of the current front,
ask its neighbours that were never asked, mark it explored; when every front member is explored, ask random
architectures (a restart) until the front changes.

``mo-surrogate`` extends the single-objective ``surrogate`` idea to several objectives: one kernel-ridge
surrogate per objective (``_kernel``, rank-transformed targets) predicts every candidate (the unseen neighbours of
the first fronts and some random architectures) and the candidate with the largest predicted hypervolume
improvement over the told front is asked (in the surrogates' normal-score space); when none improves it, the one
closest to the front (additive epsilon). Asks still pending enter the front as their predictions, so a batch of
asks spreads along the front.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from scipy.stats import norm, rankdata

from nasforge.pareto import hypervolume, nondominated
from nasforge.spaces import Architecture, Result, SearchSpace
from nasforge.strategies._base import register_strategy
from nasforge.strategies._kernel import _controller, match_kernel
from nasforge.strategies._mo import Told
from nasforge.strategies._util import as_choices, check_kind, check_positive, rng_state, set_rng_state


@register_strategy("pareto-local", multi_objective=True)
class ParetoLocalSearch:
    """Pareto local search. Options: ``init`` (10) random architectures before the climb."""

    kind = "pareto-local"

    def __init__(self, space: SearchSpace, seed: int = 0, init: int = 10) -> None:
        self.space = space
        self.init = check_positive("init", init)
        self.rng = np.random.default_rng(seed)
        self.told = Told()
        self.explored: set[tuple[int, ...]] = set()
        self.queue: deque[tuple[int, ...]] = deque()
        self._random_asked = 0

    def _front(self) -> list[tuple[int, ...]]:
        choices, _, ranks = self.told.ok()
        return [c for c, r in zip(choices, ranks, strict=True) if r == 0]

    def _order(self, centre: tuple[int, ...], neigh: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
        """The order to ask a front member's neighbours in (here: seeded random)."""
        return [neigh[int(i)] for i in self.rng.permutation(len(neigh))]

    def _refill(self) -> None:
        unexplored = [c for c in self._front() if c not in self.explored]
        if not unexplored:
            return
        centre = unexplored[int(self.rng.integers(len(unexplored)))]
        self.explored.add(centre)
        neigh = [n.choices for n in self.space.neighbours(self.space.decode(centre))]
        self.queue.extend(c for c in self._order(centre, [c for c in neigh if not self.told.seen(c)]))

    def _next(self) -> tuple[int, ...]:
        if self._random_asked < self.init:
            self._random_asked += 1
            return self.told.random_unseen(self.space, self.rng)
        for _ in range(2):
            while self.queue and self.told.seen(self.queue[0]):
                self.queue.popleft()
            if self.queue:
                return self.queue.popleft()
            self._refill()
        return self.told.random_unseen(self.space, self.rng)  # front explored (or pending): restart

    def ask(self) -> Architecture:
        c = self._next()
        self.told.ask(c)
        return self.space.decode(c)

    def tell(self, arch: Architecture, result: Result) -> None:
        self.told.tell(arch, result)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rng": rng_state(self.rng), "random_asked": self._random_asked,
                "explored": [list(c) for c in sorted(self.explored)], "queue": [list(c) for c in self.queue],
                **self.told.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_kind(state, self.kind)
        set_rng_state(self.rng, state["rng"])
        self._random_asked = int(state["random_asked"])
        self.explored = {as_choices(c) for c in state["explored"]}
        self.queue = deque(as_choices(c) for c in state["queue"])
        self.told.load_state_dict(state)


def hv_improvement_2d(front: np.ndarray, cands: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The hypervolume each candidate would add to a 2-D ``front`` (minimisation) up to ``ref``, all at once.

    The area of the candidate's box [c, ref] less the part of it the front dominates: the front's points clipped
    to the box form a staircase (x ascending, y not increasing) whose area is a sum of rectangles. Checked against
    moocore's hypervolume in the tests.
    """
    f = front[np.argsort(front[:, 0], kind="stable")]
    x = np.minimum(np.maximum(f[None, :, 0], cands[:, None, 0]), ref[0])  # (nc, nf)
    y = np.minimum(np.maximum(f[None, :, 1], cands[:, None, 1]), ref[1])
    y = np.minimum.accumulate(y, axis=1)  # the staircase: dominated steps add nothing
    widths = np.diff(np.concatenate([x, np.full((len(cands), 1), ref[0])], axis=1), axis=1)
    covered = (widths * (ref[1] - y)).sum(axis=1)
    box = np.clip(ref[0] - cands[:, 0], 0, None) * np.clip(ref[1] - cands[:, 1], 0, None)
    return np.clip(box - covered, 0.0, None)


def normal_scores(y: np.ndarray) -> np.ndarray:
    """Rank-transform each column to normal scores (lower stays lower), as the surrogate's targets."""
    return np.asarray(norm.ppf((rankdata(y, axis=0) - 0.5) / len(y)))


def kernel_ridge_predict(x: np.ndarray, z: np.ndarray, xc: np.ndarray, pair: float = 0.3,
                         ridge: float = 1.0) -> np.ndarray:
    """``_kernel``'s kernel ridge regression for several targets at once (the columns of ``z``): one kernel, one
    solve. Predictions of ``xc`` (rows of choice indices), one column per target."""
    k = match_kernel(x, x, pair) + ridge * np.eye(len(x))
    with _controller().limit(limits=1, user_api="blas"):
        alpha = np.linalg.solve(k, z)
    return np.asarray(match_kernel(xc, x, pair) @ alpha)


@register_strategy("mo-surrogate", multi_objective=True)
class SurrogateMO:
    """Surrogate-guided multi-objective search (see the module doc).

    Options: ``init`` (8) random architectures first; ``fronts`` (2): neighbours of the members of this many
    first fronts are candidates; ``random_candidates`` (16) random architectures and ``children`` (0) mutated
    crossovers of two such front members join them each ask; ``model_max`` (256): the fit uses at most this many
    told results (the best ranked).
    """

    kind = "mo-surrogate"

    def __init__(self, space: SearchSpace, seed: int = 0, init: int = 8, fronts: int = 2,
                 random_candidates: int = 16, children: int = 0, model_max: int = 256) -> None:
        self.space = space
        self.init = check_positive("init", init)
        self.fronts = check_positive("fronts", fronts)
        self.random_candidates = check_positive("random_candidates", random_candidates, minimum=0)
        self.children = check_positive("children", children, minimum=0)
        self.model_max = check_positive("model_max", model_max, minimum=4)
        self.rng = np.random.default_rng(seed)
        self.told = Told()
        self._random_asked = 0
        self._neigh: dict[tuple[int, ...], list[tuple[int, ...]]] = {}  # a cache (a function of the space)

    def _neighbours(self, c: tuple[int, ...]) -> list[tuple[int, ...]]:
        if c not in self._neigh:
            self._neigh[c] = [n.choices for n in self.space.neighbours(self.space.decode(c))]
        return self._neigh[c]

    def _candidates(self, choices: list[tuple[int, ...]], ranks: np.ndarray) -> list[tuple[int, ...]]:
        out: dict[tuple[int, ...], None] = {}
        for c, r in zip(choices, ranks, strict=True):
            if r < self.fronts:
                for n in self._neighbours(c):
                    if not self.told.seen(n):
                        out[n] = None
        for _ in range(self.random_candidates):
            c = self.space.sample(self.rng).choices
            if not self.told.seen(c):
                out[c] = None
        parents = [c for c, r in zip(choices, ranks, strict=True) if r < self.fronts]
        for _ in range(self.children if len(parents) > 1 else 0):  # crossovers of two front members, mutated
            i, j = self.rng.choice(len(parents), size=2, replace=False)
            child = self.space.crossover(self.space.decode(parents[int(i)]), self.space.decode(parents[int(j)]),
                                         self.rng)
            c = self.space.mutate(child, self.rng).choices
            if not self.told.seen(c):
                out[c] = None
        return list(out)

    def _pick(self) -> tuple[int, ...] | None:
        choices, y, ranks = self.told.ok()
        if len(choices) < 3:
            return None
        if len(choices) > self.model_max:  # the best ranked: the fit is cubic and matters near the front
            keep = np.argsort(ranks, kind="stable")[: self.model_max]
            choices, y, ranks = [choices[i] for i in keep], y[keep], ranks[keep]
        cands = self._candidates(choices, ranks)
        if not cands:
            return None
        pend = [c for c in self.told.pending if c not in self.told.values]
        z = normal_scores(y)
        both = kernel_ridge_predict(np.array(choices), z, np.array(cands + pend))
        pred = both[: len(cands)]
        front = np.vstack([z, both[len(cands):]])  # fantasies: pending asks count as their predictions
        front = front[nondominated(front)]
        ref = np.maximum(front.max(axis=0), pred.max(axis=0)) + 1.0
        if front.shape[1] == 2:
            gain = hv_improvement_2d(front, pred, ref)
        else:
            base = hypervolume(front, ref)
            gain = np.array([hypervolume(np.vstack([front, p]), ref) - base for p in pred])
        if gain.max() > 1e-12:
            return cands[int(np.argmax(gain))]
        # none improves: the one that needs the smallest shift to become non-dominated (additive epsilon)
        eps = np.min(np.max(pred[:, None, :] - front[None, :, :], axis=2), axis=1)
        return cands[int(np.argmin(eps))]

    def ask(self) -> Architecture:
        c = None
        if self._random_asked >= self.init:
            c = self._pick()
        if c is None:
            self._random_asked += 1
            c = self.told.random_unseen(self.space, self.rng)
        self.told.ask(c)
        return self.space.decode(c)

    def tell(self, arch: Architecture, result: Result) -> None:
        self.told.tell(arch, result)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rng": rng_state(self.rng), "random_asked": self._random_asked,
                **self.told.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_kind(state, self.kind)
        set_rng_state(self.rng, state["rng"])
        self._random_asked = int(state["random_asked"])
        self.told.load_state_dict(state)
