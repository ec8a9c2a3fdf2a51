"""Few-shot latency by transfer: on a synthetic family of devices (latency = device scale x op costs + noise) the
transfer model beats the no-prior predictor at k = 10; the active choice is seeded; prior and table errors are one
line (exit 2); a fitted transfer model saves as a JSON predictor that the search job's loader reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import Cli
from nasforge.errors import NasforgeError
from nasforge.hardware import LatencyPredictor, LatencyPrior, TransferModel, choose_reference, load_latency_model
from nasforge.hardware._predictor import ModelConfig, latency_metrics
from nasforge.hardware._transfer import noise_ceiling
from nasforge.spaces import get_space

SP = get_space("nb201")
BASE = np.array([0.0, 0.05, 1.0, 2.5, 0.4])  # ms per edge of none, skip, conv 1x1, conv 3x3, pool on a reference


def _family(n_archs: int = 300, n_devices: int = 7, seed: int = 0) -> tuple[list, np.ndarray]:
    """Latencies (archs x devices): each device scales the op costs (overall, and a little per op), plus a fixed
    overhead and 2% log-normal noise; the last column is the target device."""
    rng = np.random.default_rng(seed)
    archs = list(dict.fromkeys(SP.sample(rng) for _ in range(n_archs)))
    counts = np.array([[a.choices.count(o) for o in range(5)] for a in archs], dtype=float)
    cols = []
    for _ in range(n_devices):
        cost = BASE * rng.uniform(0.5, 4.0) * np.exp(rng.normal(0, 0.25, 5))
        cols.append((0.5 + counts @ cost) * np.exp(rng.normal(0, 0.02, len(archs))))
    return archs, np.array(cols).T


@pytest.mark.slow
def test_transfer_beats_no_prior_at_k10() -> None:
    archs, ms = _family()
    keys = [str(a) for a in archs]
    prior = LatencyPrior(keys, [f"dev{j}" for j in range(ms.shape[1] - 1)], ms[:, :-1])
    y = ms[:, -1]
    for seed in (0, 1):
        tr = choose_reference(prior, 10, "random", seed)
        te = np.setdiff1d(np.arange(len(keys)), tr)
        ours = latency_metrics(TransferModel(prior).fit(tr, y[tr]).predict_rows(te), y[te])
        base = LatencyPredictor(SP, ("onehot", "counts"), ModelConfig(seed=seed)).fit([archs[i] for i in tr], y[tr])
        theirs = latency_metrics(base.predict_many([archs[i] for i in te]), y[te])
        assert ours["within_10pct"] >= theirs["within_10pct"] + 0.2, (ours, theirs)
        assert ours["spearman"] > max(theirs["spearman"], 0.9)


def test_active_choice_is_seeded_and_spread() -> None:
    archs, ms = _family(n_archs=200)
    prior = LatencyPrior([str(a) for a in archs], ["a", "b", "c", "d", "e", "f", "g"], ms)
    a = choose_reference(prior, 10, "active", 3)
    assert np.array_equal(a, choose_reference(prior, 10, "active", 3)) and len(set(a.tolist())) == 10
    assert not np.array_equal(a, choose_reference(prior, 10, "active", 4))
    assert np.array_equal(choose_reference(prior, 10, "random", 3), choose_reference(prior, 10, "random", 3))
    # spread: the chosen rows cover the range of total latency better than the narrowest 10 rows would
    tot = ms.sum(1)
    assert np.ptp(tot[a]) > 0.5 * np.ptp(tot)
    with pytest.raises(NasforgeError, match=f"k = 300 must be between 1 and the {len(archs)} architectures"):
        choose_reference(prior, 300, "active", 0)


def test_noise_ceiling_from_same_computation_pairs() -> None:
    a = SP.parse("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|")
    b = SP.parse("|skip_connect~0|+|nor_conv_3x3~0|none~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|")
    assert a != b and SP.same_computation_key(a) == SP.same_computation_key(b)
    rng = np.random.default_rng(0)
    archs = list(dict.fromkeys(SP.sample(rng) for _ in range(3000)))
    exact = np.array([1.0 + sum(BASE[c] for c in x.choices) for x in archs])
    keys = [str(x) for x in archs]
    assert noise_ceiling(SP, keys, exact) == 1.0
    noisy = exact * np.exp(rng.normal(0, 0.2, len(exact)))
    c = noise_ceiling(SP, keys, noisy)
    assert c is not None and 0.2 < c < 0.6  # |N(0, 0.2)| <= log(1.1) about 37% of the time
    assert noise_ceiling(get_space("mobilenet"), [], np.array([])) is None


def _write_tables(tmp_path: Path, n_archs: int = 120) -> tuple[Path, Path, list]:
    archs, ms = _family(n_archs=n_archs, seed=1)
    prior = tmp_path / "prior.csv"
    prior.write_text("arch_index,arch_str," + ",".join(f"dev{j}" for j in range(6)) + ",note\n" + "".join(
        f"{i},{a}," + ",".join(f"{v:.5f}" for v in ms[i, :-1]) + ",x\n" for i, a in enumerate(archs)))
    target = tmp_path / "target.csv"
    target.write_text("arch,board\n" + "".join(f"{a},{ms[i, -1]:.5f}\n" for i, a in enumerate(archs)))
    return prior, target, archs


@pytest.mark.slow
def test_cli_fit_with_prior_saves_a_json_predictor(tmp_path: Path, cli: Cli) -> None:
    prior, target, archs = _write_tables(tmp_path)
    model = tmp_path / "board.json"
    base = ["latency", "fit", "--table", str(target), "--arch-col", "arch", "--target-col", "board", "--space", "nb201",
            "--train", "10", "--prior-table", str(prior), "--prior-arch-col", "arch_str"]
    d = cli.json(*base, "--choose", "active", "--save", str(model))
    assert {"within_10pct", "within_5pct", "spearman", "kendall", "n_train", "n_test", "noise_ceiling_10pct"} <= set(d)
    assert d["n_train"] == 10 and d["n_test"] == len(archs) - 10 and d["within_10pct"] > 0.8
    assert d["transfer"]["prior_columns"] == [f"dev{j}" for j in range(6)]  # arch_index and note are not devices
    assert cli.json(*base, "--choose", "active") == d  # deterministic
    fn = load_latency_model(model, SP)
    assert isinstance(fn, LatencyPredictor) and json.loads(model.read_text())["transfer"]["choose"] == "active"
    measured = {a: float(v) for a, v in (r.split(",") for r in target.read_text().splitlines()[1:])}
    ref = d["transfer"]["reference"][0]
    assert fn(SP.parse(ref)) == pytest.approx(measured[ref])  # measured archs predict as measured
    outside = SP.arch_of(["nor_conv_3x3"] * 6)
    assert str(outside) not in measured and fn(outside) > 0  # outside the prior: the trees answer


def test_cli_suggest_is_seeded(tmp_path: Path, cli: Cli) -> None:
    prior, _, archs = _write_tables(tmp_path)
    args = ["latency", "suggest", "--space", "nb201", "--k", "5", "--prior-table", str(prior), "--arch-col",
            "arch_str", "--seed", "2"]
    first = cli.json(*args, "--out", str(tmp_path / "list.csv"))
    assert first == cli.json(*args) and len(set(first)) == 5 and set(first) <= {str(a) for a in archs}
    assert (tmp_path / "list.csv").read_text().splitlines()[0] == "arch"
    no_prior = cli.json("latency", "suggest", "--space", "nb201", "--k", "4")
    assert len(no_prior) == 4 and no_prior == cli.json("latency", "suggest", "--space", "nb201", "--k", "4")


def test_cli_fit_errors_are_one_line(tmp_path: Path, cli: Cli) -> None:
    prior, target, _ = _write_tables(tmp_path)
    base = ["latency", "fit", "--table", str(target), "--arch-col", "arch", "--target-col", "board", "--space", "nb201",
            "--prior-arch-col", "arch_str"]
    short = tmp_path / "short.csv"
    short.write_text("\n".join(prior.read_text().splitlines()[:-7]) + "\n")
    assert "7 missing" in cli.error(*base, "--train", "10", "--prior-table", str(short))
    assert "column 'note' is not numeric" in cli.error(*base, "--train", "10", "--prior-table", str(prior),
                                                       "--prior-cols", "dev0,note")
    assert "--train 500 must be between 3 and" in cli.error(*base, "--train", "500", "--prior-table", str(prior))
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("arch_str,dev0\nr96-w0.5|k3e1,1.0\nr96-w0.5|k5e6,2.0\n")
    assert "not an architecture of space 'nb201'" in cli.error(*base, "--train", "10", "--prior-table", str(foreign))
    assert "unknown --choose 'best'" in cli.error(*base, "--train", "10", "--prior-table", str(prior), "--choose",
                                                  "best")


@pytest.mark.slow
def test_cli_measure_a_suggested_list(tmp_path: Path, cli: Cli) -> None:
    tiny = ["--space", "nb201", "-o", "C=4", "-o", "N=1", "-o", "resolution=8"]
    todo = tmp_path / "todo.csv"
    archs = cli.json("latency", "suggest", *tiny, "--k", "3", "--out", str(todo))
    out = tmp_path / "host.csv"
    rows = cli.json("latency", "measure", *tiny, "--archs", str(todo), "--out", str(out), "--column", "host",
                    "--warmup", "1", "--repeats", "3")
    assert [r["arch"] for r in rows] == archs and all(r["host"] > 0 for r in rows)
    lines = out.read_text().splitlines()
    assert lines[0] == "arch,host" and len(lines) == 4 and float(lines[1].split(",")[-1]) == rows[0]["host"]
    bad = tmp_path / "bad.csv"
    bad.write_text("arch\nnot-an-arch\n")
    assert "not an architecture of space 'nb201'" in cli.error("latency", "measure", *tiny, "--archs", str(bad))
    assert not (tmp_path / "never.csv").exists()
