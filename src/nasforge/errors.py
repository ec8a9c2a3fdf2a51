"""The one user-facing error type: the CLI prints its message on one line and exits with code 2."""

from __future__ import annotations


class NasforgeError(ValueError):
    """A bad value from the user (name, option, file, shape). The message names it and what is allowed."""


class Interrupted(BaseException):
    """Ctrl-C (SIGINT) or SIGTERM stopped a job. The message says what was kept and how to go on (the CLI prints
    it on one line); ``signum`` gives the exit code 128 + signum. Like ``KeyboardInterrupt`` it is no
    ``Exception`` (nothing on the way swallows it), and unlike it, click does not turn it into a bare "Aborted"."""

    def __init__(self, message: str = "interrupted", signum: int = 2) -> None:
        super().__init__(message)
        self.message, self.signum = message, signum

    def __str__(self) -> str:
        return self.message


_ERRNO_WORDS = {"ENOSPC": "disk full", "EDQUOT": "disk quota exceeded", "EROFS": "read-only file system",
                "EACCES": "permission denied", "EPERM": "permission denied", "ENOTDIR": "a part of the path is a file",
                "EISDIR": "is a folder, not a file", "EIO": "input/output error"}


def environment_message(e: BaseException) -> str | None:
    """One line for an error of the machine, not of nasforge (disk full, read-only folder, a damaged or locked run
    store, a path under a file), or None for any other exception (a bug: let it show its traceback)."""
    import errno

    if isinstance(e, OSError):
        name = errno.errorcode.get(e.errno or 0, "")
        what = _ERRNO_WORDS.get(name, e.strerror or type(e).__name__)
        where = f" writing {e.filename}" if e.filename and name in ("ENOSPC", "EDQUOT", "EROFS") else \
            (f": {e.filename}" if e.filename else "")
        hint = "; free some space, then continue a search with --resume" if name in ("ENOSPC", "EDQUOT") else ""
        return f"{what}{where}{hint}"
    if type(e).__module__ == "sqlite3" and isinstance(e, Exception):
        text = str(e)
        low = text.lower()
        if "disk is full" in low:
            return f"disk full while writing the run store ({text}); free some space, then continue with --resume"
        if "readonly" in low or "read-only" in low:
            return f"cannot write the run store: read-only folder or file system ({text})"
        if "locked" in low or "busy" in low:
            return (f"the run store is locked by another process ({text}) for longer than nasforge waits (30 s); "
                    "close the program writing to it (e.g. a sqlite3 session) and retry")
        if "malformed" in low or "not a database" in low or "disk i/o" in low or "corrupt" in low:
            return f"the run store is damaged ({text}); its trials cannot be read (restore it from a copy)"
        if "unable to open" in low:
            return f"cannot open the run store ({text}): missing, read-only or not a file"
        return f"run store error: {text}"
    return None
