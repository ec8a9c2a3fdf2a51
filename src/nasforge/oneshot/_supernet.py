"""Supernets: every decision of a space becomes a choice block holding all candidate ops with shared weights.

A ``ChoiceBlock`` runs in one of three ways, chosen per forward by its supernet's ``mode``:
- ``"darts"``: softmax(alpha)-weighted sum of every candidate (DARTS' mixed op; memory grows with ops);
- ``"single"``: only the active candidate runs (ProxylessNAS weight steps, SPOS, fixed sub-networks);
- ``"gates"``: the two sampled candidates run, scaled by binary gates whose gradient gives the
  ProxylessNAS architecture gradient (memory of two paths, not of all).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from nasforge.errors import NasforgeError
from nasforge.spaces import Architecture, SearchSpace

MODES = ("darts", "single", "gates")


class ChoiceBlock(nn.Module):
    """All candidates of one decision; ``None`` candidates are the zero op (no module, no weights).

    ``specs`` (optional) holds each candidate's block spec (``None`` for zero and identity candidates),
    so a latency lookup table can price every candidate on the input shape the block sees.
    """

    def __init__(self, candidates: Sequence[nn.Module | None], specs: Sequence[Any] | None = None) -> None:
        super().__init__()
        self.is_zero = [c is None for c in candidates]
        self.ops = nn.ModuleList([c if c is not None else nn.Identity() for c in candidates])
        self.specs: list[Any] = list(specs) if specs is not None else [None] * len(candidates)
        self.mode = "single"
        self.active = 0
        self.weights: Tensor | None = None  # darts: softmax probabilities
        self.gates: Tensor | None = None  # gates: binary gate values (requires grad)
        self.pair: tuple[int, ...] = ()

    def _run(self, i: int, x: Tensor) -> Tensor | None:
        return None if self.is_zero[i] else self.ops[i](x)

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "single":
            y = self._run(self.active, x)
            return torch.zeros_like(x) if y is None else y
        if self.mode == "darts":
            assert self.weights is not None
            terms = [self.weights[i] * y for i in range(len(self.ops)) if (y := self._run(i, x)) is not None]
        elif self.mode == "gates":
            assert self.gates is not None
            terms = [self.gates[i] * y for i in self.pair if (y := self._run(i, x)) is not None]
        else:
            raise ValueError(f"unknown mode {self.mode!r}; allowed: {', '.join(MODES)}")
        if not terms:
            return torch.zeros_like(x)
        out = terms[0]
        for t in terms[1:]:
            out = out + t
        return out


class Supernet(nn.Module):
    """A network whose choice blocks share weights across architectures.

    Subclasses build the body and fill ``self.groups``: one entry per *unit* (a row of ``alpha``), the
    choice blocks it controls (e.g. one NB201 edge in every cell). Units are the space's decisions where
    they map one to one (NB201); otherwise (DARTS edges, MobileNet block slots) the subclass overrides
    ``choices_of`` (an architecture as one choice per unit) and ``derive`` (the most likely architecture).
    ``unit_names``/``unit_labels`` name units and their candidates (plots, reports).
    """

    space: SearchSpace
    groups: list[list[ChoiceBlock]]
    unit_names: list[str]
    unit_labels: list[tuple[str, ...]]
    alpha_mask: Tensor

    def init_alpha(self, generator: torch.Generator | None = None) -> None:
        sizes = self.unit_sizes()
        n, k = max(sizes), len(sizes)
        self.alpha = nn.Parameter(1e-3 * torch.randn(k, n, generator=generator))
        mask = torch.full((k, n), float("-inf"))
        for i, m in enumerate(sizes):
            mask[i, :m] = 0.0
        self.register_buffer("alpha_mask", mask)

    def unit_sizes(self) -> list[int]:
        return [len(g[0].ops) for g in self.groups]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name != "alpha"]

    def probs(self) -> Tensor:
        """Softmax of alpha per unit (rows padded with zeros past each unit's candidates)."""
        return torch.softmax(self.alpha + self.alpha_mask, dim=-1)

    def set_darts(self, temperature: float = 1.0) -> None:
        """Run every candidate weighted by softmax(alpha / ``temperature``) (DARTS' mixed op; a temperature
        below 1 sharpens the mixture towards the derived path)."""
        p = self.probs() if temperature == 1.0 else torch.softmax((self.alpha + self.alpha_mask) / temperature, -1)
        for i, group in enumerate(self.groups):
            for blk in group:
                blk.mode, blk.weights = "darts", p[i]

    def set_single(self, choices: Sequence[int]) -> None:
        """Run one candidate per unit (a path of the supernet)."""
        if len(choices) != len(self.groups):
            raise NasforgeError(f"expected {len(self.groups)} choices, got {len(choices)}")
        for group, c in zip(self.groups, choices, strict=True):
            for blk in group:
                blk.mode, blk.active, blk.weights, blk.gates = "single", int(c), None, None

    def set_gates(self, pairs: Sequence[tuple[int, int]], chosen: Sequence[int]) -> list[Tensor]:
        """Binary gates per unit: the two sampled candidates run, gate 1 on ``chosen``, 0 on the other.

        All blocks of a unit share its gate tensor, so its gradient sums over them.
        """
        gates = []
        for group, pair, c in zip(self.groups, pairs, chosen, strict=True):
            g = torch.zeros(len(group[0].ops), device=self.alpha.device)
            g[c] = 1.0
            g.requires_grad_(True)
            for blk in group:
                blk.mode, blk.pair, blk.gates = "gates", tuple(pair), g
            gates.append(g)
        return gates

    def choices_of(self, arch: Architecture) -> list[int]:
        """The architecture as one candidate index per unit."""
        return list(self.space.encode(arch))

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniformly random architecture this supernet can run (SPOS' path sampling)."""
        return self.space.sample(rng)

    def fix(self, arch: Architecture) -> Supernet:
        """Run as the sub-network of ``arch`` (shares this supernet's weights)."""
        self.set_single(self.choices_of(arch))
        return self

    def arch_of(self, choices: Sequence[int]) -> Architecture:
        """The architecture of one candidate per unit (units are decisions here: ``decode``)."""
        return self.space.decode(list(choices))

    def derive(self) -> Architecture:
        """The architecture of the most likely choice of every decision."""
        p = self.probs().detach().cpu()
        return self.space.decode([int(p[i, :m].argmax()) for i, m in enumerate(self.unit_sizes())])

    def to_standalone(self, arch: Architecture, num_classes: int | None = None) -> nn.Module:
        """The stand-alone network of ``arch`` (``space.build``) carrying this supernet's weights."""
        raise NotImplementedError

    def input_shape(self) -> tuple[int, ...]:
        """The (channels, height, width) of one input image."""
        raise NotImplementedError


def decision_units(space: SearchSpace) -> tuple[list[str], list[tuple[str, ...]]]:
    """Unit names and candidate labels when units are the space's decisions."""
    decs = space.decisions()
    return [d.name for d in decs], [tuple(str(c) for c in d.choices) for d in decs]


@torch.no_grad()
def recalibrate_bn(net: nn.Module, batches: Sequence[Tensor]) -> None:
    """Reset batch-norm running statistics and re-estimate them on a few batches (cumulative average)."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    was = net.training
    net.train()
    for x in batches:
        net(x)
    net.train(was)
