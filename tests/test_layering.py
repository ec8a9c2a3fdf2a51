"""The layering is a checked contract: import-linter's contracts (pyproject.toml) hold on the package, and an
import that breaks one fails the check (shown on a temporary copy of the package with one forbidden import)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"


def lint_imports(root: Path, contract: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run import-linter with ``root/pyproject.toml`` on the package under ``root/src`` (in a fresh process)."""
    code = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True, "
            f"limit_to_contracts={(contract,) if contract else ()!r}))")
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "COLUMNS": "1000"}
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)


def contract_ids() -> list[str]:
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    return [c["id"] for c in contracts]


def test_contracts_hold_on_the_package() -> None:
    ids = contract_ids()
    assert {"layers", "strategies-no-estimators", "cost-no-spaces-zoo", "library-no-cli", "blocks-no-spaces",
            "spaces-no-runner"} <= set(ids)
    out = lint_imports(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"Contracts: {len(ids)} kept, 0 broken." in out.stdout


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package and its pyproject (contracts) to plant forbidden imports in."""
    root = tmp_path_factory.mktemp("layering")
    shutil.copy(PYPROJECT, root / "pyproject.toml")
    shutil.copytree(ROOT / "src" / "nasforge", root / "src" / "nasforge",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root


# (where the forbidden module goes, its source, the contract it breaks)
FORBIDDEN = [
    ("strategies", "from nasforge.estimators import Estimator\n", "strategies-no-estimators"),
    ("cost", "from nasforge.spaces import get_space\n", "cost-no-spaces-zoo"),
    ("cost", "def f() -> None:\n    from nasforge import zoo  # a lazy import counts too\n", "cost-no-spaces-zoo"),
    ("blocks", "import nasforge.spaces._base\n", "blocks-no-spaces"),
    ("spaces", "from nasforge.runner import run_search\n", "spaces-no-runner"),
    ("runner", "from nasforge.cli import app\n", "library-no-cli"),
    ("zoo", "from nasforge.data import load_dataset\n", "layers"),
    ("estimators", "from nasforge.strategies import get_strategy\n", "layers"),
]


@pytest.mark.parametrize(("package", "source", "contract"), FORBIDDEN)
def test_a_forbidden_import_breaks_its_contract(package_copy: Path, package: str, source: str,
                                                contract: str) -> None:
    bad = package_copy / "src" / "nasforge" / package / "_forbidden.py"
    bad.write_text(f'"""A forbidden import, planted by tests/test_layering.py."""\n\n{source}')
    try:
        broken = lint_imports(package_copy, contract)
    finally:
        bad.unlink()
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "0 kept, 1 broken" in broken.stdout, broken.stdout
    assert f"nasforge.{package}._forbidden -> nasforge." in broken.stdout, broken.stdout
    clean = lint_imports(package_copy, contract)  # the copy without the planted module keeps the contract
    assert clean.returncode == 0, clean.stdout + clean.stderr


SURFACES = ("nasforge", "nasforge.cost", "nasforge.blocks", "nasforge.zoo", "nasforge.spaces", "nasforge.strategies",
            "nasforge.estimators", "nasforge.hardware", "nasforge.data", "nasforge.design")


@pytest.mark.parametrize("package", SURFACES)
def test_public_surface_is_the_readme_layout_row(package: str) -> None:
    """Each package exports exactly the names its README row lists (internals stay in the private modules)."""
    import importlib
    import re

    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([\w.]+)` \|[^\n]*\| ([^|\n]*) \|$",
                                                        (ROOT / "README.md").read_text(), re.M)}
    listed = set(re.findall(r"`(\w+)`", rows[package]))
    module = importlib.import_module(package)
    exported = set(module.__all__) - {"__version__"}
    assert exported == listed, f"{package}: exported but not in README {exported - listed}, " \
                               f"in README but not exported {listed - exported}"
    for name in exported:
        assert hasattr(module, name), name


def test_the_profile_facade_keeps_import_nasforge_light() -> None:
    """``nasforge.profile`` sits at the top but imports the spaces, the zoo and torch only when it is called."""
    code = ("import sys, nasforge; heavy = [m for m in ('torch', 'nasforge.spaces', 'nasforge.zoo') "
            "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
