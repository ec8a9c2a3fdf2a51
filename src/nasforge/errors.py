"""The one user-facing error type: the CLI prints its message on one line and exits with code 2."""

from __future__ import annotations


class NasforgeError(ValueError):
    """A bad value from the user (name, option, file, shape). The message names it and what is allowed."""
