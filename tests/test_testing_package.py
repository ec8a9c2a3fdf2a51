"""``nasforge.testing`` is for test files only: the library never imports it, and it imports without pytest."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nasforge
from nasforge.testing.pytest_spaces import SpaceSuite

_CHILD = """
import importlib, sys
from pathlib import Path
sys.modules["pytest"] = None  # as if pytest were not installed
import nasforge
root = Path(nasforge.__file__).parent
files = [p.relative_to(root.parent).with_suffix("") for p in root.rglob("*.py")
         if p.relative_to(root).parts[0] != "testing" and p.name != "__main__.py"]  # __main__ runs the CLI
names = [".".join(f.parts[:-1] if f.name == "__init__" else f.parts) for f in files]
for name in names:
    importlib.import_module(name)
leaked = sorted(n for n in sys.modules if n.startswith("nasforge.testing"))
assert not leaked, f"the library imports {leaked}"
import nasforge.testing
print(len(names))
"""


@pytest.mark.slow  # imports every module in a fresh process
def test_library_never_imports_the_testing_package_and_it_needs_no_pytest() -> None:
    proc = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout.strip()) > 50  # every library module was imported


_USER_TESTS = '''
from nasforge.spaces import register_space
from nasforge.spaces.nb201 import NB201Space
from nasforge.testing.pytest_spaces import SpaceSuite


@register_space("mini201")
class Mini(NB201Space):
    name = "mini201"


class TestMine(SpaceSuite):
    spaces = ("mini201",)
    options = {"mini201": {"C": 4, "N": 1, "resolution": 8}}
'''


@pytest.mark.slow  # a pytest run in another process
def test_a_space_registered_in_a_users_test_file_runs_the_suite(tmp_path: Path) -> None:
    """As the README shows: subclass the suite, register a space in the same file (the child process of the
    another-process check imports that file too)."""
    (tmp_path / "test_mine.py").write_text(_USER_TESTS)
    src = str(Path(nasforge.__file__).resolve().parents[1])  # this nasforge, also from another folder
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_mine.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    passed = re.search(r"(\d+) passed", proc.stdout)
    assert passed and int(passed[1]) >= sum(name.startswith("test_") for name in dir(SpaceSuite)), proc.stdout
