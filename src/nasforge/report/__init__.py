"""Rendering only: the plots and the HTML report of a run (one HTML kit for every job)."""

from __future__ import annotations

from nasforge.report._plots import plot_history, plot_pareto
from nasforge.report._search import BEST_DIR, SUMMARY, write_report

__all__ = ["BEST_DIR", "SUMMARY", "plot_history", "plot_pareto", "write_report"]
