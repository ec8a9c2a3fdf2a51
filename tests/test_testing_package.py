"""``nasforge.testing`` is for test files only: the library never imports it, and it imports without pytest."""

from __future__ import annotations

import subprocess
import sys

import pytest

_CHILD = """
import importlib, sys
from pathlib import Path
sys.modules["pytest"] = None  # as if pytest were not installed
import nasforge
root = Path(nasforge.__file__).parent
files = [p.relative_to(root.parent).with_suffix("") for p in root.rglob("*.py")
         if p.relative_to(root).parts[0] != "testing"]
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
