"""Rendering only: the plots and the HTML pages of runs, one HTML kit (``_html``) for every job."""

from __future__ import annotations

from nasforge.report._plots import plot_benchmark, plot_history, plot_learning_curve, plot_pareto, plot_probabilities
from nasforge.report._report import write_report

__all__ = ["plot_benchmark", "plot_history", "plot_learning_curve", "plot_pareto", "plot_probabilities",
           "write_report"]
