"""Property-based fuzzing of every parser of user input (issue 17): random and mutated inputs either parse to a
valid value that round-trips, or raise ``NasforgeError`` (the one-line error); never any other exception.

Parsers: architecture strings of every space, constraints, ``-o key=value`` options, device YAML, space YAML,
benchmark CSV tables, latency lookup tables (JSON, YAML, OFA YAML), ``--config`` YAML. Inputs are mutations of
valid ones (characters inserted, deleted, replaced; values swapped for odd ones: NaN, negatives, floats for ints,
lists for mappings) plus raw bytes (non-UTF-8). The number of examples comes from the hypothesis profile
(``tests/conftest.py``: ``ci`` is small and the default, ``--hypothesis-profile long`` for a long run;
``bench/faults.py`` counts them).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasforge.errors import NasforgeError

SUPPRESS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much]


# -- inputs ------------------------------------------------------------------------------------------------
@st.composite
def mutated(draw: Any, base: str, alphabet: str | None = None) -> str:
    """``base`` with a few random edits (insert, delete, replace, duplicate a slice)."""
    text = base
    chars = st.characters(codec="utf-8") if alphabet is None else st.sampled_from(alphabet)
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["ins", "del", "rep", "dup"]))
        if op == "ins":
            text = text[:i] + draw(st.text(chars, min_size=1, max_size=3)) + text[i:]
        elif op == "del":
            text = text[:i] + text[i + draw(st.integers(1, 3)):]
        elif op == "rep" and i < len(text):
            text = text[:i] + draw(chars) + text[i + 1:]
        elif op == "dup":
            j = draw(st.integers(i, len(text)))
            text = text[:j] + text[i:j] + text[j:]
    return text


ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.lists(st.integers(-3, 300), max_size=3), st.dictionaries(st.text(max_size=3),
                                                                                      st.integers(), max_size=2))


@st.composite
def odd_mapping(draw: Any, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with some values replaced by odd ones, some keys dropped, maybe an unknown key added."""
    out = dict(base)
    for k in list(out):
        r = draw(st.integers(0, 9))
        if r == 0:
            del out[k]
        elif r <= 3:
            out[k] = draw(ODD_VALUES)
    if draw(st.integers(0, 5)) == 0:
        out[draw(st.text(min_size=1, max_size=5))] = draw(ODD_VALUES)
    return out


def file_bytes(valid_text: str, mapping: dict[str, Any] | None = None, dump: Any = None) -> st.SearchStrategy[bytes]:
    """A file's bytes: the valid text mutated, a mapping with odd values dumped, or raw bytes (not UTF-8)."""
    options = [mutated(valid_text).map(lambda s: s.encode("utf-8", "surrogatepass")),
               st.binary(max_size=64), st.just(b"\xff\xfe" + valid_text.encode("utf-16-le"))]
    if mapping is not None:
        options.append(odd_mapping(mapping).map(lambda m: (dump or _yaml)(m).encode("utf-8")))
    return st.one_of(*options)


def _yaml(m: Any) -> str:
    return yaml.safe_dump(m, sort_keys=False)


def _json(m: Any) -> str:
    return json.dumps(m)


def _write(tmp: Path, name: str, data: bytes) -> Path:
    p = tmp / name
    p.write_bytes(data)
    return p


# -- architecture strings ---------------------------------------------------------------------------------------
def _spaces() -> list[Any]:
    from nasforge.spaces import get_space, list_spaces

    shipped = Path(__file__).resolve().parents[1] / "examples" / "spaces" / "tiny_mcu.yaml"
    return [get_space(n, path=str(shipped)) if n == "config" else get_space(n) for n in list_spaces()]


SPACES = _spaces()


@pytest.mark.parametrize("space", SPACES, ids=[s.name for s in SPACES])
@settings(suppress_health_check=SUPPRESS)
@given(data=st.data())
def test_fuzz_arch_strings(space: Any, data: st.DataObject) -> None:
    seed = data.draw(st.integers(0, 2**16), label="seed")
    base = str(space.sample(np.random.default_rng(seed)))
    text = data.draw(st.one_of(mutated(base), mutated(base, alphabet="0123456789|+-~,=()_kerwP."), st.text()),
                     label="text")
    try:
        arch = space.parse(text)
    except NasforgeError:
        return
    again = space.parse(str(arch))
    assert str(again) == str(arch) and tuple(again.choices) == tuple(arch.choices)
    assert space.decode(space.encode(arch)) == arch


# -- constraints -----------------------------------------------------------------------------------------------
CONSTRAINTS = ["macs<=50e6", "params<1.5M", "peak_memory<=320KiB", "weights<=1MB", "latency<=5ms",
               "weight_bytes<=2MiB", "flops<=3G"]


@settings(suppress_health_check=SUPPRESS)
@given(text=st.one_of(st.sampled_from(CONSTRAINTS).flatmap(mutated), st.text(max_size=20)))
def test_fuzz_constraints(text: str) -> None:
    from nasforge.runner._constraints import parse_constraint

    try:
        c = parse_constraint(text)
    except NasforgeError:
        return
    assert math.isfinite(c.limit) and c.limit >= 0
    assert parse_constraint(str(c)) == c


# -- -o key=value options -------------------------------------------------------------------------------------
@settings(suppress_health_check=SUPPRESS)
@given(items=st.lists(st.one_of(st.sampled_from(["widths=0.5,1.0", "kernels=[3,5]", "depth=2", "name='a,b'",
                                                  "x={a: 1}"]).flatmap(mutated), st.text(max_size=12)),
                      max_size=4))
def test_fuzz_options(items: list[str]) -> None:
    from nasforge.cli._options import parse_options

    try:
        out = parse_options(items, "-o")
    except NasforgeError:
        return
    assert isinstance(out, dict) and all(isinstance(k, str) and k for k in out)
    again = parse_options([f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in out.items()
                           if isinstance(v, int | str | list) and not isinstance(v, bool)], "-o")
    assert all(again[k] == out[k] for k in again)


# -- device YAML -------------------------------------------------------------------------------------------------
DEVICE = {"name": "board", "kind": "mcu", "sram_bytes": "320KiB", "flash_bytes": "1MB", "description": "a board"}


@settings(suppress_health_check=SUPPRESS)
@given(data=file_bytes(_yaml(DEVICE), DEVICE))
def test_fuzz_device_yaml(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    from nasforge.hardware import get_device
    from nasforge.hardware._devices import load_devices

    tmp = tmp_path_factory.mktemp("dev")
    p = _write(tmp, "dev.yaml", data)
    try:
        devs = load_devices(p)
    except NasforgeError:
        return
    for d in devs.values():
        q = _write(tmp, "again.yaml", _yaml(d.to_dict()).encode())
        assert get_device(str(q)) == d


# -- space YAML --------------------------------------------------------------------------------------------------
def _example_space() -> dict[str, Any]:
    path = Path(__file__).resolve().parents[1] / "examples" / "spaces" / "tiny_mcu.yaml"
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))


SPACE_YAML = _example_space()


@settings(suppress_health_check=SUPPRESS)
@given(data=file_bytes(_yaml(SPACE_YAML), SPACE_YAML))
def test_fuzz_space_yaml(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    from nasforge.spaces import get_space

    p = _write(tmp_path_factory.mktemp("space"), "space.yaml", data)
    try:
        space = get_space("config", path=str(p))
    except NasforgeError:
        return
    arch = space.sample(np.random.default_rng(0))
    assert space.parse(str(arch)) == arch and space.size() >= 1


# -- CSV tables ----------------------------------------------------------------------------------------------
CSV = "arch,acc,t\n0-1-2-3-0,0.5,1.5\n1-1-1-1-1,0.75,2\n3-3-3-3-3,0.9,0.5\n"


@settings(suppress_health_check=SUPPRESS)
@given(data=file_bytes(CSV))
def test_fuzz_csv_table(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    from nasforge.estimators import TabularEstimator

    p = _write(tmp_path_factory.mktemp("csv"), "t.csv", data)
    try:
        table = TabularEstimator(p, "arch", "acc", time_col="t")
    except NasforgeError:
        return
    for arch, (reward, _final, secs) in table.rows.items():
        assert isinstance(arch, str) and math.isfinite(reward) and 0 <= reward <= 1
        assert math.isfinite(secs) and secs >= 0  # a negative time would defeat --time-budget


# -- latency lookup tables -----------------------------------------------------------------------------------
OFA = {"Conv-input:224x224x3-output:112x112x16-stride:2": {"count": 3, "mean": 1.5, "std": 0.1},
       "expanded_conv-input:112x112x16-output:112x112x16-expand:1-kernel:3-stride:1-idskip:1":
           {"count": 2, "mean": 0.8, "var": 0.01}}


def _lut() -> dict[str, Any]:
    from nasforge.hardware._lut import ofa_table

    return ofa_table(OFA, device="x").to_dict()


LUT = _lut()


@settings(suppress_health_check=SUPPRESS)
@given(data=st.one_of(file_bytes(_json(LUT), LUT, _json).map(lambda b: ("lut.json", b)),
                      file_bytes(_yaml(LUT), LUT).map(lambda b: ("lut.yaml", b)),
                      file_bytes(_yaml(OFA), OFA).map(lambda b: ("ofa.yaml", b)),
                      odd_mapping({k: odd_mapping(v) for k, v in OFA.items()} and OFA).map(
                          lambda m: ("ofa2.yaml", _yaml(m).encode()))))
def test_fuzz_latency_table(tmp_path_factory: pytest.TempPathFactory, data: tuple[str, bytes]) -> None:
    from nasforge.hardware import LatencyTable

    tmp = tmp_path_factory.mktemp("lut")
    p = _write(tmp, *data)
    try:
        table = LatencyTable.load(p)
    except NasforgeError:
        return
    for key in table:
        ms = table.lookup(key)
        assert math.isfinite(ms) and ms >= 0  # NaN or negative latencies are refused
    again = LatencyTable.load(table.save(tmp / "again.json"))
    assert again.to_dict() == table.to_dict()


# -- --config YAML ---------------------------------------------------------------------------------------------
CONFIG = {"space": "nb201", "strategy": "random", "budget": 3, "epochs": 1, "seed": 1, "lr": 0.05,
          "space_options": {"channels": 8}, "constraints": ["macs<=50e6"], "workers": 1, "trial_timeout": 30}


@settings(suppress_health_check=SUPPRESS)
@given(data=file_bytes(_yaml(CONFIG), CONFIG))
def test_fuzz_search_config(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    from nasforge.jobs._search import SearchConfig

    p = _write(tmp_path_factory.mktemp("cfg"), "c.yaml", data)
    try:
        given_ = SearchConfig.from_yaml(p)
        cfg = SearchConfig.new(given_)
    except NasforgeError:
        return
    assert isinstance(cfg.seed, int) and not isinstance(cfg.seed, bool) and cfg.seed >= 0
    assert cfg.lr is None or (isinstance(cfg.lr, float | int) and 0 < cfg.lr < math.inf)
    assert isinstance(cfg.space_options, dict) and isinstance(cfg.strategy_options, dict)
    assert SearchConfig.new(cfg.to_dict()).to_dict() == cfg.to_dict()


# -- the CLI end to end on a sample ------------------------------------------------------------------------------
BAD_CLI = [
    ["search", "--seed", "-1", "--budget", "1"], ["search", "--lr", "inf", "--budget", "1"],
    ["search", "--lr", "nan", "--budget", "1"], ["search", "--constraint", "macs<=-5", "--budget", "1"],
    ["search", "--space", "nb201", "-o", "channels=[1,", "--budget", "1"],
    ["search", "--trial-timeout", "-3", "--budget", "1"], ["profile", "nb201:|bogus~0|"],
    ["space", "describe", "nosuch"],
]


@pytest.mark.parametrize("argv", BAD_CLI, ids=lambda a: " ".join(a)[:40])
def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    from nasforge.cli import main

    out = tmp_path / "run"
    args = [*argv, "--out", str(out)] if argv[0] == "search" else argv
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "Traceback" not in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("name,data", [
    ("dev.yaml", b"\xff\xfename: x\n"), ("cfg.yaml", b"seed: 1.5\n"), ("cfg2.yaml", b"space_options: [1, 2]\n"),
    ("cfg3.yaml", b"\xff\x00\x81"), ("lut.json", b'{"format": 1, "entries": [}'),
])
def test_cli_bad_files_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str,
                                          data: bytes) -> None:
    from nasforge.cli import main

    p = _write(tmp_path, name, data)
    out = tmp_path / "run"
    if name.startswith("dev"):
        argv = ["search", "--device", str(p), "--budget", "1", "--out", str(out)]
    elif name.startswith("cfg"):
        argv = ["search", "--config", str(p), "--out", str(out)]
    else:
        argv = ["search", "--latency-model", str(p), "--constraint", "latency<=5", "--budget", "1", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "Traceback" not in err[0], err
    assert not out.exists()
