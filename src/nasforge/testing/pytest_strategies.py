"""The conformance suite of search strategies (after Optuna's ``testing/pytest_samplers.py``): ``StrategySuite``.

Every registered strategy: asks valid architectures only; the same seed gives the same sequence (also in
another process) and another seed another; a JSON state round trip continues identically (with asks still
pending); the state of another strategy is refused; batch asks before any result; failed results and results
of architectures never asked; and it beats random search on a toy objective with a hidden target. Spaces: a
toy space (``ToySpace``), a conditional toy space (``CondSpace``: variable depth, inactive decisions) and the
registered spaces named in ``StrategySuite.real_spaces``. Multi-objective strategies also run the checks that
need a state (validity, determinism, the state round trip with asks pending) on two-objective results.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from nasforge.errors import NasforgeError
from nasforge.estimators import Result
from nasforge.spaces import Architecture, Decision, SearchSpace, get_space
from nasforge.strategies import Strategy, get_strategy, list_strategies


class ToySpace(SearchSpace):
    """Decisions with 4 choices each by default (six: 4,096 architectures); text like ``0-3-1-2-0-1``."""

    name = "toy"

    def __init__(self, sizes: Sequence[int] = (4, 4, 4, 4, 4, 4)) -> None:
        self._decs = [Decision(f"d{i}", tuple(range(n))) for i, n in enumerate(sizes)]

    def decisions(self) -> list[Decision]:
        return self._decs

    def format(self, choices: tuple[int, ...]) -> str:
        return "-".join(str(c) for c in choices)

    def parse(self, text: str) -> Architecture:
        return self.decode([int(t) for t in text.split("-")])

    def cost(self, arch: Architecture, resolution: int | None = None, precision: str = "fp32") -> Any:
        raise NotImplementedError

    def build(self, arch: Architecture, num_classes: int | None = None, **options: Any) -> Any:
        raise NotImplementedError


class CondSpace(ToySpace):
    """Variable depth: decision 0 picks 1..4 layers, decision i (op of layer i) is active iff i <= depth."""

    name = "cond"

    def __init__(self) -> None:
        super().__init__((4, 3, 3, 3, 3))

    def active(self, choices: Sequence[int]) -> list[bool]:
        return [True] + [i <= int(choices[0]) + 1 for i in range(1, 5)]

    def size(self) -> int:
        return 3 + 9 + 27 + 81


def make_space(name: str) -> SearchSpace:
    """``toy``, ``cond`` or a registered space (with its defaults)."""
    if name == "toy":
        return ToySpace()
    if name == "cond":
        return CondSpace()
    return get_space(name)


def target_reward(space: SearchSpace) -> Callable[[Architecture], float]:
    """Reward = number of decisions equal to a hidden target (the sum over active decisions)."""
    target = space.sample(np.random.default_rng(12345)).choices
    return lambda a: float(sum(int(x == t) for x, t in zip(a.choices, target, strict=True)))


def run_script(st: Strategy, space: SearchSpace, script: str, pending: list[Architecture] | None = None,
               fail_every: int = 0, vector: bool = False) -> list[tuple[int, ...]]:
    """``a`` asks, ``t`` tells the oldest pending (FIFO); every ``fail_every``-th tell is a failure. ``vector``:
    results carry a second objective to minimise (``Result.objectives``: the sum of the choices)."""
    reward = target_reward(space)
    pending = [] if pending is None else pending
    asked: list[tuple[int, ...]] = []
    told = 0
    for op in script:
        if op == "a":
            arch = st.ask()
            asked.append(arch.choices)
            pending.append(arch)
        else:
            arch = pending.pop(0)
            told += 1
            if fail_every and told % fail_every == 0:
                st.tell(arch, Result.failure("boom"))
            elif vector:
                st.tell(arch, Result(reward(arch), objectives=(float(sum(arch.choices)),)))
            else:
                st.tell(arch, Result(reward(arch)))
    return asked


def sequences(options: dict[str, dict[str, Any]], n: int = 12) -> dict[str, list[list[int]]]:
    """Sequential ask/tell sequences of the named strategies (with their options) on the toy space, seed 7."""
    torch.set_num_threads(1)
    out = {}
    for name, opts in options.items():
        space = ToySpace()
        out[name] = [list(c) for c in run_script(get_strategy(name, space, seed=7, **opts), space, "at" * n)]
    return out


def best_after(st_of: Callable[[int], Strategy], space: SearchSpace, n: int, seeds: Sequence[int]) -> float:
    """Mean over seeds of the best hidden-target reward after ``n`` sequential queries."""
    reward = target_reward(space)
    best = []
    for s in seeds:
        st = st_of(s)
        b = -1.0
        for _ in range(n):
            a = st.ask()
            r = reward(a)
            st.tell(a, Result(r))
            b = max(b, r)
        best.append(b)
    return float(np.mean(best))


_CHILD = """
import importlib, json, sys
sys.path[:0] = json.loads(sys.argv[2])
for module in json.loads(sys.argv[3]):
    importlib.import_module(module)
from nasforge.testing.pytest_strategies import sequences
print(json.dumps(sequences(json.loads(sys.argv[1]))))
"""


class StrategySuite:
    """Subclass as ``class TestStrategies(StrategySuite)`` in a test file: every test runs per registered strategy.

    ``options``: options per strategy name (so that seeds matter for ``grid``); ``no_repeats``: strategies that
    promise never to ask an architecture twice; ``not_searching``: strategies exempt from beating random search
    (``random`` itself, ``grid`` which enumerates by design); ``slow_to_search``: strategies whose
    beat-random check is marked ``slow``; ``strategies`` limits the run to some names.
    """

    options: ClassVar[dict[str, dict[str, Any]]] = {"grid": {"shuffle": True}}
    no_repeats: ClassVar[frozenset[str]] = frozenset({"local", "surrogate", "grid", "nsga2", "pareto-local",
                                                      "mo-surrogate"})
    not_searching: ClassVar[frozenset[str]] = frozenset({"random", "grid"})
    slow_to_search: ClassVar[frozenset[str]] = frozenset({"bo", "mo-surrogate"})
    real_spaces: ClassVar[tuple[str, ...]] = ("nb201",)
    strategies: ClassVar[tuple[str, ...] | None] = None

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        names = list(self.strategies or list_strategies())
        if "strategy_name" in metafunc.fixturenames:
            if metafunc.definition.originalname == "test_improves_over_random_on_a_hidden_target":
                names = [n for n in names if n not in self.not_searching]
                metafunc.parametrize("strategy_name", [
                    pytest.param(n, marks=pytest.mark.slow) if n in self.slow_to_search else n for n in names])
            else:
                metafunc.parametrize("strategy_name", names)
        if "mo_strategy_name" in metafunc.fixturenames:
            metafunc.parametrize("mo_strategy_name", [n for n in names if n in list_strategies(multi_objective=True)])
        if "space_name" in metafunc.fixturenames:
            metafunc.parametrize("space_name", ["toy", "cond", *self.real_spaces])

    def strategy(self, name: str, space: SearchSpace, seed: int) -> Strategy:
        return get_strategy(name, space, seed=seed, **self.options.get(name, {}))

    @pytest.fixture(autouse=True)
    def _one_torch_thread(self) -> Any:
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(n)

    def test_asks_valid_architectures_only(self, strategy_name: str, space_name: str) -> None:
        space = make_space(space_name)
        st = self.strategy(strategy_name, space, 0)
        asked = run_script(st, space, "aat" * 12 + "t" * 12, fail_every=5)
        assert len(asked) == 24
        for c in asked:
            arch = space.decode(c)
            assert arch.space == space.name and arch.choices == c == space.canonical(c)
            assert space.parse(str(arch)) == arch

    def test_same_seed_same_sequence_other_seed_another(self, strategy_name: str) -> None:
        space = ToySpace()
        a = run_script(self.strategy(strategy_name, space, 3), space, "at" * 20)
        b = run_script(self.strategy(strategy_name, space, 3), space, "at" * 20)
        c = run_script(self.strategy(strategy_name, space, 4), space, "at" * 20)
        assert a == b
        assert a != c

    @pytest.mark.slow
    def test_same_seed_same_sequence_in_another_process(self, request: pytest.FixtureRequest) -> None:
        """The child imports the test's module first, so strategies registered there are known to it too."""
        names = list(self.strategies or list_strategies())
        options = {n: self.options.get(n, {}) for n in names}
        modules = [request.module.__name__] if request.module is not None else []
        proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(options), json.dumps(sys.path),
                               json.dumps(modules)], capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        theirs = json.loads(proc.stdout.strip().splitlines()[-1])
        assert theirs == sequences(options)
        assert set(theirs) == set(names)

    @pytest.mark.parametrize("toy_name", ["toy", "cond"])
    def test_state_round_trip_continues_identically(self, strategy_name: str, toy_name: str) -> None:
        """Save with 8 asks pending, load (through JSON) into a fresh strategy, continue: same as uninterrupted."""
        space = make_space(toy_name)
        head, tail = "aat" * 6 + "aa", "tt" + "aat" * 6 + "tt"
        whole = run_script(self.strategy(strategy_name, space, 11), space, head + tail)
        first = self.strategy(strategy_name, space, 11)
        pending: list[Architecture] = []
        asked = run_script(first, space, head, pending)
        assert len(pending) == 8
        state = json.loads(json.dumps(first.state_dict()))
        fresh = self.strategy(strategy_name, space, 11)
        fresh.load_state_dict(state)
        asked += run_script(fresh, space, tail, pending)
        assert asked == whole

    def test_state_of_another_strategy_is_refused(self, strategy_name: str) -> None:
        space = ToySpace()
        other = "random" if strategy_name != "random" else "evolution"
        with pytest.raises(NasforgeError, match="state of strategy"):
            self.strategy(strategy_name, space, 0).load_state_dict(self.strategy(other, space, 0).state_dict())

    def test_batch_ask_before_any_result(self, strategy_name: str) -> None:
        space = ToySpace()
        st = self.strategy(strategy_name, space, 5)
        reward = target_reward(space)
        seen: list[tuple[int, ...]] = []
        for _ in range(6):
            batch = [st.ask() for _ in range(4)]
            if strategy_name in self.no_repeats:
                assert len({a.choices for a in batch}) == 4
                assert not {a.choices for a in batch} & set(seen)
            for a in batch:
                st.tell(a, Result(reward(a)))
            seen += [a.choices for a in batch]
        assert len(seen) == 24

    def test_failures_and_results_of_unasked_architectures(self, strategy_name: str) -> None:
        """Only failures for a while, then a result for an architecture never asked: no crash, still valid asks."""
        space = ToySpace()
        st = self.strategy(strategy_name, space, 2)
        st.tell(space.decode([2, 2, 2, 2, 2, 2]), Result(1.0))  # before any ask (a warm start)
        for _ in range(12):
            st.tell(st.ask(), Result.failure("out of memory"))
        st.tell(space.decode([1, 2, 3, 0, 1, 2]), Result(3.0))
        st.tell(space.decode([3, 3, 3, 3, 3, 3]), Result(None, status="infeasible"))
        st.tell(space.decode([0, 0, 0, 0, 0, 0]), Result(float("nan")))
        asked = run_script(st, space, "at" * 10)
        assert all(space.decode(c).choices == c for c in asked)

    def test_improves_over_random_on_a_hidden_target(self, strategy_name: str) -> None:
        """Mean best reward after 60 queries over 5 seeds beats random search's."""
        space = ToySpace((5, 5, 5, 5, 5, 5, 5))
        mine = best_after(lambda s: self.strategy(strategy_name, space, s), space, 60, range(5))
        rand = best_after(lambda s: get_strategy("random", space, seed=s), space, 60, range(5))
        assert mine > rand, (mine, rand)

    def test_multi_objective_valid_deterministic_and_round_trip(self, mo_strategy_name: str) -> None:
        """Told two objectives (with failures and 8 asks pending at the save): valid asks, the same seed the same
        sequence, and a JSON state round trip continues identically."""
        space = make_space("nb201") if "nb201" in self.real_spaces else ToySpace()
        head, tail = "aat" * 10 + "aa", "tt" + "aat" * 10 + "tt"
        whole = run_script(self.strategy(mo_strategy_name, space, 11), space, head + tail, fail_every=7, vector=True)
        again = run_script(self.strategy(mo_strategy_name, space, 11), space, head + tail, fail_every=7, vector=True)
        assert whole == again
        for c in whole:
            arch = space.decode(c)
            assert arch.choices == c == space.canonical(c) and space.parse(str(arch)) == arch
        first = self.strategy(mo_strategy_name, space, 11)
        pending: list[Architecture] = []
        asked = run_script(first, space, head, pending, fail_every=7, vector=True)
        state = json.loads(json.dumps(first.state_dict()))
        fresh = self.strategy(mo_strategy_name, space, 11)
        fresh.load_state_dict(state)
        # the failure count restarts in the second script: tell with the same failure pattern as `whole`
        told_before = head.count("t")
        reward = target_reward(space)
        for op in tail:
            if op == "a":
                arch = fresh.ask()
                asked.append(arch.choices)
                pending.append(arch)
            else:
                arch = pending.pop(0)
                told_before += 1
                if told_before % 7 == 0:
                    fresh.tell(arch, Result.failure("boom"))
                else:
                    fresh.tell(arch, Result(reward(arch), objectives=(float(sum(arch.choices)),)))
        assert asked == whole
