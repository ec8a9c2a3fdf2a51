"""Command line: ``nasforge ...``. Thin commands over the library; user errors are one line, exit 2."""

from __future__ import annotations

import sys

import typer

# Command modules register their commands on ``app`` when imported (one import per line).
from nasforge.cli import _version  # noqa: F401
from nasforge.cli import _oneshot  # noqa: F401, E402
from nasforge.cli import _latency  # noqa: F401, E402
from nasforge.cli import _design  # noqa: F401, E402
from nasforge.cli import _benchmark  # noqa: F401, E402
from nasforge.cli import _profile  # noqa: F401, E402
from nasforge.cli import _space  # noqa: F401, E402
from nasforge.cli import _zoo  # noqa: F401, E402
from nasforge.cli import _search  # noqa: F401, E402
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
