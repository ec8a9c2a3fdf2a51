"""Building blocks as specs (hashable values with an analytic cost) that build ``nn.Module``s."""

from __future__ import annotations

from nasforge.blocks._spec import (
    ACTS,
    Act,
    Conv,
    ConvBNAct,
    Dropout,
    Flatten,
    GlobalPool,
    InvertedResidual,
    Linear,
    NetworkSpec,
    Pool,
    Spec,
    chain_cost,
    emit_act,
    make_act,
    part_of,
)

__all__ = [
    "ACTS",
    "Act",
    "Conv",
    "ConvBNAct",
    "Dropout",
    "Flatten",
    "GlobalPool",
    "InvertedResidual",
    "Linear",
    "NetworkSpec",
    "Pool",
    "Spec",
    "chain_cost",
    "emit_act",
    "make_act",
    "part_of",
]
