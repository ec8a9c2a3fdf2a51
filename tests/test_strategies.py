"""Conformance suite every registered strategy runs (after Optuna's ``testing/pytest_samplers.py``).

Registering a strategy enrols it: valid architectures only, same seed same sequence (also in another
process), a JSON state round trip that continues identically (with asks still pending), batch asks,
failed results, and beating random search on a toy objective with a hidden target. Spaces: a toy
space, a conditional toy space (variable depth: inactive decisions), and ``nb201`` when registered.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nasforge.errors import NasforgeError
from nasforge.estimators import Result
from nasforge.spaces import Architecture, Decision, SearchSpace, get_space
from nasforge.strategies import Strategy, get_strategy, list_strategies

torch.set_num_threads(1)

STRATEGIES = list_strategies()
NO_REPEATS = {"local", "surrogate", "grid"}  # strategies that promise not to ask an architecture twice
OPTIONS: dict[str, dict[str, Any]] = {"grid": {"shuffle": True}}  # so that seeds matter for grid too


class ToySpace(SearchSpace):
    """Six decisions with 4 choices each (4,096 architectures); text like ``0-3-1-2-0-1``."""

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
    if name == "toy":
        return ToySpace()
    if name == "cond":
        return CondSpace()
    return get_space(name)


def target_reward(space: SearchSpace) -> Callable[[Architecture], float]:
    """Reward = number of decisions equal to a hidden target (the sum over active decisions)."""
    target = space.sample(np.random.default_rng(12345)).choices
    return lambda a: float(sum(int(x == t) for x, t in zip(a.choices, target, strict=True)))


def strategy(name: str, space: SearchSpace, seed: int) -> Strategy:
    return get_strategy(name, space, seed=seed, **OPTIONS.get(name, {}))


def run_script(st: Strategy, space: SearchSpace, script: str, pending: list[Architecture] | None = None,
               fail_every: int = 0) -> list[tuple[int, ...]]:
    """``a`` asks, ``t`` tells the oldest pending (FIFO); every ``fail_every``-th tell is a failure."""
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
            else:
                st.tell(arch, Result(reward(arch)))
    return asked


def sequences(n: int = 12) -> dict[str, list[list[int]]]:
    """Sequential ask/tell sequences of every strategy on the toy space (also run in a subprocess)."""
    torch.set_num_threads(1)
    out = {}
    for name in list_strategies():
        space = ToySpace()
        out[name] = [list(c) for c in run_script(strategy(name, space, 7), space, "at" * n)]
    return out


# -- the conformance suite -------------------------------------------------------------------------
@pytest.mark.parametrize("space_name", ["toy", "cond", "nb201"])
@pytest.mark.parametrize("name", STRATEGIES)
def test_asks_valid_architectures_only(name: str, space_name: str) -> None:
    space = make_space(space_name)
    st = strategy(name, space, 0)
    asked = run_script(st, space, "aat" * 12 + "t" * 12, fail_every=5)
    assert len(asked) == 24
    for c in asked:
        arch = space.decode(c)
        assert arch.space == space.name and arch.choices == c == space.canonical(c)
        assert space.parse(str(arch)) == arch


@pytest.mark.parametrize("name", STRATEGIES)
def test_same_seed_same_sequence_other_seed_another(name: str) -> None:
    space = ToySpace()
    a = run_script(strategy(name, space, 3), space, "at" * 20)
    b = run_script(strategy(name, space, 3), space, "at" * 20)
    c = run_script(strategy(name, space, 4), space, "at" * 20)
    assert a == b
    assert a != c


@pytest.mark.slow
def test_same_seed_same_sequence_in_another_process() -> None:
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import test_strategies as t; "
            "print(json.dumps(t.sequences()))")
    proc = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    assert theirs == sequences()
    assert set(theirs) == set(STRATEGIES)


@pytest.mark.parametrize("space_name", ["toy", "cond"])
@pytest.mark.parametrize("name", STRATEGIES)
def test_state_round_trip_continues_identically(name: str, space_name: str) -> None:
    """Save with two asks pending, load (through JSON) into a fresh strategy, continue: same as uninterrupted."""
    space = make_space(space_name)
    head, tail = "aat" * 6 + "aa", "tt" + "aat" * 6 + "tt"
    whole = run_script(strategy(name, space, 11), space, head + tail)
    first = strategy(name, space, 11)
    pending: list[Architecture] = []
    asked = run_script(first, space, head, pending)
    assert len(pending) == 8
    state = json.loads(json.dumps(first.state_dict()))
    fresh = strategy(name, space, 11)
    fresh.load_state_dict(state)
    asked += run_script(fresh, space, tail, pending)
    assert asked == whole


@pytest.mark.parametrize("name", STRATEGIES)
def test_state_of_another_strategy_is_refused(name: str) -> None:
    space = ToySpace()
    other = "random" if name != "random" else "evolution"
    with pytest.raises(NasforgeError, match="state of strategy"):
        strategy(name, space, 0).load_state_dict(strategy(other, space, 0).state_dict())


@pytest.mark.parametrize("name", STRATEGIES)
def test_batch_ask_before_any_result(name: str) -> None:
    space = ToySpace()
    st = strategy(name, space, 5)
    reward = target_reward(space)
    seen: list[tuple[int, ...]] = []
    for _ in range(6):
        batch = [st.ask() for _ in range(4)]
        if name in NO_REPEATS:
            assert len({a.choices for a in batch}) == 4
            assert not {a.choices for a in batch} & set(seen)
        for a in batch:
            st.tell(a, Result(reward(a)))
        seen += [a.choices for a in batch]
    assert len(seen) == 24


@pytest.mark.parametrize("name", STRATEGIES)
def test_failures_and_results_of_unasked_architectures(name: str) -> None:
    """Only failures for a while, then a result for an architecture never asked: no crash, still valid asks."""
    space = ToySpace()
    st = strategy(name, space, 2)
    st.tell(space.decode([2, 2, 2, 2, 2, 2]), Result(1.0))  # before any ask (a warm start)
    for _ in range(12):
        st.tell(st.ask(), Result.failure("out of memory"))
    st.tell(space.decode([1, 2, 3, 0, 1, 2]), Result(3.0))
    st.tell(space.decode([3, 3, 3, 3, 3, 3]), Result(None, status="infeasible"))
    st.tell(space.decode([0, 0, 0, 0, 0, 0]), Result(float("nan")))
    asked = run_script(st, space, "at" * 10)
    assert all(space.decode(c).choices == c for c in asked)


def best_after(name: str, space: SearchSpace, n: int, seeds: Sequence[int]) -> float:
    reward = target_reward(space)
    best = []
    for s in seeds:
        st = strategy(name, space, s)
        b = -1.0
        for _ in range(n):
            a = st.ask()
            r = reward(a)
            st.tell(a, Result(r))
            b = max(b, r)
        best.append(b)
    return float(np.mean(best))


@pytest.mark.parametrize("name", [n for n in STRATEGIES if n not in ("random", "grid")])
def test_improves_over_random_on_a_hidden_target(name: str) -> None:
    """Mean best reward after 60 queries over 5 seeds beats random search's (grid enumerates by design)."""
    space = ToySpace((5, 5, 5, 5, 5, 5, 5))
    mine = best_after(name, space, 60, range(5))
    rand = best_after("random", space, 60, range(5))
    assert mine > rand, (mine, rand)


# -- options and errors ---------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "options", "match"), [
    ("nope", {}, "unknown strategy 'nope'"),
    ("evolution", {"population": 0}, "population=0"),
    ("evolution", {"crossover": 1.5}, "crossover=1.5"),
    ("evolution", {"colour": "red"}, "bad option for strategy 'evolution'"),
    ("local", {"init": -1}, "init=-1"),
    ("bo", {"sampler": "cmaes"}, "unknown bo sampler 'cmaes'"),
    ("reinforce", {"lr": 0}, "lr=0"),
    ("grid", {"decisions": ["d9"]}, "unknown decision 'd9'"),
    ("grid", {"fixed": {"d0": 7}}, "7 is not a choice of 'd0'"),
    ("grid", {"decisions": ["d0"], "fixed": {"d0": 1}}, "both on the grid and fixed"),
])
def test_bad_options_raise_one_line(name: str, options: dict[str, Any], match: str) -> None:
    with pytest.raises(NasforgeError, match=match) as e:
        get_strategy(name, ToySpace(), seed=0, **options)
    assert "\n" not in str(e.value)


# -- strategy specifics ---------------------------------------------------------------------------
def test_evolution_ages_out_the_oldest_and_fills_the_population_at_random_first() -> None:
    space = ToySpace()
    st = get_strategy("evolution", space, seed=0, population=4, sample=2)
    first = [st.ask() for _ in range(4)]  # 4 asks before any result: the random initial population
    for i, a in enumerate(first):
        st.tell(a, Result(float(i)))
    child = st.ask()
    assert any(sum(int(x != y) for x, y in zip(child.choices, a.choices, strict=True)) == 1 for a in first)
    st.tell(child, Result(10.0))
    pop = st.state_dict()["population"]  # type: ignore[attr-defined]
    assert len(pop) == 4 and pop[-1] == [list(child.choices), 10.0]
    assert [list(a.choices) for a in first[1:]] == [p[0] for p in pop[:3]]  # the oldest left, not the worst


def test_evolution_children_are_one_mutation_from_a_member() -> None:
    space = ToySpace()
    st = get_strategy("evolution", space, seed=1, population=5, sample=5)
    reward = target_reward(space)
    for _ in range(5):
        a = st.ask()
        st.tell(a, Result(reward(a)))
    members = [tuple(c) for c, _ in st.state_dict()["population"]]  # type: ignore[attr-defined]
    best = members[int(np.argmax([r for _, r in st.state_dict()["population"]]))]  # type: ignore[attr-defined]
    child = st.ask().choices
    assert sum(int(x != y) for x, y in zip(child, best, strict=True)) == 1  # sample = population: the best


def test_local_search_reaches_the_hidden_target() -> None:
    space = ToySpace()
    reward = target_reward(space)
    st = get_strategy("local", space, seed=0)
    best = 0.0
    for _ in range(150):
        a = st.ask()
        best = max(best, reward(a))
        st.tell(a, Result(reward(a)))
    assert best == 6.0


def test_grid_enumerates_the_product_once_and_filters_before_asking() -> None:
    space = ToySpace()
    st = get_strategy("grid", space, seed=0, decisions=["d1", "d3"], fixed={"d0": 2},
                      feasible=lambda a: a.choices[1] != 3)
    asked = []
    with pytest.raises(StopIteration):
        for _ in range(100):
            asked.append(st.ask())
    assert [(a.choices[1], a.choices[3]) for a in asked] == [(i, j) for i in range(3) for j in range(4)]
    assert all(a.choices[0] == 2 for a in asked)
    assert st.skipped == 4 and st.done  # type: ignore[attr-defined]


def test_grid_with_nothing_feasible_says_so() -> None:
    st = get_strategy("grid", ToySpace(), seed=0, decisions=["d0"], feasible=lambda a: False)
    with pytest.raises(NasforgeError, match="none of the 4 grid points is feasible"):
        st.ask()


@pytest.mark.slow
def test_reinforce_concentrates_on_good_choices() -> None:
    """After training on the hidden target the controller samples it far more often than uniform (1/4)."""
    space = ToySpace((4, 4))
    reward = target_reward(space)
    st = get_strategy("reinforce", space, seed=0, lr=0.05, batch=1)
    for _ in range(150):
        a = st.ask()
        st.tell(a, Result(reward(a)))
    hits = sum(reward(st.ask()) == 2.0 for _ in range(40))
    assert hits >= 15, hits


def test_bo_tells_optuna_failures_and_unasked_architectures() -> None:
    space = ToySpace()
    st = get_strategy("bo", space, seed=0)
    a = st.ask()
    st.tell(a, Result.failure("x"))
    st.tell(space.decode([1, 1, 1, 1, 1, 1]), Result(4.0))
    states = [t.state.name for t in st.study.trials]  # type: ignore[attr-defined]
    values = [t.value for t in st.study.trials]  # type: ignore[attr-defined]
    assert states == ["FAIL", "COMPLETE"] and values[1] == 4.0


# -- compound scaling -----------------------------------------------------------------------------
def macs(d: float, w: float, r: float) -> float:
    """A toy network: 10 layers x 32 channels at 32x32, rounded to whole layers, channels, pixels."""
    layers, ch, res = round(10 * d), round(32 * w), round(32 * r)
    return float(layers * ch * ch * 9 * res * res)


def test_compound_scaling_keeps_the_rule_and_fits_the_budget() -> None:
    from nasforge.strategies import compound_scaling

    budget = 8 * macs(1, 1, 1)
    cs = compound_scaling(macs, budget)
    assert abs(cs.alpha * cs.beta**2 * cs.gamma**2 - 2.0) <= 0.1
    assert min(cs.alpha, cs.beta, cs.gamma) >= 1.0
    assert cs.cost == macs(cs.depth, cs.width, cs.resolution) <= budget
    nxt = cs.phi + 0.01
    assert macs(cs.alpha**nxt, cs.beta**nxt, cs.gamma**nxt) > budget
    assert 2.5 < cs.phi < 3.5  # cost roughly doubles per unit of phi
    assert (cs.depth, cs.width, cs.resolution) == (cs.alpha**cs.phi, cs.beta**cs.phi, cs.gamma**cs.phi)


def test_compound_scaling_takes_the_best_scoring_coefficients() -> None:
    from nasforge.strategies import compound_scaling

    cs = compound_scaling(macs, 4 * macs(1, 1, 1), score=lambda a, b, g: -abs(a - 1.2) - abs(b - 1.1) - abs(g - 1.15))
    assert (cs.alpha, cs.beta, cs.gamma) == (1.2, 1.1, 1.15)  # EfficientNet-B0's coefficients


def test_compound_scaling_bad_budget() -> None:
    from nasforge.strategies import compound_scaling

    with pytest.raises(NasforgeError, match="below the base network's cost"):
        compound_scaling(macs, 10.0)


# -- real data: NAS-Bench-201 -----------------------------------------------------------------------
def test_local_beats_random_on_real_nb201(shared_data: Path) -> None:
    """12-epoch validation accuracy as reward, 15 seeds x 50 queries: local search finds better cells."""
    csv = shared_data / "nb201_nats_tss" / "nb201_12ep_acc_minibench.csv"
    import csv as csvlib

    space = get_space("nb201")
    with csv.open(newline="") as f:
        table = {row["cellstr"]: float(row["cifar10-val"]) for row in csvlib.DictReader(f)}

    def mean_best(name: str) -> float:
        out = []
        for s in range(15):
            st = get_strategy(name, space, seed=s)
            best = 0.0
            for _ in range(50):
                a = st.ask()
                r = float(table[str(a)])
                best = max(best, r)
                st.tell(a, Result(r))
            out.append(best)
        return float(np.mean(out))

    assert mean_best("local") > mean_best("random")


def test_random_unique_asks_every_architecture_once_before_repeating() -> None:
    space = ToySpace((2, 3))
    st = get_strategy("random", space, seed=0, unique=True)
    first = [st.ask().choices for _ in range(6)]
    assert len(set(first)) == 6
    assert st.ask().choices in set(first)  # the space ran out: repeats are allowed again


def test_surrogate_order_reaches_the_target_sooner_than_random_order() -> None:
    """Same local search, neighbours asked best-predicted first: fewer queries to the hidden target."""
    space = ToySpace((5, 5, 5, 5, 5, 5, 5))
    reward = target_reward(space)

    def queries_to_target(name: str, seed: int) -> int:
        st = get_strategy(name, space, seed=seed)
        for q in range(1, 400):
            a = st.ask()
            if reward(a) == 7.0:
                return q
            st.tell(a, Result(reward(a)))
        return 400

    plain = np.mean([queries_to_target("local", s) for s in range(5)])
    guided = np.mean([queries_to_target("surrogate", s) for s in range(5)])
    assert guided < plain, (guided, plain)


@pytest.mark.slow
def test_bo_with_the_gp_sampler_asks_valid_archs_and_resumes_identically() -> None:
    space = ToySpace((3, 3, 3))
    whole = run_script(get_strategy("bo", space, seed=1, sampler="gp", startup=3), space, "at" * 8)
    first = get_strategy("bo", space, seed=1, sampler="gp", startup=3)
    asked = run_script(first, space, "at" * 5)
    fresh = get_strategy("bo", space, seed=1, sampler="gp", startup=3)
    fresh.load_state_dict(json.loads(json.dumps(first.state_dict())))
    asked += run_script(fresh, space, "at" * 3)
    assert asked == whole and all(space.decode(c).choices == c for c in asked)
