"""The conformance suite of estimators: ``EstimatorSuite``.

Estimators have no registry (they are built from a space, data and settings), so the suite runs over
``cases``: named builders of an ``EstimatorCase`` (the estimator, architectures it can evaluate, architectures
it cannot). Every case: results keep the ``Result`` contract (status one of ``STATUSES``, reward a number
only when ok and a fraction in [0, 1] when it is an accuracy, accuracy metrics fractions, cost keys those of
``Cost.to_dict``, a JSON round trip), evaluation neither mutates nor depends on call order (the same
architecture gives the same reward again and from a fresh estimator), and an architecture it cannot evaluate
(not in its table, of another space) is one clear line: a ``NasforgeError`` naming it or a failed ``Result``
with the error, never a ``KeyError`` or a traceback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from nasforge.errors import NasforgeError
from nasforge.estimators import STATUSES, Estimator, Result
from nasforge.spaces import Architecture, SearchSpace, get_space
from nasforge.testing.pytest_strategies import ToySpace


@dataclass
class EstimatorCase:
    """An estimator with architectures it evaluates (``archs``) and ones it cannot (``unknown``).

    ``reward_is_fraction``: the reward is an accuracy (a fraction in [0, 1]); False for scores such as
    zero-cost proxies. An architecture of another space is always added to ``unknown`` by the suite.
    """

    space: SearchSpace
    estimator: Estimator
    archs: Sequence[Architecture]
    unknown: Sequence[Architecture] = field(default_factory=list)
    reward_is_fraction: bool = True


def tabular_case(tmp: Path) -> EstimatorCase:
    """A table of 30 toy architectures with fractions as rewards and a time column."""
    from nasforge.estimators import TabularEstimator

    space = ToySpace()
    rng = np.random.default_rng(0)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(40)))
    table, unknown = archs[:30], archs[30:]
    path = tmp / "table.csv"
    rows = "".join(f"{a},{rng.uniform(0.1, 0.95):.4f},{rng.uniform(0.1, 0.95):.4f},{rng.integers(10, 99)}\n"
                   for a in table)
    path.write_text("arch,val,test,secs\n" + rows)
    est = TabularEstimator(path, "arch", "val", final_col="test", time_col="secs", space=space)
    return EstimatorCase(space, est, table[:6], unknown)


def _tiny_nb201() -> SearchSpace:
    return get_space("nb201", C=4, N=1, resolution=8)


def training_case(tmp: Path) -> EstimatorCase:
    """One epoch of training tiny NB201 cells on a small subset of digits."""
    from nasforge.data import load_dataset
    from nasforge.estimators import TrainingEstimator

    space = _tiny_nb201()
    data = load_dataset("digits", subset=(128, 64, 64))
    est = TrainingEstimator(space, data, epochs=1, batch_size=32, seed=0, num_threads=1)
    return EstimatorCase(space, est, [space.sample(np.random.default_rng(s)) for s in range(2)])


def zero_cost_case(tmp: Path) -> EstimatorCase:
    """The synflow proxy (a log score, not a fraction) on tiny NB201 cells."""
    from nasforge.estimators import ZeroCostEstimator

    space = _tiny_nb201()
    est = ZeroCostEstimator(space, "synflow", batch_size=4, seed=0)
    return EstimatorCase(space, est, [space.sample(np.random.default_rng(s)) for s in range(3)],
                         reward_is_fraction=False)


def supernet_case(tmp: Path) -> EstimatorCase:
    """Inherited weights of a tiny NB201 supernet after one SPOS epoch on random images (one-shot's estimator)."""
    from nasforge.oneshot import SupernetEstimator, make_supernet, spos

    space = _tiny_nb201()
    net = make_supernet(space, seed=0)
    g = torch.Generator().manual_seed(0)
    train = torch.randn(32, *net.input_shape(), generator=g), torch.randint(0, 10, (32,), generator=g)
    val = torch.randn(16, *net.input_shape(), generator=g), torch.randint(0, 10, (16,), generator=g)
    spos(net, train, epochs=1, batch_size=16, seed=0)
    est = SupernetEstimator(net, train, val, calib_batches=1, batch_size=16)
    return EstimatorCase(space, est, [space.sample(np.random.default_rng(s)) for s in range(3)])


#: the built-in cases: one per estimator the library ships
CASES: dict[str, Callable[[Path], EstimatorCase]] = {
    "tabular": tabular_case,
    "training": training_case,
    "zero-cost": zero_cost_case,
    "supernet": supernet_case,
}


def _is_accuracy(metric: str) -> bool:
    return metric.endswith("acc") or metric.endswith("_accuracy") or metric == "accuracy"


class EstimatorSuite:
    """Subclass as ``class TestEstimators(EstimatorSuite)``; add your estimator to ``cases``::

        cases = {**EstimatorSuite.cases, "mine": lambda tmp: EstimatorCase(space, MyEstimator(...), archs)}
    """

    cases: ClassVar[dict[str, Callable[[Path], EstimatorCase]]] = CASES

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "estimator_name" in metafunc.fixturenames:
            metafunc.parametrize("estimator_name", list(self.cases))

    @pytest.fixture
    def case(self, estimator_name: str, tmp_path: Path) -> EstimatorCase:
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self.cases[estimator_name](tmp_path)
        finally:
            torch.set_num_threads(n)

    def test_results_keep_the_result_contract(self, case: EstimatorCase) -> None:
        assert case.archs, "a case needs architectures its estimator can evaluate"
        for arch in case.archs:
            before = (str(arch), hash(arch))
            r = case.estimator.evaluate(arch)
            assert (str(arch), hash(arch)) == before
            assert isinstance(r, Result) and r.status in STATUSES, r
            assert r.status == "ok", f"{arch}: {r.status} ({r.error})"  # the case's archs must evaluate
            assert isinstance(r.reward, int | float) and math.isfinite(r.reward), r.reward
            if case.reward_is_fraction:
                assert 0.0 <= r.reward <= 1.0, f"reward {r.reward} is not a fraction in [0, 1]"
            for k, v in r.metrics.items():
                assert isinstance(v, int | float), (k, v)
                if _is_accuracy(k):
                    assert 0.0 <= v <= 1.0, f"metric {k}={v} is not a fraction in [0, 1]"
            if r.cost:
                allowed = set(case.space.cost(arch).to_dict(layers=False))
                assert set(r.cost) <= allowed, f"cost keys {sorted(set(r.cost) - allowed)} are not Cost keys"
            assert r.seconds >= 0.0
            assert Result.from_dict(json.loads(json.dumps(r.to_dict()))) == r

    def test_same_architecture_same_reward(self, case: EstimatorCase, estimator_name: str, tmp_path: Path) -> None:
        """Again from the same estimator after another architecture, and from a fresh one: the same reward."""
        first = [case.estimator.evaluate(a).reward for a in case.archs]
        again = [case.estimator.evaluate(a).reward for a in reversed(case.archs)][::-1]
        (tmp_path / "fresh").mkdir()
        fresh_case = self.cases[estimator_name](tmp_path / "fresh")
        fresh = [fresh_case.estimator.evaluate(a).reward for a in case.archs]
        assert first == again == fresh

    def test_unknown_architecture_is_a_clear_error(self, case: EstimatorCase) -> None:
        foreign = ToySpace((2, 2)).decode([1, 0]) if case.space.name != "toy" else \
            get_space("nb201", C=4, N=1, resolution=8).decode([0] * 6)
        for arch in [*case.unknown, foreign]:
            try:
                r = case.estimator.evaluate(arch)
            except NasforgeError as e:  # naming the architecture, or the space it belongs to
                assert (str(arch) in str(e) or repr(arch.space) in str(e)) and "\n" not in str(e), str(e)
                continue
            assert isinstance(r, Result) and r.status == "failed" and r.error, (str(arch), r)
            assert r.reward is None
