"""Functional pieces the block modules call. No torch import here: these only use tensor methods."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """ShuffleNet channel shuffle of an (N, C, H, W) tensor: view as (N, g, C/g, H, W), swap the group axes,
    flatten back, so that channel ``i * C/g + j`` moves to ``j * g + i``. Costs no arithmetic (a copy)."""
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w)
    x = x.transpose(1, 2).contiguous()
    return x.view(b, c, h, w)
