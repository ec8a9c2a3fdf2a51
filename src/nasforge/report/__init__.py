"""Plots, the HTML report and model export of a run; the end-to-end search job."""

from __future__ import annotations

from nasforge.report._export import FORMATS, export_onnx, export_torchscript
from nasforge.report._job import JobConfig, export_run, prepare, run_job, write_run_report
from nasforge.report._plots import plot_history, plot_pareto

__all__ = [
    "FORMATS",
    "JobConfig",
    "export_onnx",
    "export_run",
    "export_torchscript",
    "plot_history",
    "plot_pareto",
    "prepare",
    "run_job",
    "write_run_report",
]
