"""``--help`` shows every option's default: a value, or a ``show_default`` text saying what an unset option means.

Job commands take ``None`` for "not given" (a ``--config`` file or a resumed run fills it), so their defaults are
texts; the job's config dataclass holds the real defaults, and the texts must say the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main

from nasforge.cli import app


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    subs = getattr(cmd, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from _commands(sub, (*path, name))
    else:
        yield path, cmd


COMMANDS = dict(_commands(typer.main.get_command(app)))


def _options(cmd: Any) -> Iterator[Any]:
    for p in cmd.params:
        if getattr(p, "param_type_name", "") != "option" or p.name == "help" or p.required:
            continue
        if getattr(p, "is_flag", False) and not getattr(p, "secondary_opts", []) and p.default is False:
            continue  # a plain flag (--json): off unless given
        yield p


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_option_shows_its_default(path: tuple[str, ...]) -> None:
    missing = [p.opts[0] for p in _options(COMMANDS[path])
               if not (isinstance(p.show_default, str) and p.show_default)
               and (p.default is None or p.show_default is False)]
    assert not missing, f"`nasforge {' '.join(path)}`: {missing} show no default in --help; give them " \
                        "show_default='...' (what an unset option means)"


def _config_defaults(cls: Any) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(cls)  # "" / None: resolved from other options (the task)
            if f.default is not dataclasses.MISSING and f.default not in (None, "")}


def test_job_defaults_shown_are_the_configs() -> None:
    from nasforge.jobs._benchmark import BenchmarkConfig
    from nasforge.jobs._oneshot import OneShotConfig
    from nasforge.jobs._search import SearchConfig

    checked = 0
    for name, cls in (("search", SearchConfig), ("oneshot", OneShotConfig), ("benchmark", BenchmarkConfig)):
        defaults = _config_defaults(cls)
        for p in _options(COMMANDS[(name,)]):
            field = {"device_torch": "device"}.get(p.name, p.name)
            if field in defaults and isinstance(p.show_default, str):
                shown, default = p.show_default, str(defaults[field])
                # the value, or the value and when another applies ("random,evolution,local; with --minimize-col ...")
                assert shown == default or shown.startswith(default + "; "), (name, p.name, shown, default)
                checked += 1
    assert checked >= 25


def test_help_prints_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    from nasforge.cli import main

    assert main(["search", "--help"]) == 0
    out = capsys.readouterr().out
    assert "default:" in out and "stm32f746" in out and "evolution" in out
