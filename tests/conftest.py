"""Fixtures the test files share: the shared data folder, the example config space and a CLI runner.

The shared data folder (benchmark tables, latency tables) lies beside the checkout, at
``<repo>/../shared/data``, or wherever ``$NASFORGE_SHARED_DATA`` points. Without it the tests that need
it skip, saying so; when the variable is set (as ``.ci/run`` sets it), a missing folder is an error, so
CI never passes by skipping them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

# Hypothesis profiles of the fuzz tests (tests/test_fuzz_*.py): `ci` (the default) keeps the suite within its time
# budget; `--hypothesis-profile long` runs many more examples (bench/faults.py counts them).
try:
    from hypothesis import settings as _hsettings

    _hsettings.register_profile("ci", max_examples=12, deadline=None, derandomize=True, print_blob=True)
    _hsettings.register_profile("long", max_examples=1000, deadline=None)
    _hsettings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is a dev dependency; without it the fuzz tests fail on import, the rest runs
    pass
SHARED_DATA_ENV = "NASFORGE_SHARED_DATA"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; every file the tests read from it must be there (no per-file skips)."""
    env = os.environ.get(SHARED_DATA_ENV)
    path = Path(env) if env else REPO.parent / "shared" / "data"
    if not path.is_dir():
        if env:
            pytest.fail(f"${SHARED_DATA_ENV}={env} is not a folder")
        pytest.skip(f"shared data folder not found at {path} (set ${SHARED_DATA_ENV} to its location)")
    return path


@pytest.fixture(scope="session")
def example_space_config() -> Path:
    """The config-defined space shipped as an example (``examples/spaces/tiny_mcu.yaml``)."""
    return REPO / "examples" / "spaces" / "tiny_mcu.yaml"


@dataclass
class Cli:
    """Runs ``nasforge`` in-process: ``json(...)`` wants exit 0 and one JSON document on stdout,
    ``error(...)`` wants exit 2 and stderr one ``error: ...`` line (returned)."""

    capsys: pytest.CaptureFixture[str]
    out: str = ""  #: stdout of the last ``json(...)`` call
    err: str = ""  #: stderr of the last ``json(...)`` call

    def __call__(self, *args: str) -> int:
        from nasforge.cli import main

        return main(list(args))

    def json(self, *args: str) -> Any:
        rc = self(*args, "--json")
        out = self.capsys.readouterr()
        assert rc == 0, out.err[-2000:]
        self.out, self.err = out.out, out.err
        return json.loads(out.out)

    def error(self, *args: str) -> str:
        rc = self(*args)
        err = self.capsys.readouterr().err.strip()
        assert rc == 2, err[-2000:]
        assert err.startswith("error: ") and "\n" not in err, err[-2000:]
        return err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """The ``nasforge`` command line, run in-process (see ``Cli``)."""
    return Cli(capsys)
