"""``nasforge version``."""

from __future__ import annotations

import typer

from nasforge import __version__
from nasforge.cli._app import app


@app.command("version")
def version() -> None:
    """Print the nasforge version."""
    typer.echo(__version__)
