"""``python -m nasforge.cli ...``: the same as the ``nasforge`` command."""

from nasforge.cli import run

run()
