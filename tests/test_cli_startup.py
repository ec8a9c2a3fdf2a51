"""The CLI starts light: commands that need no network import neither torch nor the other heavy libraries.

This asserts the import graph (which modules a command loaded), not a time: ``bench/cli_startup.py`` measures the
seconds. The commands run one after another in one fresh interpreter and ``sys.modules`` is read after each, so
a failure names the first command that pulled a heavy library in.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "matplotlib", "onnx", "onnxruntime", "optuna", "scipy", "sklearn", "pandas")
NB201 = "nb201:|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
LIGHT_COMMANDS = [
    ["--help"],
    ["search", "--help"],
    ["space", "list"],
    ["space", "describe", "nb201", "--samples", "5"],
    ["space", "sample", "mobilenet", "-n", "2", "--json"],
    ["profile", "mobilenet_v2", "-r", "64", "--json"],
    ["profile", NB201, "--json"],
    ["version"],
]

SCRIPT = """
import contextlib, io, json, sys
from nasforge.cli import main
heavy = {heavy!r}
report = [[m for m in heavy if m in sys.modules]]
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rc = main(argv)
    report.append([rc, [m for m in heavy if m in sys.modules]])
print(json.dumps(report))
"""


def test_light_commands_import_no_heavy_library() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(heavy=HEAVY), json.dumps(LIGHT_COMMANDS)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    at_import, *after = json.loads(out.stdout)
    assert at_import == [], f"`import nasforge.cli` loads {at_import}"
    for argv, (rc, loaded) in zip(LIGHT_COMMANDS, after, strict=True):
        assert rc == 0, argv
        assert loaded == [], f"`nasforge {' '.join(argv)}` loads {loaded}"


def test_a_heavy_command_does_load_torch() -> None:
    """The check above can fail: a command that builds a module does import torch in the same harness."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    argv = [["profile", "resnet18", "-r", "32", "--trace", "--json"]]
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(heavy=HEAVY), json.dumps(argv)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    _, (rc, loaded) = json.loads(out.stdout)
    assert rc == 0 and "torch" in loaded


def test_design_cli_default_is_the_library_default() -> None:
    """``nasforge design tinynas --min-share`` spells the default out (importing it would load numpy at start-up)."""
    import inspect

    from nasforge.cli._design import tinynas_cmd
    from nasforge.design._tinynas import DEFAULT_MIN_SHARE

    assert inspect.signature(tinynas_cmd).parameters["min_share"].default == DEFAULT_MIN_SHARE


def test_progress_rows_one_per_step_and_silent_when_quiet() -> None:
    """The one progress display: a row per step (a stage without a count, then counted rows); in a log one plain
    line per finished step; nothing when quiet; a failed step leaves no row (the error stays one line)."""
    import io

    import pytest
    from rich.console import Console

    from nasforge.cli._options import progress_bar

    def shown(quiet: bool = False, terminal: bool = False, fail: bool = False) -> str:
        buf = io.StringIO()
        console = Console(file=buf, quiet=quiet, width=120, force_terminal=terminal)
        with pytest.raises(RuntimeError) if fail else contextlib.nullcontext(), \
                progress_bar("search", console) as bar:
            bar.stage("loading the data")
            if fail:
                raise RuntimeError("bad data")
            for done in (1, 2, 3):
                bar.update(done, 3, f"best 0.9 (trial #{done - 1})", label="search")
            bar.stage("training the best architecture for 2 epochs")
            bar.update(20, 20, "epoch 2/2")
        return buf.getvalue()

    lines = shown().splitlines()
    assert [line.split()[0] for line in lines] == ["loading", "search", "training"], lines
    assert "3/3" in lines[1] and "trial #2" in lines[1] and "20/20" in lines[2] and "epoch 2/2" in lines[2]
    assert shown(quiet=True) == "" and shown(fail=True) == ""
    live = shown(terminal=True)
    assert "loading the data" in live and "epoch 2/2" in live
    assert "bad data" not in shown(terminal=True, fail=True)
