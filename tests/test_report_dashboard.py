"""The search report reads like a dashboard: plots first (limits drawn on the Pareto plot), the counts of each
status, every trial with its status and time (numbered as in the store), the final training's learning curve."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from nasforge.report import write_report
from nasforge.runner import RunStore, run_search
from runner_toy import MutateBest, ToyEstimator, ToySpace

LIMITS = {"macs": 120e3, "peak_memory_bytes": 240.0}


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy run with ok, failed (first choice 2) and infeasible (over the limits) trials, and a best/ summary."""
    out = tmp_path_factory.mktemp("dash") / "run"
    space = ToySpace()
    run_search(space, MutateBest(space, seed=3), ToyEstimator(fail_first=2), 16,
               constraints=["macs<=120e3", "peak_memory_bytes<=240B"], seed=3, out_dir=out)
    curve = [{"epoch": e, "train_loss": 2.0 / e, "val_acc": 0.5 + 0.1 * e, "seconds": 1.5 * e} for e in (1, 2, 3)]
    (out / "best").mkdir()
    (out / "best" / "summary.json").write_text(json.dumps({
        "space": "toy", "arch": "3-1-2-0-3", "status": "ok", "val_acc": 0.8, "test_acc": 0.79, "final_epochs": 3,
        "train_seconds": 4.5, "cost": {"macs": 100_000, "peak_memory_bytes": 236, "weight_bytes": 40_000},
        "fits": {"device": "toyboard", "kind": "mcu", "fits": True, "checks": [
            {"resource": "sram", "holds": "peak activations", "need_bytes": 236, "limit_bytes": 240, "ok": True,
             "used": 0.98}]},
        "curve": curve}))
    return out


def test_dashboard_order_counts_and_trials(toy_run: Path) -> None:
    html = write_report(toy_run).read_text()
    with RunStore.open(toy_run) as store:
        trials = [t.to_dict() for t in store.trials()]
    counts = {s: sum(t["status"] == s for t in trials) for s in ("ok", "failed", "infeasible")}
    assert counts["failed"] and counts["infeasible"] and counts["ok"], counts  # the toy run has each kind
    for status, n in counts.items():
        assert f"<b>{n}</b> {status}" in html
    # plots first: every image comes before the best-architecture section and the trials table
    assert html.index("<img") < html.index("Best architecture") < html.index("<h2>Trials</h2>")
    for name in ("pareto.png", "history.png", "learning_curve.png"):
        assert (toy_run / name).is_file(), name
    assert html.count("data:image/png;base64,") == 3
    # one row per trial, numbered as in the store (0-based), with its status and time
    table = html[html.index("<h2>Trials</h2>"):]
    rows = re.findall(r"<tr><td>(\d+)</td><td class='l'><span class='\w*'>(\w+)</span></td>", table)
    assert [(int(n), s) for n, s in rows] == [(t["number"], t["status"]) for t in trials]
    assert rows[0][0] == "0"
    assert "time (s)" in table and "boom on" in table  # the failed trials say why


def test_pareto_draws_the_limits(toy_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.axes import Axes

    drawn: list[float] = []
    original = Axes.axvline

    def spy(self: Axes, x: float = 0, *args: Any, **kwargs: Any) -> Any:
        drawn.append(x)
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(Axes, "axvline", spy)
    write_report(toy_run)
    assert sorted(drawn) == sorted(LIMITS.values())


def test_no_learning_curve_without_one(toy_run: Path, tmp_path: Path) -> None:
    """Runs made before the curve was recorded still get a page (no learning-curve plot)."""
    import shutil

    run = tmp_path / "old"
    shutil.copytree(toy_run, run)
    (run / "learning_curve.png").unlink()
    summary = json.loads((run / "best" / "summary.json").read_text())
    del summary["curve"]
    (run / "best" / "summary.json").write_text(json.dumps(summary))
    html = write_report(run).read_text()
    assert not (run / "learning_curve.png").exists() and html.count("data:image/png;base64,") == 2
