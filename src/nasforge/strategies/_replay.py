"""State by replay: strategies whose inner state is a library object (an Optuna study, a torch optimizer)
save the seed and their ask/tell log, and load by replaying it into a fresh instance.

Replay is exact because these strategies depend only on the seed and the ask/tell sequence; it costs
about as much as the original calls, which is small next to any real evaluation.
"""

from __future__ import annotations

from typing import Any

from nasforge.errors import NasforgeError
from nasforge.spaces import Architecture, Result, SearchSpace
from nasforge.strategies._util import as_choices, check_kind


class ReplayLog:
    """Mixin: ``_log_ask``/``_log_tell`` record events; ``load_state_dict`` rebuilds and replays them."""

    kind: str = "replay"
    space: SearchSpace
    seed: int
    _events: list[list[Any]]

    def _reset(self, seed: int) -> None:
        """Forget everything and start again from ``seed`` (subclasses rebuild their library objects)."""
        raise NotImplementedError

    def ask(self) -> Architecture:
        raise NotImplementedError

    def tell(self, arch: Architecture, result: Result) -> None:
        raise NotImplementedError

    def _log_ask(self, arch: Architecture) -> None:
        self._events.append(["ask", list(arch.choices)])

    def _log_tell(self, arch: Architecture, result: Result) -> None:
        self._events.append(["tell", list(arch.choices), result.to_dict()])

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "seed": self.seed, "events": [list(e) for e in self._events]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_kind(state, self.kind)
        self._reset(int(state["seed"]))
        for ev in state["events"]:
            if ev[0] == "ask":
                got = self.ask()
                if got.choices != as_choices(ev[1]):
                    raise NasforgeError(f"{self.kind}: replayed ask gave {got} instead of the recorded "
                                        f"{self.space.decode(ev[1])}; was the state saved with other options?")
            elif ev[0] == "tell":
                self.tell(self.space.decode(ev[1]), Result.from_dict(ev[2]))
            else:
                raise NasforgeError(f"{self.kind}: unknown event {ev[0]!r} in state")
