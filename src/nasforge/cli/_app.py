"""The typer app. Commands live in one private module each and register themselves on ``app``."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="nasforge",
    help="Hardware-aware neural architecture search: cost, zoo, spaces, search.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """nasforge: find the most accurate network that fits your device."""
