"""Atomic file writes, the one way every package writes a file: a temp file in the same folder, then a rename.

A reader (or a run killed mid-write) sees either the old file or the whole new one, never a half-written one.
``atomic_path`` gives the temp path to writers that want a file name (matplotlib, torch, ONNX export);
``write_atomic`` writes text or bytes; ``save_figure`` and ``save_torch`` are the two common cases.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside ``path`` (same suffix, so writers that look at it pick the right format);
    on a clean exit it is renamed onto ``path``, on an error it is removed. The parent folder is created."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically, flushed to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def save_figure(fig: Figure, path: str | os.PathLike[str], **savefig: Any) -> Path:
    """``fig.savefig(path, **savefig)`` atomically (the format follows ``path``'s suffix)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **savefig)
    return Path(path)


def save_torch(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj, path)`` atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp folder beside ``path`` to fill; on a clean exit it replaces ``path`` (an existing folder there
    is removed first), on an error it is removed. Readers see the old folder or the whole new one."""
    import shutil

    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        if final.is_dir() and any(final.iterdir()):
            shutil.rmtree(final)
        os.replace(tmp, final)  # onto an absent or empty folder: atomic
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
