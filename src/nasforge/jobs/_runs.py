"""Run folders: whether a job may write into a folder, checked before any work (which job wrote a run is
``runner._store.job_of``, which ``report`` reads too).

A job writes into an output folder only when it is new, empty, or (resume) a run of the *same* job, and only while
it holds the folder's lock (``hold_run_dir``: one writer per run folder, see ``runner/_lock.py``); a second writer
gets "run D is in use by process P" and writes nothing. Every job
records its name as ``job`` in its run's config: the ``config.yaml`` of a one-shot run, and the ``extra`` config
of a run store (``nasforge search``), so the check can say "runs/x holds a oneshot run, not a search run".
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from nasforge.errors import Interrupted, NasforgeError
from nasforge.runner._lock import hold_run
from nasforge.runner._store import CONFIG_NAME, RUN_SEARCH, job_of

__all__ = ["CONFIG_NAME", "RUN_SEARCH", "check_run_dir", "clean_temporaries", "config_text", "hold_run_dir", "job_of",
           "on_interrupt"]

hold_run_dir = hold_run
"""``with hold_run_dir(out):`` holds the run folder's lock (one writer) for a job's whole life."""


def check_run_dir(path: str | os.PathLike[str], job: str, resume: bool = False, can_resume: bool = True) -> Path:
    """``path`` as a Path if ``job`` may write its run there, else one clear line (``NasforgeError``).

    A new run needs a folder that does not exist or is empty; ``resume`` needs a run of the same job. Call it
    before loading data or training: a refused folder costs nothing and nothing is written.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise NasforgeError(f"output path {p} exists and is not a directory; choose a new directory")
    _check_writable(p)
    empty = not p.exists() or not any(p.iterdir())
    if resume:
        if not can_resume:
            raise NasforgeError(f"a {job} run cannot be resumed; start a new one in a new directory")
        if empty:
            raise NasforgeError(f"--resume needs --out to name an existing {job} run; {p} holds no run")
    elif empty:
        return p
    found = job_of(p)
    if found is None:
        raise NasforgeError(f"output directory {p} exists and is not a nasforge run; refusing to write "
                            "(choose a new or empty directory)")
    if found != job:
        raise NasforgeError(f"{p} holds a {found} run, not a {job} run; choose a new directory")
    if not resume:
        how = "resume it with --resume or" if can_resume else f"a {job} run cannot be resumed:"
        raise NasforgeError(f"{p} already holds a {job} run; {how} choose a new directory")
    return p


def config_text(job: str, config: dict[str, Any]) -> str:
    """The ``config.yaml`` of a run that is not a run store: the job's name first, then its options."""
    return yaml.safe_dump({"job": job, **config}, sort_keys=False)


def _check_writable(p: Path) -> None:
    """The nearest existing folder of ``p`` is a folder and writable (else one line: ``--out`` under a file, a
    read-only folder)."""
    q = Path(os.path.abspath(p))
    while not q.exists() and q != q.parent:
        q = q.parent
    if not q.is_dir():
        raise NasforgeError(f"output path {p} lies under {q}, which is a file, not a folder; choose another path")
    if not os.access(q, os.W_OK):
        raise NasforgeError(f"cannot write to {q} (read-only folder or file system); choose another --out")


@contextmanager
def on_interrupt(hint: str) -> Iterator[None]:
    """Ctrl-C or SIGTERM inside the block becomes ``Interrupted`` with ``hint`` (what was kept, how to go on), the
    one line the CLI prints. Writes are atomic and transactions roll back, so nothing is left half-written."""
    try:
        yield
    except (KeyboardInterrupt, Interrupted) as e:
        signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
        word = "terminated" if signum == signal.SIGTERM else "interrupted"
        raise Interrupted(f"{word}; {hint}", int(signum)) from None


def clean_temporaries(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove what a killed writer left half-done: temporary files and folders (``.NAME.XXXX.tmp*``) of atomic
    writes in the run folder and its ``best/``, and the temporary folder of its creation beside it. Call it only
    while holding the run's lock (``hold_run_dir``): then no other writer can own them. Returns what it removed."""
    p = Path(run_dir)
    mine = re.compile(rf"\.{re.escape(p.name)}\.[a-z0-9_]{{8}}\.tmp")  # tempfile.mkdtemp's names, not a sibling's
    found = [*p.glob(".*.tmp*"), *(p / "best").glob(".*.tmp*"),
             *(q for q in p.parent.glob(f".{glob.escape(p.name)}.*.tmp") if mine.fullmatch(q.name))]
    for q in found:
        if q.is_dir() and not q.is_symlink():
            shutil.rmtree(q, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                q.unlink()
    return found
