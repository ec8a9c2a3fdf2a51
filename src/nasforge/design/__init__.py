"""Designing the space before searching it: TinyNAS space choice under memory limits, RegNet error EDFs.

Each is a function returning data (``tinynas``, ``edf``) and one drawing it (``plot_tinynas``, ``plot_edf``);
the result types and the ``--space`` spec parser are in the private modules (``_tinynas``, ``_edf``).
"""

from __future__ import annotations

from nasforge.design._edf import edf, plot_edf
from nasforge.design._tinynas import plot_tinynas, tinynas

__all__ = ["edf", "plot_edf", "plot_tinynas", "tinynas"]
