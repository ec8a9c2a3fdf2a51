"""The one ``-o key=value`` parser and the one progress bar of every command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nasforge.errors import NasforgeError

OptionArg = Annotated[list[str] | None, typer.Option("--option", "-o", help="space option as key=value "
                                                     "(YAML value; a,b,c is a list), repeatable")]


def parse_options(items: list[str] | None, flag: str = "--option") -> dict[str, Any]:
    """``["k=v", ...]`` -> options. A value is read as YAML (numbers, booleans, ``[3,5]``); a value with a comma
    that is not already a YAML list, mapping or quoted string is a list: ``widths=0.5,1.0`` and
    ``widths=[0.5,1.0]`` give the same ``[0.5, 1.0]``. A key given twice keeps the last value."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise NasforgeError(f"bad {flag} {item!r}; expected key=value, e.g. widths=0.5,1.0")
        text = raw.strip()
        if "," in text and not text.startswith(("[", "{", "'", '"')):
            text = f"[{text}]"
        try:
            out[key] = yaml.safe_load(text) if text else ""
        except yaml.YAMLError:
            raise NasforgeError(f"bad {flag} value for {key!r}: {raw!r} is not a number, list or word") from None
    return out


class Bar:
    """A progress bar's handle: ``update(done, total, text)``; the first call shows the bar (a command that stops
    before any progress, e.g. on a bad option, prints only its error line)."""

    def __init__(self, progress: Progress, label: str) -> None:
        self._progress, self._label = progress, label

    @property
    def started(self) -> bool:
        return bool(self._progress.tasks)

    def update(self, done: float, total: int | None, text: str = "") -> None:
        if not self._progress.tasks:
            self._progress.start()
            self._progress.add_task(self._label, total=total, info="")
        self._progress.update(self._progress.tasks[0].id, completed=done, total=total, info=text)


@contextmanager
def progress_bar(label: str, console: Console) -> Iterator[Bar]:
    """A rich bar on ``console`` (stderr; quiet under ``--json``): label, bar, done/total, a text, elapsed time."""
    progress = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console, transient=False)
    bar = Bar(progress, label)
    try:
        yield bar
    finally:
        if bar.started:
            progress.stop()


def stderr_console(quiet: bool) -> Console:
    """The console of progress and status lines (stderr, so ``--json`` output on stdout stays clean)."""
    return Console(stderr=True, quiet=quiet)
