"""Designing the space before searching it: TinyNAS space choice under memory limits, RegNet error EDFs."""

from __future__ import annotations

from nasforge.design._edf import EDFCurve, SpaceSpec, edf, parse_space_spec, plot_edf
from nasforge.design._tinynas import Candidate, TinyNASResult, plot_tinynas, tinynas

__all__ = [
    "Candidate",
    "EDFCurve",
    "SpaceSpec",
    "TinyNASResult",
    "edf",
    "parse_space_spec",
    "plot_edf",
    "plot_tinynas",
    "tinynas",
]
