"""No code runs from user files: a scan of the library's source (AST, not text) for the calls that could.

- every ``torch.load`` passes ``weights_only=True`` (tensors and plain containers only);
- every YAML load is safe (``yaml.safe_load``; no ``yaml.load`` / ``unsafe_load`` / ``full_load``, no ``Loader=``);
- no ``eval`` / ``exec`` / ``compile`` of strings, no ``pickle.load(s)`` / ``marshal`` / ``shelve`` / ``dill``,
  except the restricted unpickler of CIFAR batches (an allow-list of globals) in ``data/_loaders.py``.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "nasforge"
FILES = sorted(SRC.rglob("*.py"))
#: modules allowed to unpickle, and why: CIFAR-10 batches are pickles; ``_ArrayUnpickler`` allows numpy arrays and
#: plain containers only (tests/test_data.py has a malicious batch). Latency predictors are JSON now; ``_legacy``
#: converts an old pickled one on request, under an allow-list of globals (tests/test_predictor_file.py).
PICKLE_OK = {"data/_loaders.py", "hardware/_legacy.py"}


@functools.cache
def _calls(path: Path) -> list[tuple[str, ast.Call]]:
    """(dotted name, call) of every call in ``path`` whose function is a name or an attribute chain."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Call):
            parts, f = [], node.func
            while isinstance(f, ast.Attribute):
                parts.append(f.attr)
                f = f.value
            if isinstance(f, ast.Name):
                parts.append(f.id)
                out.append((".".join(reversed(parts)), node))
    return out


def _unpickles(name: str) -> bool:
    lib = name.split(".")[0]
    return (lib in ("marshal", "shelve", "dill", "cloudpickle", "joblib") and "load" in name) or \
        name in ("pickle.load", "pickle.loads", "pickle.Unpickler")


def _where(path: Path, call: ast.Call) -> str:
    return f"{path.relative_to(SRC)}:{call.lineno}"


def test_scan_sees_the_library() -> None:
    names = {name for p in FILES for name, _ in _calls(p)}
    assert len(FILES) > 50 and "torch.load" in names and "yaml.safe_load" in names  # the scan is not blind


def test_no_code_execution_from_files() -> None:
    bad = [line for path in FILES for line in _findings(path)]
    assert not bad, "\n".join(bad)


def _findings(path: Path) -> list[str]:
    rel = str(path.relative_to(SRC))
    bad = []
    for name, call in _calls(path):
        kw = {k.arg: k.value for k in call.keywords}
        if name == "torch.load":
            w = kw.get("weights_only")
            if not (isinstance(w, ast.Constant) and w.value is True):
                bad.append(f"{_where(path, call)}: torch.load without weights_only=True")
        elif name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all"):
            bad.append(f"{_where(path, call)}: {name} (use yaml.safe_load)")
        elif name.startswith("yaml.") and "Loader" in kw:
            bad.append(f"{_where(path, call)}: {name} with a Loader")
        elif name in ("eval", "exec", "compile", "__import__"):
            bad.append(f"{_where(path, call)}: {name}()")
        elif _unpickles(name) and rel not in PICKLE_OK:
            bad.append(f"{_where(path, call)}: {name}")
    return bad


def test_the_scan_finds_what_it_forbids(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import torch, yaml, pickle\ntorch.load('x')\ntorch.load('x', weights_only=False)\n"
                   "yaml.load('a', Loader=yaml.Loader)\nyaml.safe_load('a', Loader=1)\neval('1')\nexec('1')\n"
                   "pickle.loads(b'')\n", encoding="utf-8")
    global SRC
    old, SRC = SRC, tmp_path
    try:
        assert len(_findings(bad)) == 7
    finally:
        SRC = old
