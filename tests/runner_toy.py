"""A toy space, a tell-dependent strategy and estimators for the runner tests (no other engineer's code).

Also runnable as a script (the kill-and-resume test starts it in a subprocess):
``python runner_toy.py OUT_DIR BUDGET WORKERS DELAY [--resume] [--mo]`` prints ``done`` at the end (``--mo``: the
multi-objective strategy ``nsga2`` on reward and params instead of ``MutateBest``; ``--ray HOST:PORT``: evaluate on
that Ray cluster).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from nasforge.cost import Cost
from nasforge.errors import NasforgeError
from nasforge.estimators import Result
from nasforge.spaces import Architecture, Decision, SearchSpace


class ToySpace(SearchSpace):
    """Five decisions with four choices each; cost grows with the choices."""

    name = "toy"

    def decisions(self) -> list[Decision]:
        return [Decision(f"d{i}", (0, 1, 2, 3)) for i in range(5)]

    def format(self, choices: tuple[int, ...]) -> str:
        return "-".join(str(c) for c in choices)

    def parse(self, text: str) -> Architecture:
        try:
            choices = [int(p) for p in text.split("-")]
        except ValueError:
            raise NasforgeError(f"toy: bad arch {text!r}") from None
        return self.decode(choices)

    def cost(self, arch: Architecture, resolution: int | None = None, precision: str = "fp32") -> Cost:
        s = sum(arch.choices)
        return Cost(params=1000 * (1 + s), macs=10_000 * (1 + s), other_ops=0, activations=100 + s,
                    peak_activations=50 + s, input_shape=(3, 8, 8), output_shape=(10,), precision=precision)

    def build(self, arch: Architecture, num_classes: int | None = None, **options: Any) -> Any:
        raise NotImplementedError


def toy_reward(choices: Sequence[int]) -> float:
    """A deterministic objective with one optimum at (3, 1, 2, 0, 3)."""
    target = (3, 1, 2, 0, 3)
    return 1.0 - sum(abs(a - b) for a, b in zip(choices, target, strict=True)) / 15.0


class MutateBest:
    """Half the time sample, else mutate the best told so far: its asks depend on its tells."""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space, self.rng = space, np.random.default_rng(seed)
        self.best: tuple[float, Architecture] | None = None
        self.told = 0

    def ask(self) -> Architecture:
        if self.best is None or self.rng.random() < 0.5:
            return self.space.sample(self.rng)
        return self.space.mutate(self.best[1], self.rng)

    def tell(self, arch: Architecture, result: Result) -> None:
        self.told += 1
        if result.ok and result.reward is not None and (self.best is None or result.reward > self.best[0]):
            self.best = (result.reward, arch)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": dict(self.rng.bit_generator.state), "told": self.told,
                "best": None if self.best is None else [self.best[0], list(self.best[1].choices)]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.told = state["told"]
        b = state["best"]
        self.best = None if b is None else (b[0], self.space.decode(b[1]))


class ToyEstimator:
    """Reward from ``toy_reward``; fails on archs whose first choice is 2 (to test failure handling)."""

    def __init__(self, delay: float = 0.0, fail_first: int | None = None) -> None:
        self.delay, self.fail_first = delay, fail_first

    def evaluate(self, arch: Architecture) -> Result:
        if self.delay:
            time.sleep(self.delay)
        if self.fail_first is not None and arch.choices[0] == self.fail_first:
            raise RuntimeError(f"boom on {arch}")
        r = toy_reward(arch.choices)
        return Result(r, {"acc": r, "half": r / 2}, {"flash": float(sum(arch.choices))}, 0.25)


def main(argv: list[str]) -> None:
    from nasforge.runner import run_search

    out, budget, workers, delay = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    space = ToySpace()
    mo = "--mo" in argv  # a multi-objective search (nsga2 on reward and params), for the MO kill-and-resume test
    res = run_search(space, "nsga2" if mo else MutateBest(space, seed=7), ToyEstimator(delay, fail_first=2), budget,
                     constraints=["macs<=120e3"], seed=7, out_dir=out, workers=workers, resume="--resume" in argv,
                     objectives=["params"] if mo else None,
                     **({"backend": "ray", "ray_address": argv[argv.index("--ray") + 1]} if "--ray" in argv else {}))
    print("done", len(res.trials), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
