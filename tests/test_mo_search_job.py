"""The main job with objectives: `nasforge search --minimize ...` ends with the front in the summary and the report;
bad objectives are one line, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nasforge.cli import main

FAST = ["--budget", "4", "--epochs", "1", "--final-epochs", "1", "--seed", "0"]


def _check_front(run: Path, summary: dict, names: list[str]) -> None:  # type: ignore[type-arg]
    from nasforge.runner import RunStore

    assert summary["objectives"] == names and summary["front"] and summary["hypervolume"] >= 0
    with RunStore.open(run) as store:
        front = store.front()
        ok = {t.number for t in store.trials() if t.ok}
    assert front is not None and [r["number"] for r in summary["front"]] == front["front"]
    assert set(front["front"]) <= ok and all(set(names) <= set(r) for r in summary["front"])
    html = (run / "report.html").read_text()
    assert "Pareto front" in html and summary["front"][0]["arch"] in html
    assert (run / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_minimize_peak_memory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["search", *FAST, "--minimize", "peak_memory", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    _check_front(out, summary, ["reward", "peak_memory_bytes"])
    cfg = (out / "config.yaml").read_text()
    assert "mo-surrogate" in cfg and "peak_memory_bytes" in cfg  # the multi-objective default strategy


def _synthetic_lut(path: Path) -> Path:
    """A latency table of the job's default space (fitted to digits) with made-up block times."""
    from nasforge.data import dataset_info
    from nasforge.hardware._lut import Entry, LatencyTable, distinct_blocks
    from nasforge.jobs._search import SearchConfig, fitted_space, space_options

    cfg = SearchConfig()
    info = dataset_info(cfg.dataset)
    opts = space_options(cfg, min(info.input_shape[1:]))
    space = fitted_space(cfg.space, opts, info.input_shape, info.num_classes)
    blocks = distinct_blocks(space, space.enumerate() if space.size() <= 2000 else
                             [space.sample(__import__("numpy").random.default_rng(i)) for i in range(2000)])
    entries = {k: Entry(0.05 + 0.01 * i) for i, k in enumerate(blocks)}
    LatencyTable(entries, space=cfg.space, space_options=opts).save(path)
    return path


@pytest.mark.slow
def test_minimize_latency_with_a_lut(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lut = _synthetic_lut(tmp_path / "lut.json")
    out = tmp_path / "run"
    assert main(["search", *FAST, "--minimize", "latency", "--latency-model", str(lut), "--out", str(out),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    _check_front(out, summary, ["reward", "latency"])
    assert all(r["latency"] > 0 for r in summary["front"])


@pytest.mark.parametrize(("args", "needle"), [
    (["--minimize", "speed"], "unknown objective 'speed'; allowed: macs"),
    (["--minimize", "latency"], "--minimize latency needs --latency-model FILE"),
    (["--minimize", "macs", "--strategy", "evolution"],
     "strategy 'evolution' optimises one objective, not 2; multi-objective strategies: mo-surrogate"),
])
def test_bad_objectives_are_one_line_exit_2(args: list[str], needle: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["search", *FAST, *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert not out.exists()
