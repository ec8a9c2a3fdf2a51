"""One vocabulary (README "Vocabulary"): accuracy is a fraction in [0, 1]; kB = 1000 B and KiB = 1024 B in every
parser; constraint keys are the ``Cost`` field names (short forms accepted, canonical ones stored and printed)."""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from nasforge.errors import NasforgeError
from nasforge.estimators import TabularEstimator
from nasforge.hardware._devices import load_devices
from nasforge.runner import run_search
from nasforge.runner._constraints import canonical_constraints, parse_constraint
from nasforge.units import parse_bytes

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import Cli
from runner_toy import MutateBest, ToyEstimator, ToySpace

MINI = ("nb201_nats_tss", "nb201_12ep_acc_minibench.csv")  # under the shared data folder (conftest)


# -- bytes ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "expected"), [("320kB", 320_000), ("320KiB", 327_680), ("1MB", 10**6),
                                                ("1MiB", 2**20), ("2GB", 2 * 10**9), ("2GiB", 2 * 2**30),
                                                ("512B", 512), ("512", 512), ("1.5kB", 1500)])
def test_a_size_means_the_same_in_a_device_yaml_and_a_constraint(tmp_path: Path, size: str, expected: int) -> None:
    f = tmp_path / "dev.yaml"
    f.write_text(f"name: board\nkind: mcu\nsram_bytes: {size}\nflash_bytes: {size}\n")
    dev = load_devices(f)["board"]
    assert dev.sram_bytes == dev.flash_bytes == expected
    assert parse_constraint(f"peak_memory_bytes<={size}").limit == expected
    assert parse_constraint(f"weights<={size}").limit == expected
    assert parse_bytes(size) == expected


@pytest.mark.parametrize("bad", ["320 parsecs", "320k", "320Kb/s", "-5kB", "lots", "1.5", True, [1]])
def test_a_bad_size_is_one_line_naming_the_value_and_the_units(bad: object) -> None:
    with pytest.raises(NasforgeError) as e:
        parse_bytes(bad, "sram_bytes")
    msg = str(e.value)
    assert "\n" not in msg and repr(bad) in msg and "kB" in msg and "KiB" in msg


def test_a_bad_size_in_a_constraint_names_it_and_the_units() -> None:
    with pytest.raises(NasforgeError) as e:
        parse_constraint("weights<=3 parsecs")
    msg = str(e.value)
    assert "\n" not in msg and "weights<=3 parsecs" in msg and "KiB" in msg and "weight_bytes" in msg


# -- cost keys -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "canonical"), [
    ("peak_memory<=320kB", "peak_memory_bytes<=320kB"), ("weights <= 1MiB", "weight_bytes<=1MiB"),
    ("peak_memory_bytes<=320KiB", "peak_memory_bytes<=320KiB"), ("MACS<=5M", "macs<=5M"),
    ("latency<5", "latency<5"), ("activations<=2e5", "activations<=2e5"),
])
def test_alias_keys_map_to_the_cost_field_names(text: str, canonical: str) -> None:
    c = parse_constraint(text)
    assert str(c) == canonical and c.key == canonical.split("<")[0]
    assert canonical_constraints([text]) == [canonical]


def test_a_constraint_built_with_an_alias_key_is_canonical() -> None:
    from nasforge.runner._constraints import Constraint

    assert Constraint("weights", 1e6, False, "weights <= 1MB").key == "weight_bytes"
    assert str(Constraint("weights", 1e6, False, "weights <= 1MB")) == "weight_bytes<=1MB"
    assert str(Constraint("peak_memory", 5.0, strict=True)) == "peak_memory_bytes<5"


def test_unknown_key_error_lists_the_canonical_keys() -> None:
    with pytest.raises(NasforgeError) as e:
        parse_constraint("flops<=5")
    assert "peak_memory_bytes" in str(e.value) and "weight_bytes" in str(e.value) and "\n" not in str(e.value)


def test_canonical_keys_are_what_a_run_stores_and_prints(tmp_path: Path) -> None:
    space = ToySpace()
    cons = ["weight_bytes<=40kB", "peak_memory<=220B"]  # fp32: feasible when the choices sum to 5 or less
    out = run_search(space, MutateBest(space, seed=1), ToyEstimator(), 6, cons, seed=1, out_dir=tmp_path / "run")
    cfg = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert cfg["constraints"] == ["weight_bytes<=40kB", "peak_memory_bytes<=220B"]
    for t in out.trials:
        assert {"weight_bytes", "peak_memory_bytes", "macs", "params"} <= set(t.cost)
        assert not {"weights", "peak_memory"} & set(t.cost), t.cost
    bad = [t for t in out.trials if t.status == "infeasible"]
    assert bad and all(re.match(r"(weight_bytes|peak_memory_bytes)=", t.error or "") for t in bad)
    with sqlite3.connect(tmp_path / "run" / "trials.sqlite") as db:
        text = " ".join(str(v) for row in db.execute("SELECT * FROM trials") for v in row)
    assert "weight_bytes" in text and '"weights"' not in text and '"peak_memory"' not in text
    # a resume given the short forms is the same run
    more = run_search(space, MutateBest(space, seed=1), ToyEstimator(), 8, ["weights<=40kB", "peak_memory_bytes<=220B"],
                      seed=1, out_dir=tmp_path / "run", resume=True)
    assert len([t for t in more.trials if t.status != "infeasible"]) == 8


def test_search_job_constraints_are_canonical() -> None:
    from nasforge.hardware import get_device
    from nasforge.jobs._search import SearchConfig, device_constraints

    assert device_constraints(get_device("stm32f746")) == ["peak_memory_bytes<=327680B", "weight_bytes<=1048576B"]
    assert device_constraints(get_device("v100")) == [f"weight_bytes<={32 * 2**30}B"]
    assert SearchConfig(constraints=["weights<=1MB", "macs<=5e6"]).constraints == ["weight_bytes<=1MB", "macs<=5e6"]


def test_oneshot_constraints_are_canonical_and_checked_before_training(tmp_path: Path, cli: Cli) -> None:
    args = ["oneshot", "spos", "--space", "nb201", "-o", "C=4", "-o", "N=1", "-o", "resolution=8",
            "--dataset", "digits", "--subset", "64", "--epochs", "1", "--out", str(tmp_path / "s")]
    assert "weights<=3 parsecs" in cli.error(*args, "--constraint", "weights<=3 parsecs")
    assert "latency model" in cli.error(*args, "--constraint", "latency<=5")
    assert not (tmp_path / "s").exists()
    from nasforge.jobs._oneshot import OneShotConfig, _check

    cfg = OneShotConfig(method="spos", constraints=["weights<=1MB"])
    _check(cfg)
    assert cfg.constraints == ["weight_bytes<=1MB"]


# -- accuracy as a fraction: tables in percent -----------------------------------------------------------------
def _table(tmp: Path, rows: str) -> Path:
    p = tmp / "t.csv"
    p.write_text("a,r,f\n" + rows)
    return p


def test_a_percent_table_is_read_as_fractions_by_the_stated_rule(tmp_path: Path) -> None:
    # some value above 1, all within [0, 100]: percent, divided by 100
    est = TabularEstimator(_table(tmp_path, "0-0-0-0-0,93.5,90\n0-0-0-0-1,10,0.5\n"), "a", "r", final_col="f")
    assert est.lookup("0-0-0-0-0")[:2] == (0.935, 0.9) and est.lookup("0-0-0-0-1")[:2] == (0.1, 0.005)
    assert est.units == {"r": "percent", "f": "percent"}
    r = est.evaluate(ToySpace().parse("0-0-0-0-0"))
    assert r.reward == 0.935 and r.metrics["final"] == 0.9
    # every value in [0, 1]: a fraction, kept; percent=True says otherwise
    frac = _table(tmp_path, "0-0-0-0-0,0.9,1\n0-0-0-0-1,0.2,0\n")
    assert TabularEstimator(frac, "a", "r", final_col="f").lookup("0-0-0-0-0")[:2] == (0.9, 1.0)
    assert TabularEstimator(frac, "a", "r", percent=True).lookup("0-0-0-0-0")[0] == pytest.approx(0.009)


def test_a_column_that_is_no_accuracy_is_refused_unless_kept_raw(tmp_path: Path) -> None:
    p = _table(tmp_path, "0-0-0-0-0,-0.6,3\n0-0-0-0-1,-1.1,250\n")  # a negative loss, a count
    with pytest.raises(NasforgeError) as e:
        TabularEstimator(p, "a", "r")
    assert "column 'r' ranges -1.1 to -0.6" in str(e.value) and "percent=False" in str(e.value)
    with pytest.raises(NasforgeError, match="column 'f' ranges 3 to 250, so it is not percent"):
        TabularEstimator(p, "a", "f", percent=True)
    raw = TabularEstimator(p, "a", "r", final_col="f", percent=False)
    assert raw.lookup("0-0-0-0-1")[:2] == (-1.1, 250.0) and raw.units == {"r": "raw", "f": "raw"}


def test_the_real_nb201_table_reads_as_fractions(shared_data: Path) -> None:
    est = TabularEstimator(shared_data.joinpath(*MINI), "cellstr", "cifar10-val", final_col="cifar10-test")
    rewards = [r for r, _, _ in est.rows.values()]
    assert min(rewards) >= 0.0 and 0.8 < max(rewards) < 1.0  # the file holds percent (PROVENANCE.md)


# -- accuracy as a fraction: every --json of the CLI ------------------------------------------------------------
ACC_KEY = re.compile(r"(^|_)(acc|accuracy|reward|top1)($|_)")


def accuracies(obj: Any, key: str = "") -> Iterator[tuple[str, float]]:
    """Every number under a key that names an accuracy (val_acc, test_acc, reward, best_reward, top1, ...)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from accuracies(v, str(k))
    elif isinstance(obj, list):
        for v in obj:
            yield from accuracies(v, key)
    elif isinstance(obj, int | float) and not isinstance(obj, bool) and ACC_KEY.search(key):
        yield key, float(obj)


def assert_fractions(found: list[tuple[str, float]], min_count: int = 1) -> None:
    assert len(found) >= min_count, found
    assert all(0.0 <= v <= 1.0 for _, v in found), [kv for kv in found if not 0.0 <= kv[1] <= 1.0]


def test_zoo_json_top1_is_a_fraction(cli: Cli) -> None:
    rows = cli.json("zoo", "--resolution", "64")
    assert_fractions(list(accuracies(rows)), min_count=len(rows))


def test_benchmark_json_is_in_fractions(cli: Cli, shared_data: Path) -> None:
    d = cli.json("benchmark", "--table", str(shared_data.joinpath(*MINI)), "--space", "nb201", "--arch-col", "cellstr",
                 "--reward-col", "cifar10-val", "--final-col", "cifar10-test", "--strategies", "random",
                 "--budgets", "3,5", "--seeds", "2")
    stats = [(f"{n}@{b}", s["mean"]) for n, row in d["strategies"].items() for b, s in row.items()]
    assert_fractions(stats, min_count=2)
    oracle = [(k, v) for k, v in d["oracle"].items() if k in ("best_reward", "final_of_best_reward", "best_final")]
    assert_fractions(oracle, min_count=3)
    assert d["settings"]["units"] == {"cifar10-val": "percent", "cifar10-test": "percent"}


@pytest.mark.slow  # fits a predictor (seconds)
def test_latency_fit_json_shares_are_fractions(tmp_path: Path, cli: Cli) -> None:
    import numpy as np

    from nasforge.spaces import get_space

    sp = get_space("nb201")
    rng = np.random.default_rng(2)
    archs = list(dict.fromkeys(sp.sample(rng) for _ in range(60)))
    csv = tmp_path / "lat.csv"
    csv.write_text("arch,dev\n" + "".join(f"{a},{1.0 + sum(a.choices) / 4:.3f}\n" for a in archs))
    d = cli.json("latency", "fit", "--table", str(csv), "--arch-col", "arch", "--space", "nb201",
                 "--target-col", "dev", "--train", "40")
    shares = [(k, v) for k, v in d.items() if k.startswith("within_")]  # share of predictions within 10% / 5%
    assert_fractions(shares, min_count=2)


@pytest.mark.slow
def test_search_json_and_store_are_in_fractions(tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "run"
    s = cli.json("search", "--budget", "2", "--epochs", "1", "--final-epochs", "1", "--subset", "128",
                 "--constraint", "weights<=1MB", "--out", str(out))
    assert_fractions(list(accuracies(s)), min_count=2)  # best val_acc, test_acc
    with sqlite3.connect(out / "trials.sqlite") as db:
        rewards = [r for (r,) in db.execute("SELECT reward FROM trials WHERE reward IS NOT NULL")]
    assert rewards and all(0.0 <= r <= 1.0 for r in rewards)
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert "weight_bytes<=1MB" in cfg["constraints"] and "weights<=1MB" not in str(cfg)
    summary = json.loads((out / "best" / "summary.json").read_text())
    assert_fractions(list(accuracies(summary)), min_count=2)


@pytest.mark.slow
def test_oneshot_json_is_in_fractions(tmp_path: Path, cli: Cli) -> None:
    tiny = ["--space", "nb201", "-o", "C=4", "-o", "N=1", "-o", "resolution=8", "--dataset", "digits",
            "--subset", "64", "--epochs", "1", "--batch-size", "32"]
    s = cli.json("oneshot", "spos", *tiny, "--budget", "2", "--out", str(tmp_path / "s"))
    assert_fractions(list(accuracies(s)), min_count=1)  # val_acc (and whatever accuracies the summary names)
