"""Rendering only: the plots and the HTML pages of runs, one HTML kit (``_html``) for every job."""

from __future__ import annotations

from nasforge.report._oneshot import render_oneshot
from nasforge.report._plots import plot_benchmark, plot_history, plot_pareto, plot_probabilities
from nasforge.report._search import BEST_DIR, SUMMARY, write_report

__all__ = ["BEST_DIR", "SUMMARY", "plot_benchmark", "plot_history", "plot_pareto", "plot_probabilities",
           "render_oneshot", "write_report"]
