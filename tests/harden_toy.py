"""Estimators that misbehave the way issue 17 saw (hang, get killed), for the worker and fault tests.

They live in a module of their own so that spawned pool workers can import them by name.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from nasforge.estimators import Result
from nasforge.spaces import Architecture
from runner_toy import toy_reward


class Hangs:
    """Hangs (sleeps ``seconds``) on archs whose first choice is ``bad``; else the toy reward."""

    def __init__(self, bad: int = 3, seconds: float = 120.0, delay: float = 0.0) -> None:
        self.bad, self.seconds, self.delay = bad, seconds, delay

    def evaluate(self, arch: Architecture) -> Result:
        if arch.choices[0] == self.bad:
            time.sleep(self.seconds)
        elif self.delay:
            time.sleep(self.delay)
        r = toy_reward(arch.choices)
        return Result(r, {"acc": r}, {}, 0.1)


class GetsKilled:
    """Its process is SIGKILLed (as by the OOM killer) on archs whose first choice is ``bad``."""

    def __init__(self, bad: int = 3) -> None:
        self.bad = bad

    def evaluate(self, arch: Architecture) -> Result:
        if arch.choices[0] == self.bad:
            os.kill(os.getpid(), signal.SIGKILL)
        r = toy_reward(arch.choices)
        return Result(r, {"acc": r}, {}, 0.1)


class Misbehaves:
    """Hangs on archs whose first choice is ``hang``, is killed on ``kill``; else the toy reward."""

    def __init__(self, hang: int = 3, kill: int = 2) -> None:
        self.hang, self.kill = hang, kill

    def evaluate(self, arch: Architecture) -> Result:
        if arch.choices[0] == self.hang:
            time.sleep(300)
        if arch.choices[0] == self.kill:
            os.kill(os.getpid(), signal.SIGKILL)
        r = toy_reward(arch.choices)
        return Result(r, {"acc": r}, {}, 0.1)


class Exits:
    """Calls ``sys.exit(3)`` on archs whose first choice is ``bad``; else the toy reward."""

    def __init__(self, bad: int = 3) -> None:
        self.bad = bad

    def evaluate(self, arch: Architecture) -> Result:
        if arch.choices[0] == self.bad:
            sys.exit(3)
        r = toy_reward(arch.choices)
        return Result(r, {"acc": r}, {}, 0.1)
