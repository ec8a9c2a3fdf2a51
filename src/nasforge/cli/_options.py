"""The one ``-o key=value`` parser and the one progress bar of every command."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nasforge.errors import NasforgeError

if TYPE_CHECKING:  # rich and yaml load when a command uses them: `nasforge --help` starts without them
    from rich.console import Console
    from rich.progress import Progress, Task

OptionArg = Annotated[list[str] | None, typer.Option("--option", "-o", help="space option as key=value "
                                                     "(YAML value; a,b,c is a list), repeatable",
                                                     show_default="the space's")]


def parse_options(items: list[str] | None, flag: str = "--option") -> dict[str, Any]:
    """``["k=v", ...]`` -> options. A value is read as YAML (numbers, booleans, ``[3,5]``); a value with a comma
    that is not already a YAML list, mapping or quoted string is a list: ``widths=0.5,1.0`` and
    ``widths=[0.5,1.0]`` give the same ``[0.5, 1.0]``. A key given twice keeps the last value."""
    import yaml

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
    """A progress display's handle: one row per step. ``update(done, total, text)`` moves the current row (``label``
    names the row: a new label starts a new row); ``stage(label)`` starts a row without a count (a step with no
    known length: loading data, writing the report) showing its elapsed time.

    On a terminal the rows are a live rich display. Elsewhere (a log, a pipe) each row is one plain line when its
    step ends, and at most one line per ``PLAIN_EVERY_S`` while it runs. A command that fails prints no row of the
    failed step (the terminal display is erased), so an error stays one line."""

    PLAIN_EVERY_S = 30.0

    def __init__(self, progress: Progress, label: str) -> None:
        self._progress, self._label = progress, label
        self._live = progress.console.is_terminal
        self._last_line = 0.0

    @property
    def started(self) -> bool:
        return bool(self._progress.tasks)

    def _row(self, label: str, total: float | None) -> None:
        if not self._progress.tasks:
            if self._live:
                self._progress.start()
        else:
            self._finish_current()
        self._progress.add_task(label, total=total, info="", count="")
        self._last_line = time.monotonic()

    def _finish_current(self) -> None:
        task = self._progress.tasks[-1]
        if task.total is None:  # a stage without a count: full when the next step starts
            self._progress.update(task.id, total=1, completed=1)
        if not self._live:
            self._plain(task)

    def _plain(self, task: Task) -> None:
        text = "  ".join(t for t in (task.description, task.fields.get("count", ""), task.fields.get("info", ""))
                         if t)
        self._progress.console.print(f"{text}  ({task.elapsed or 0.0:.1f} s)", markup=False, highlight=False)
        self._last_line = time.monotonic()

    def update(self, done: float, total: int | None, text: str = "", label: str | None = None) -> None:
        tasks = self._progress.tasks
        if not tasks or (label is not None and tasks[-1].description != label):
            self._row(label or self._label, total)
        count = "" if total is None else f"{int(done)}/{total}"
        task = self._progress.tasks[-1]
        self._progress.update(task.id, completed=done, total=total, info=text, count=count)
        if not self._live and time.monotonic() - self._last_line >= self.PLAIN_EVERY_S:
            self._plain(task)

    def stage(self, label: str) -> None:
        self._row(label, None)

    def close(self, failed: bool = False) -> None:
        if not self.started:
            return
        if failed:  # the error line is the whole story: the failed step's row goes
            if self._live:
                self._progress.live.transient = True
                self._progress.stop()
            return
        self._finish_current()
        if self._live:
            self._progress.stop()


@contextmanager
def progress_bar(label: str, console: Console) -> Iterator[Bar]:
    """A rich display on ``console`` (stderr; quiet under ``--json``), one row per step: label, bar, done/total,
    a text, elapsed time. ``label`` names the first row when ``update`` gives none."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[count]}"),
                        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console, transient=False)
    bar = Bar(progress, label)
    try:
        yield bar
    except BaseException:
        bar.close(failed=True)
        raise
    bar.close()


def stderr_console(quiet: bool) -> Console:
    """The console of progress and status lines (stderr, so ``--json`` output on stdout stays clean)."""
    from rich.console import Console

    return Console(stderr=True, quiet=quiet)
