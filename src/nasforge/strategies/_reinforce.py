"""REINFORCE (Williams 1992; Zoph & Le 2017): an LSTM controller emits the decision sequence.

One softmax per decision; the embedding of the previous choice is the next input. The policy
gradient uses a moving-average baseline and an entropy bonus; rewards are divided by a moving
standard deviation so the learning rate does not depend on the reward's scale. All randomness comes
from a ``torch.Generator`` seeded by the seed (weights are initialised under a forked global RNG).
State is saved as the seed plus the ask/tell log and restored by replay.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nasforge.errors import NasforgeError
from nasforge.estimators import Result
from nasforge.spaces import Architecture, SearchSpace
from nasforge.strategies._base import register_strategy
from nasforge.strategies._replay import ReplayLog
from nasforge.strategies._util import check_fraction, check_positive, reward_of


class Controller(nn.Module):
    """LSTM cell over the decisions: a start token, then the embedding of each choice made."""

    def __init__(self, sizes: list[int], hidden: int) -> None:
        super().__init__()
        self.sizes = sizes
        self.tokens = [torch.arange(n) + sum(sizes[:i]) for i, n in enumerate(sizes)]
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.embed = nn.Embedding(max(1, sum(sizes)), hidden)
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in sizes)

    def run(self, choices: list[int] | None,
            gen: torch.Generator | None) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """Sample (``choices`` None) or score given choices: returns choices, per-step log-probs and entropies."""
        x = self.start
        h: tuple[torch.Tensor, torch.Tensor] | None = None
        out: list[int] = []
        logps, ents = [], []
        for i, head in enumerate(self.heads):
            h = self.cell(x, h)
            logits = head(h[0])[0]
            logp = torch.log_softmax(logits, -1)
            c = int(torch.multinomial(logp.exp(), 1, generator=gen).item()) if choices is None else int(choices[i])
            out.append(c)
            logps.append(logp[c])
            ents.append(-(logp.exp() * logp).sum())
            x = self.embed(self.tokens[i][c : c + 1])
        return out, torch.stack(logps), torch.stack(ents)


@register_strategy("reinforce")
class Reinforce(ReplayLog):
    """Policy-gradient search with an LSTM controller (CPU, tiny).

    Options: ``hidden`` (32), ``lr`` (Adam, 0.01), ``baseline_decay`` (0.9), ``entropy`` (bonus weight,
    1e-3). Asks sample without gradients; each tell re-scores the told choices under the current policy
    and takes one step, so asks in flight are fine.
    """

    kind = "reinforce"

    def __init__(self, space: SearchSpace, seed: int = 0, hidden: int = 32, lr: float = 0.01,
                 baseline_decay: float = 0.9, entropy: float = 1e-3) -> None:
        self.space = space
        self.hidden = check_positive("hidden", hidden)
        if not isinstance(lr, int | float) or lr <= 0:
            raise NasforgeError(f"option lr={lr!r} must be a number > 0")
        self.lr = float(lr)
        self.decay = check_fraction("baseline_decay", baseline_decay)
        self.entropy = float(entropy)
        self._sizes = [d.n for d in space.decisions()]
        self._reset(seed)

    def _reset(self, seed: int) -> None:
        self.seed = int(seed)
        self._events: list[list[Any]] = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.controller = Controller(self._sizes, self.hidden)
        self.gen = torch.Generator().manual_seed(self.seed)
        self.opt = torch.optim.Adam(self.controller.parameters(), lr=self.lr, foreach=True)
        self.baseline: float | None = None
        self.var: float | None = None

    def ask(self) -> Architecture:
        with torch.no_grad():
            choices, _, _ = self.controller.run(None, self.gen)
        arch = self.space.decode(choices)
        self._log_ask(arch)
        return arch

    def tell(self, arch: Architecture, result: Result) -> None:
        self._log_tell(arch, result)
        r = reward_of(result)
        if r is None:
            return
        if self.baseline is None:
            self.baseline = r
            return
        adv = r - self.baseline
        self.var = adv * adv if self.var is None else self.decay * self.var + (1 - self.decay) * adv * adv
        scaled = adv / max(self.var, 1e-12) ** 0.5
        self.baseline = self.decay * self.baseline + (1 - self.decay) * r
        active = torch.tensor(self.space.active(arch.choices), dtype=torch.float32)
        _, logps, ents = self.controller.run(list(arch.choices), None)
        loss = -(scaled * (logps * active).sum() + self.entropy * (ents * active).sum())
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
