"""One writer per run folder: an OS-level lock held for the life of the run (``hold_run``).

The lock is an exclusive ``flock`` on a small file beside the run folder, ``PARENT/.NAME.lock`` (beside, not
inside: a new run folder is assembled under a temporary name and renamed into place, and a lock inside would be
replaced with it). It is taken before anything of the run is written and released when the run ends; if the
process dies the OS releases it, so a killed run never leaves a stale lock. A second writer does not wait: it
gets one line, "run D is in use by process P", and writes nothing. Readers (``nasforge report``, ``sqlite3``)
take no lock: the store is SQLite in WAL mode and every other file is written atomically.

Within one process the lock is re-entrant (a job holds it and ``run_search`` inside takes it again). The lock file
holds the holder's pid for the message; it is removed on release (after taking a lock, the holder checks that the
file it locked is still the one at the path, so removing it cannot let two writers in).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nasforge.errors import NasforgeError

_held: dict[str, tuple[int, int]] = {}  # lock path -> (fd, depth) of the locks this process holds
_guard = threading.Lock()


def lock_path(run_dir: str | os.PathLike[str]) -> Path:
    """The lock file of a run folder: ``.NAME.lock`` beside it."""
    p = Path(os.path.abspath(run_dir))
    return p.parent / f".{p.name}.lock"


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - no CI on Windows; msvcrt locks a byte range
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return "another process"
    return f"process {text}" if text.isdigit() else "another process"


def acquire(run_dir: str | os.PathLike[str]) -> Path:
    """Take the run folder's lock (or one more level of it, if this process holds it); ``NasforgeError`` when
    another process holds it. Returns the lock file's path (for ``release``)."""
    path = lock_path(run_dir)
    key = str(path)
    with _guard:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            return path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise NasforgeError(f"cannot create the run folder {run_dir}: a part of its path is a file, "
                                "not a folder") from None
        for _ in range(10):  # retried only when the file was replaced between open and lock
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                    raise NasforgeError(f"cannot write the run folder {run_dir}: {path.parent} is not writable "
                                        f"(read-only folder or file system: {e.strerror})") from None
                raise NasforgeError(f"cannot lock the run folder {run_dir}: {e.strerror or e}") from None
            if not _try_lock(fd):
                os.close(fd)
                raise NasforgeError(f"run {run_dir} is in use by {_holder(path)}; wait for it to finish "
                                    "(or stop it) before writing to it")
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder removed the file after we opened it: lock the new one
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode("ascii"))
            _held[key] = (fd, 1)
            return path
        raise NasforgeError(f"cannot lock the run folder {run_dir}: its lock file {path} keeps changing")


def release(path: Path) -> None:
    """Give back one level of a lock taken by ``acquire``; the last one removes the file and unlocks."""
    key = str(path)
    with _guard:
        fd, depth = _held[key]
        if depth > 1:
            _held[key] = (fd, depth - 1)
            return
        del _held[key]
        with contextlib.suppress(OSError):  # while still locked: a waiting opener sees another inode and retries
            path.unlink(missing_ok=True)
        os.close(fd)


def holds(run_dir: str | os.PathLike[str]) -> bool:
    """True when this process holds the run folder's lock."""
    return str(lock_path(run_dir)) in _held


@contextmanager
def hold_run(run_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the run folder's lock for the ``with`` block (see the module doc); yields ``run_dir`` as a Path."""
    path = acquire(run_dir)
    try:
        yield Path(run_dir)
    finally:
        release(path)
