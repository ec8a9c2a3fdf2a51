"""Local search: hill climbing over one-decision neighbours, random restarts when stuck.

White et al. (2021) find this simple method strong on NAS-Bench-201. Rewards are cached, so a
neighbour already evaluated is never asked again; an architecture's neighbourhood is asked in a
seeded random order, or best-predicted first by a small surrogate (``surrogate``).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from nasforge.spaces import Architecture, Result, SearchSpace
from nasforge.strategies._base import register_strategy
from nasforge.strategies._kernel import kernel_ridge_scores
from nasforge.strategies._util import as_choices, check_kind, check_positive, reward_of, rng_state, set_rng_state

_MAX_TRIES = 100


@register_strategy("local")
class LocalSearch:
    """Local search from the best of a small random design.

    Start from the best of ``init`` random architectures (10), ask the neighbours of the current one and
    move to a better one: at once with ``first_improvement=True`` (the default), or after the whole
    neighbourhood to the best one (``first_improvement=False``, classic best-improvement). With no
    better neighbour, restart from the best of ``init`` new random ones. ``model=True`` asks neighbours in
    the order a kernel-ridge surrogate of the (at most ``model_max`` best) told rewards predicts.
    Asks that come while results are pending (parallel workers) and nothing is left to ask are filled
    with unseen random architectures, which also count as restart points. Defaults measured on
    NB201 (100 seeds): init 10 with first improvement beats init 1 and best improvement at every budget.
    """

    def __init__(self, space: SearchSpace, seed: int = 0, init: int = 10, first_improvement: bool = True,
                 model: bool = False, model_max: int = 256) -> None:
        self.space = space
        self.init = check_positive("init", init)
        self.first_improvement = bool(first_improvement)
        self.model = bool(model)
        self.model_max = check_positive("model_max", model_max, minimum=2)
        self.rng = np.random.default_rng(seed)
        self.rewards: dict[tuple[int, ...], float | None] = {}  # told results (None: failed)
        self.pending: set[tuple[int, ...]] = set()
        self.current: tuple[int, ...] | None = None
        self.queue: deque[tuple[int, ...]] = deque()  # neighbours (or restart samples) still to ask
        self.batch: list[tuple[int, ...]] = []  # what the current step waits for
        self.restart_pool: list[tuple[int, ...]] = []  # random archs since the last restart

    # -- internals ---------------------------------------------------------------------------------
    def _r(self, c: tuple[int, ...]) -> float:
        r = self.rewards.get(c)
        return -np.inf if r is None else r

    def _random_unseen(self) -> tuple[int, ...]:
        arch = self.space.sample(self.rng)
        tries = 0
        while (arch.choices in self.rewards or arch.choices in self.pending) and tries < _MAX_TRIES:
            arch = self.space.sample(self.rng)
            tries += 1
        return arch.choices

    def _start_restart(self) -> None:
        self.current = None
        self.batch = [self._random_unseen() for _ in range(self.init)]
        self.queue = deque(self.batch)

    def _move_to(self, c: tuple[int, ...]) -> None:
        """Make ``c`` current and queue its neighbours that were neither told nor asked."""
        self.current = c
        neigh = [n.choices for n in self.space.neighbours(self.space.decode(c))]
        order = self.rng.permutation(len(neigh))
        self.batch = [neigh[int(i)] for i in order]
        if self.model:
            self.batch = self._by_model(self.batch)
        self.queue = deque(n for n in self.batch if n not in self.rewards and n not in self.pending)

    def _by_model(self, cands: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
        """Candidates sorted best-predicted first (unchanged with fewer than two good results)."""
        told = [(t, r) for t, r in self.rewards.items() if r is not None]
        if len(told) > self.model_max:  # the best ones: the fit is cubic and only ranks near the top
            told = sorted(told, key=lambda tr: -tr[1])[: self.model_max]
        if len(told) < 2 or not cands:
            return cands
        score = kernel_ridge_scores(np.array([t for t, _ in told]), np.array([r for _, r in told]), np.array(cands))
        return [cands[int(i)] for i in np.argsort(-score, kind="stable")]

    def _advance(self) -> None:
        """Take every step whose results are all in (several at once when neighbours were cached)."""
        while True:
            if self.current is None:  # restart phase: wait for the design, then climb from its best
                if not self.batch or any(c not in self.rewards for c in self.batch):
                    return
                told = [c for c in self.restart_pool if c in self.rewards]
                best = max(self.batch + told, key=self._r)  # first of equals wins
                self.restart_pool = [c for c in self.restart_pool if c not in self.rewards]
                if self._r(best) == -np.inf:
                    self._start_restart()
                    return
                self._move_to(best)
                continue
            cur = self._r(self.current)
            if self.first_improvement:
                better = [c for c in self.batch if c in self.rewards and self._r(c) > cur]
                if better:
                    self._move_to(better[0])
                    continue
            if any(c not in self.rewards for c in self.batch):
                return
            best = max(self.batch, key=self._r) if self.batch else self.current
            if self._r(best) > cur:
                self._move_to(best)
                continue
            self._start_restart()
            return

    # -- ask/tell ----------------------------------------------------------------------------------
    def ask(self) -> Architecture:
        if self.current is None and not self.batch:
            self._start_restart()
        while self.queue and (self.queue[0] in self.rewards or self.queue[0] in self.pending):
            self.queue.popleft()
        if self.queue:
            c = self.queue.popleft()
        else:
            c = self._random_unseen()
            if self.current is None:
                self.batch.append(c)  # part of the restart design
            else:
                self.restart_pool.append(c)
        self.pending.add(c)
        return self.space.decode(c)

    def tell(self, arch: Architecture, result: Result) -> None:
        c = arch.choices
        self.pending.discard(c)
        self.rewards[c] = reward_of(result)
        self._advance()

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "local", "rng": rng_state(self.rng),
            "rewards": [[list(c), r] for c, r in self.rewards.items()],
            "pending": sorted(list(c) for c in self.pending),
            "current": None if self.current is None else list(self.current),
            "queue": [list(c) for c in self.queue], "batch": [list(c) for c in self.batch],
            "restart_pool": [list(c) for c in self.restart_pool],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_kind(state, "local")
        set_rng_state(self.rng, state["rng"])
        self.rewards = {as_choices(c): (None if r is None else float(r)) for c, r in state["rewards"]}
        self.pending = {as_choices(c) for c in state["pending"]}
        self.current = None if state["current"] is None else as_choices(state["current"])
        self.queue = deque(as_choices(c) for c in state["queue"])
        self.batch = [as_choices(c) for c in state["batch"]]
        self.restart_pool = [as_choices(c) for c in state["restart_pool"]]


@register_strategy("surrogate")
def surrogate_local_search(space: SearchSpace, seed: int = 0, **options: Any) -> LocalSearch:
    """Local search whose neighbours are asked best-predicted first (``local`` with ``model=True``).

    Its random design is 7 architectures (``init``): with the model guiding the climb a smaller design pays
    off early (NB201, 100 seeds: 93.74 vs 93.61 at 25 queries, equal from 100 on; the same on the
    200-epoch cifar10-valid table).
    """
    return LocalSearch(space, seed=seed, **{"model": True, "init": 7, **options})
