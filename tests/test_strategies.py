"""Strategy specifics: option errors, evolution, local search, grid, REINFORCE, BO, surrogate order, compound
scaling, and local search on the real NB201 table. The conformance suite every strategy runs is
``nasforge.testing.pytest_strategies`` (run by test_strategies_conformance.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nasforge.errors import NasforgeError
from nasforge.estimators import Result
from nasforge.spaces import get_space
from nasforge.strategies import get_strategy
from nasforge.testing.pytest_strategies import ToySpace, run_script, target_reward

torch.set_num_threads(1)


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
