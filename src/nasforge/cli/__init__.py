"""Command line: ``nasforge ...``. Thin commands over the library; user errors are one line, exit 2."""

from __future__ import annotations

import sys

import typer

# Command modules register their commands on ``app`` when imported.
from nasforge.cli import (  # noqa: F401
    _benchmark,
    _design,
    _latency,
    _oneshot,
    _profile,
    _search,
    _space,
    _version,
    _zoo,
)
from nasforge.cli._app import app
from nasforge.errors import NasforgeError

__all__ = ["app", "main", "run"]


def main(argv: list[str] | None = None) -> int:
    """Run the app and return its exit code; user errors print one line to stderr and give 2."""
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="nasforge")
    except NasforgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
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
    return rv if isinstance(rv, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
