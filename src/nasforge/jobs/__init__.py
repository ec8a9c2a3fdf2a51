"""The end-to-end jobs: a hardware-aware search (``nasforge search``), a one-shot run (``nasforge oneshot``)
and the tabular benchmark of strategies (``nasforge benchmark``). Each job validates its whole config and its
run folder before it loads data or trains, and writes every file of its run atomically. Each entry takes the
options given (a mapping, or the job's config dataclass); the others take the job's defaults."""

from __future__ import annotations

from nasforge.jobs._benchmark import benchmark_job
from nasforge.jobs._oneshot import run_oneshot
from nasforge.jobs._search import export_run, run_job

__all__ = ["benchmark_job", "export_run", "run_job", "run_oneshot"]
