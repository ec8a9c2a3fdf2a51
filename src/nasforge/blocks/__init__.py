"""Building blocks as specs (hashable values with an analytic cost) that build ``nn.Module``s.

The layer primitives (``Conv``, ``Linear``, ``Pool``, ...), the ``Spec`` protocol and the cell ops and cells of
the cell spaces are in the private modules (``_spec``, ``_cell_ops``, ``_cells``).
"""

from __future__ import annotations

from nasforge.blocks._functional import channel_shuffle
from nasforge.blocks._spec import (
    BasicBlock,
    Bottleneck,
    ConvBNAct,
    DepthwiseSeparable,
    Fire,
    InvertedResidual,
    NetworkSpec,
    ShuffleV1Unit,
    ShuffleV2Unit,
)

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ConvBNAct",
    "DepthwiseSeparable",
    "Fire",
    "InvertedResidual",
    "NetworkSpec",
    "ShuffleV1Unit",
    "ShuffleV2Unit",
    "channel_shuffle",
]
