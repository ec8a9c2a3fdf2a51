"""``pip install nasforge`` from a built wheel works outside the repo.

The wheel is built from a copy of this checkout's sources (``pip wheel --no-deps --no-build-isolation``: offline,
with the setuptools already installed; the copy keeps setuptools' build/ and egg-info out of the repo) and
installed into a fresh venv. To stay offline and fast the venv gets the dependencies by a ``.pth`` line naming this
interpreter's site-packages (whose own ``.pth`` files, the editable install of the repo among them, are not read
from there), so ``nasforge`` can only come from the wheel; the test checks that it does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(argv: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{argv}: {out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_repo(tmp_path: Path) -> None:
    dist, venv, elsewhere, src = (tmp_path / n for n in ("dist", "venv", "elsewhere", "src"))
    elsewhere.mkdir()
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
          str(src)], cwd=tmp_path)
    (wheel,) = dist.glob("nasforge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "nasforge/py.typed" in names and "nasforge/cli/__main__.py" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]

    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp_path).stdout.strip())
    (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
          str(wheel)], cwd=tmp_path)

    where = json.loads(_run([str(python), "-c", "import json, nasforge; print(json.dumps(nasforge.__file__))"],
                            cwd=elsewhere).stdout)
    assert Path(where).is_relative_to(venv), where  # the wheel's copy, not the repo's sources
    nasforge = venv / "bin" / "nasforge"
    assert "space" in _run([str(nasforge), "--help"], cwd=elsewhere).stdout
    rows = json.loads(_run([str(nasforge), "space", "list", "--json"], cwd=elsewhere).stdout)
    assert {"nb201", "mobilenet"} <= {r["name"] for r in rows}
    prof = json.loads(_run([str(nasforge), "profile", "mobilenet_v2", "-r", "64", "--json"], cwd=elsewhere).stdout)
    assert prof["params"] == 3_504_872
