"""The training estimator learns, is deterministic, records failures; multi-fidelity keeps the best."""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

import pytest
import torch
from torch import nn

from nasforge.cost import Cost, profile
from nasforge.data import load_dataset
from nasforge.errors import NasforgeError
from nasforge.estimators import EarlyStopping, Estimator, Result, TrainingEstimator, hyperband, successive_halving
from nasforge.estimators._multifidelity import best_of, rung_epochs
from nasforge.spaces import Architecture, Decision, SearchSpace

torch.set_num_threads(1)


class _Boom(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom\nsecond line")


class _NaN(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float("nan")


class TinySpace(SearchSpace):
    """Small CNNs on 1-channel images; the ``kind`` decision also makes broken candidates."""

    name = "tiny"

    def __init__(self, resolution: int | None = None) -> None:
        self.resolution = resolution

    def decisions(self) -> list[Decision]:
        return [Decision("width", (8, 16)), Decision("kind", ("ok", "boom", "nan"))]

    def format(self, choices: tuple[int, ...]) -> str:
        return f"w{(8, 16)[choices[0]]}-{('ok', 'boom', 'nan')[choices[1]]}"

    def parse(self, text: str) -> Architecture:
        raise NotImplementedError

    def input_shape(self, arch: Architecture) -> tuple[int, ...]:
        if self.resolution is None:
            raise NotImplementedError
        return (1, self.resolution, self.resolution)

    def cost(self, arch: Architecture, resolution: int | None = None, precision: str = "fp32") -> Cost:
        return profile(self.build(self.decode([arch.choices[0], 0]), 10), (1, 8, 8), precision)

    def build(self, arch: Architecture, num_classes: int | None = None, **options: Any) -> nn.Module:
        w = (8, 16)[arch.choices[0]]
        layers: list[nn.Module] = [nn.Conv2d(1, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
                                   nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
                                   nn.Flatten(), nn.LazyLinear(num_classes or 10)]
        kind = arch.choices[1]
        if kind == 1:
            layers.insert(3, _Boom())
        elif kind == 2:
            layers.insert(3, _NaN())
        net = nn.Sequential(*layers)
        side = self.resolution or 8
        net(torch.zeros(2, 1, side, side))  # materialise the lazy layer
        return net


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_dataset("digits")


@pytest.mark.slow
def test_learns_digits_quickly_and_reports_everything(digits) -> None:  # type: ignore[no-untyped-def]
    space = TinySpace()
    est = TrainingEstimator(space, digits, epochs=4, batch_size=64)
    assert isinstance(est, Estimator)
    r = est.evaluate(space.decode([1, 0]))
    assert r.ok and r.status == "ok"
    assert r.reward is not None and r.reward > 0.8  # chance is 0.1
    assert r.metrics["val_acc"] == r.reward and r.metrics["epochs"] == 4
    assert r.metrics["images_per_s"] > 0 and math.isfinite(r.metrics["train_loss"])
    assert r.cost["params"] == r.metrics["params"] > 0 and r.seconds > 0
    final, model = est.final_evaluate(space.decode([1, 0]))
    assert model is not None and not model.training
    assert final.metrics["test_acc"] > 0.8 and final.reward == r.reward


@pytest.mark.slow
def test_same_seed_same_result_other_seed_differs(digits) -> None:  # type: ignore[no-untyped-def]
    space = TinySpace()
    arch = space.decode([0, 0])
    a = TrainingEstimator(space, digits, epochs=2, batch_size=64, seed=3).evaluate(arch)
    torch.manual_seed(12345)  # the caller's global RNG must not matter
    b = TrainingEstimator(space, digits, epochs=2, batch_size=64, seed=3).evaluate(arch)
    c = TrainingEstimator(space, digits, epochs=2, batch_size=64, seed=4).evaluate(arch)
    assert (a.reward, a.metrics["train_loss"]) == (b.reward, b.metrics["train_loss"])
    assert a.metrics["train_loss"] != c.metrics["train_loss"]
    assert not torch.are_deterministic_algorithms_enabled()  # the global setting is restored after training


def test_failing_and_nan_candidates_are_recorded(digits) -> None:  # type: ignore[no-untyped-def]
    space = TinySpace()
    est = TrainingEstimator(space, digits, epochs=1, batch_size=128)
    with pytest.raises(RuntimeError):
        space.build(space.decode([0, 1]), 10)  # the candidate itself raises
    boom = est.evaluate(space.decode([0, 1]))
    assert boom.status == "failed" and boom.reward is None and boom.error == "RuntimeError: boom"
    nan = est.evaluate(space.decode([0, 2]))
    assert nan.status == "failed" and nan.error is not None and nan.error.startswith("non-finite")
    assert est.evaluate(space.decode([0, 0])).ok  # and the next candidate trains fine
    result, model = est.final_evaluate(space.decode([0, 2]))
    assert model is None and result.status == "failed"


def test_data_is_resized_to_the_space_input_shape(digits) -> None:  # type: ignore[no-untyped-def]
    space = TinySpace(resolution=12)
    r = TrainingEstimator(space, digits, epochs=1, batch_size=128).evaluate(space.decode([0, 0]))
    assert r.ok, r.error


def test_bad_options_raise() -> None:
    ds = load_dataset("digits", subset=(64, 16, 16))
    for kw, msg in [({"optimizer": "rmsprop"}, "unknown optimizer"), ({"schedule": "step"}, "unknown schedule"),
                    ({"device_torch": "tpu"}, "unknown torch device"), ({"epochs": 0}, "epochs")]:
        with pytest.raises(NasforgeError, match=msg):
            TrainingEstimator(TinySpace(), ds, **kw)


def _space_and_scores() -> tuple[TinySpace, list[Architecture], dict[tuple[int, ...], float]]:
    space = TinySpace()
    archs = [space.decode([w, k]) for w in range(2) for k in range(3)]
    quality = {a.choices: 0.1 * (i + 1) for i, a in enumerate(archs)}
    return space, archs, quality


def test_successive_halving_keeps_top_third() -> None:
    _, archs, quality = _space_and_scores()
    calls: list[tuple[str, int]] = []

    def evaluate(arch: Architecture, epochs: int) -> Result:
        calls.append((str(arch), epochs))
        if arch.choices == (0, 2):
            return Result.failure("nan")
        return Result(quality[arch.choices] * epochs / 9, {"epochs": epochs})

    assert rung_epochs(1, 9, 3) == [1, 3, 9] and rung_epochs(2, 10, 3) == [3, 10]
    rungs = successive_halving(archs, evaluate, min_epochs=1, max_epochs=9, eta=3)
    assert [(r.epochs, len(r.results)) for r in rungs] == [(1, 6), (3, 2), (9, 1)]
    assert [str(a) for a, _ in rungs[1].results] == ["w16-boom", "w16-nan"]
    best = best_of(rungs)
    assert best is not None and str(best[0]) == "w16-nan"
    assert len(calls) == 9
    brackets = hyperband(iter(archs * 10).__next__, evaluate, max_epochs=9, eta=3)
    # ceil(3/(s+1) * 3^s) = 9, 5, 3 draws; repeated draws are evaluated once (only 6 archs exist)
    assert [len(b[0].results) for b in brackets] == [6, 5, 3]
    assert [b[0].epochs for b in brackets] == [1, 3, 9]


class _FakeRungEstimator:
    """Reports a fixed accuracy per architecture at every rung."""

    epochs = 9

    def __init__(self, acc: dict[tuple[int, ...], float]) -> None:
        self.acc = acc

    def evaluate(self, arch: Architecture, epochs: int | None = None, *, rungs: Collection[int] = (),
                 on_rung: Any = None) -> Result:
        for e in sorted(rungs):
            reason = on_rung(e, self.acc[arch.choices]) if on_rung else None
            if reason:
                return Result(None, {"val_acc": self.acc[arch.choices], "epochs": e}, {}, 0.0, "pruned", reason)
        return Result(self.acc[arch.choices], {"epochs": 9})


def test_early_stopping_prunes_below_top_fraction_in_call_order() -> None:
    _, archs, quality = _space_and_scores()
    order = [archs[i] for i in (2, 0, 4, 1, 5, 3)]  # accuracies 0.3, 0.1, 0.5, 0.2, 0.6, 0.4
    es = EarlyStopping(_FakeRungEstimator(quality), eta=3)
    assert es.rungs == (1, 3)
    statuses = [es.evaluate(a).status for a in order]
    # the first 3 only fill the history; then 0.2 < best-of-3 (0.5) is pruned, 0.6 goes on, 0.4 < 0.5 pruned
    assert statuses == ["ok", "ok", "ok", "pruned", "ok", "pruned"]
    again = EarlyStopping(_FakeRungEstimator(quality), eta=3)
    again.load_state_dict(es.state_dict())
    assert again.history == es.history
    with pytest.raises(NasforgeError, match="rungs"):
        EarlyStopping(_FakeRungEstimator(quality), rungs=[9])


def test_early_stopping_with_real_training(digits) -> None:  # type: ignore[no-untyped-def]
    space = TinySpace()
    est = TrainingEstimator(space, digits, epochs=2, batch_size=128)
    es = EarlyStopping(est, eta=2, rungs=[1], min_history=1)
    first = es.evaluate(space.decode([1, 0]))
    second = es.evaluate(space.decode([0, 0]))
    assert first.ok and len(es.history[1]) == 2
    if second.status == "pruned":
        assert second.reward is None and second.metrics["epochs"] == 1 and "pruned at epoch 1" in str(second.error)
        assert second.metrics["val_acc"] < es.history[1][0]
    else:
        assert second.ok and es.history[1][1] >= es.history[1][0]
