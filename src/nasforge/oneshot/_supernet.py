"""Supernets: every decision of a space becomes a choice block holding all candidate ops with shared weights.

A ``ChoiceBlock`` runs in one of three ways, chosen per forward by its supernet's ``mode``:
- ``"darts"``: softmax(alpha)-weighted sum of every candidate (DARTS' mixed op; memory grows with ops);
- ``"single"``: only the active candidate runs (ProxylessNAS weight steps, SPOS, fixed sub-networks);
- ``"gates"``: the two sampled candidates run, scaled by binary gates whose gradient gives the
  ProxylessNAS architecture gradient (memory of two paths, not of all).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from nasforge.errors import NasforgeError
from nasforge.spaces import Architecture, SearchSpace

MODES = ("darts", "single", "gates")


class ChoiceBlock(nn.Module):
    """All candidates of one decision; ``None`` candidates are the zero op (no module, no weights)."""

    def __init__(self, candidates: Sequence[nn.Module | None]) -> None:
        super().__init__()
        self.is_zero = [c is None for c in candidates]
        self.ops = nn.ModuleList([c if c is not None else nn.Identity() for c in candidates])
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

    Subclasses build the body and fill ``self.groups``: for each decision of ``space.decisions()`` (in
    order) the choice blocks it controls (e.g. one edge in every cell of NB201's network). The
    architecture parameters ``alpha`` (one row per decision) live here too, outside ``weight_parameters``.
    """

    space: SearchSpace
    groups: list[list[ChoiceBlock]]
    alpha_mask: Tensor

    def init_alpha(self, generator: torch.Generator | None = None) -> None:
        n = max(d.n for d in self.space.decisions())
        k = len(self.groups)
        self.alpha = nn.Parameter(1e-3 * torch.randn(k, n, generator=generator))
        mask = torch.full((k, n), float("-inf"))
        for i, d in enumerate(self.space.decisions()):
            mask[i, : d.n] = 0.0
        self.register_buffer("alpha_mask", mask)

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name != "alpha"]

    def probs(self) -> Tensor:
        """Softmax of alpha per decision (rows padded with zeros past each decision's choices)."""
        return torch.softmax(self.alpha + self.alpha_mask, dim=-1)

    def set_darts(self) -> None:
        p = self.probs()
        for i, group in enumerate(self.groups):
            for blk in group:
                blk.mode, blk.weights = "darts", p[i]

    def set_single(self, choices: Sequence[int]) -> None:
        if len(choices) != len(self.groups):
            raise NasforgeError(f"expected {len(self.groups)} choices, got {len(choices)}")
        for group, c in zip(self.groups, choices, strict=True):
            for blk in group:
                blk.mode, blk.active, blk.weights, blk.gates = "single", int(c), None, None

    def set_gates(self, pairs: Sequence[tuple[int, int]], chosen: Sequence[int]) -> list[Tensor]:
        """Binary gates per decision: the two sampled candidates run, gate 1 on ``chosen``, 0 on the other.

        All blocks of a decision share its gate tensor, so its gradient sums over them.
        """
        gates = []
        for group, pair, c in zip(self.groups, pairs, chosen, strict=True):
            g = torch.zeros(len(group[0].ops))
            g[c] = 1.0
            g.requires_grad_(True)
            for blk in group:
                blk.mode, blk.pair, blk.gates = "gates", tuple(pair), g
            gates.append(g)
        return gates

    def fix(self, arch: Architecture) -> Supernet:
        """Run as the sub-network of ``arch`` (shares this supernet's weights)."""
        self.set_single(self.space.encode(arch))
        return self

    def derive(self) -> Architecture:
        """The architecture of the most likely choice of every decision."""
        p = self.probs().detach()
        return self.space.decode([int(p[i, : d.n].argmax()) for i, d in enumerate(self.space.decisions())])


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
