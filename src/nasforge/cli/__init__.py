"""Command line: ``nasforge ...``. Thin commands over the library; user errors are one line, exit 2."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import typer

# Command modules register their commands on ``app`` when imported.
from nasforge.cli import (  # noqa: F401
    _benchmark,
    _design,
    _latency,
    _oneshot,
    _predict,
    _profile,
    _search,
    _space,
    _version,
    _zoo,
)
from nasforge.cli._app import app
from nasforge.errors import Interrupted, NasforgeError, environment_message

__all__ = ["app", "main", "run"]


def main(argv: list[str] | None = None) -> int:
    """Run the app and return its exit code; user errors print one line to stderr and give 2, and so do errors of
    the machine (disk full, read-only folder, damaged store: ``environment_message``). Ctrl-C and SIGTERM stop the
    command with one line saying what was kept (exit 130 / 143)."""
    old_term = _on_sigterm()
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="nasforge")
    except NasforgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:  # Ctrl-C or SIGTERM (see _on_sigterm) in a job: the line says how to go on
        print(str(e), file=sys.stderr)
        return 128 + e.signum
    except typer.TyperException as e:  # usage errors (bad option, missing argument): one line, exit 2
        if type(e).__name__ == "NoArgsIsHelpError":
            print(e.format_message(), file=sys.stderr)
        else:
            print(f"error: {e.format_message()}", file=sys.stderr)
        return int(e.exit_code)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except typer.Exit as e:
        return int(e.exit_code)
    except Exception as e:
        line = environment_message(e)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    return rv if isinstance(rv, int) else 0


def _on_sigterm() -> Any:
    """SIGTERM raises ``Interrupted`` (like Ctrl-C) so a job stops cleanly; returns the previous handler (None when
    not in the main thread, where handlers cannot be set)."""
    def stop(signum: int, frame: Any) -> None:
        raise Interrupted("terminated", signum)

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, stop)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
