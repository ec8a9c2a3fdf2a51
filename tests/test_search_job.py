"""The main job end to end (`nasforge search`), `report`, `export`, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import onnxruntime as ort
import pytest
import torch

from nasforge.cli import main

FAST = ["--budget", "3", "--epochs", "1", "--final-epochs", "1", "--seed", "0"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("job") / "run"
    assert main(["search", *FAST, "--out", str(out), "--json"]) == 0
    return out


def test_search_writes_every_file(run_dir: Path) -> None:
    for name in ("trials.sqlite", "config.yaml", "pareto.png", "history.png", "learning_curve.png", "report.html",
                 "best/model.pt", "best/model.onnx", "best/summary.json"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((run_dir / "best" / "summary.json").read_text())
    assert summary["fits"]["device"] == "stm32f746" and summary["fits"]["fits"] is True
    assert summary["cost"]["precision"] == "int8"
    assert summary["onnx_max_abs_diff"] <= 1e-4
    (last,) = summary["curve"]  # one row per epoch of the final training (--final-epochs 1)
    assert last["epoch"] == 1 and last["val_acc"] == summary["val_acc"] and last["train_loss"] > 0
    html = (run_dir / "report.html").read_text()
    assert summary["arch"] in html and "data:image/png;base64," in html and "Per-layer cost" in html
    assert not list(run_dir.glob(".best.*")), "no temporary folder is left behind"


def test_onnx_matches_pytorch(run_dir: Path) -> None:
    from nasforge.jobs._search import load_best

    model, shape = load_best(run_dir)
    x = torch.randn(4, *shape)
    sess = ort.InferenceSession(str(run_dir / "best" / "model.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        assert abs(got - model(x).numpy()).max() < 1e-4


@pytest.mark.slow
def test_report_and_export_rebuild(run_dir: Path, tmp_path: Path) -> None:
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").is_file()
    assert main(["export", str(run_dir), "--format", "torchscript", "--out", str(tmp_path / "m.pt")]) == 0
    assert torch.jit.load(str(tmp_path / "m.pt"))(torch.zeros(1, *json.loads(
        (run_dir / "best" / "summary.json").read_text())["input_shape"])).shape[1] == 10
    assert main(["export", str(run_dir), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0


@pytest.mark.parametrize(("args", "needle"), [
    (["--dataset", "imagenet22k"], "unknown dataset 'imagenet22k'"),
    (["--device", "toaster"], "toaster"),
    (["--strategy", "telepathy"], "unknown strategy 'telepathy'"),
    (["--constraint", "macs<=lots"], "macs<=lots"),
    (["--constraint", "macs<=10"], "smallest seen"),
    (["--budget", "0"], "budget"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args: list[str], needle: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["search", *FAST, *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_refuses_a_directory_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    assert main(["search", *FAST, "--out", str(out)]) == 2
    assert "not a nasforge run" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert main(["report", str(out)]) == 2


def test_config_file_with_unknown_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("budget: 2\nbudjet: 3\n")
    assert main(["search", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert "unknown key 'budjet'" in capsys.readouterr().err


def test_latency_constraint_needs_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", *FAST, "--constraint", "latency<=5", "--out", str(tmp_path / "r")]) == 2
    assert "--latency-model" in capsys.readouterr().err
    assert main(["search", *FAST, "--constraint", "latency<=5", "--latency-model", str(tmp_path / "no.json"),
                 "--out", str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def _evaluated(run: Path) -> int:
    from nasforge.runner import RunStore

    with RunStore.open(run) as store:
        return sum(t.status != "infeasible" for t in store.trials())


@pytest.mark.slow
def test_resume_keeps_the_stored_options_unless_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Resuming without --budget keeps the run's budget (not the default 20); --budget N extends it; another
    option that differs from the stored run is one line, exit 2."""
    out = tmp_path / "run"
    assert main(["search", "--budget", "2", "--epochs", "1", "--final-epochs", "1", "--out", str(out), "--json"]) == 0
    assert _evaluated(out) == 2
    assert main(["search", "--out", str(out), "--resume", "--json"]) == 0
    assert _evaluated(out) == 2
    assert json.loads((out / "best" / "summary.json").read_text())["final_epochs"] == 1
    capsys.readouterr()
    assert main(["search", "--out", str(out), "--resume", "--epochs", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "epochs was 1, now 2" in err and len(err.splitlines()) == 1, err
    assert main(["search", "--out", str(out), "--resume", "--budget", "3", "--epochs", "1", "--json"]) == 0
    assert _evaluated(out) == 3
    assert main(["search", "--out", str(out), "--resume", "--json"]) == 0  # the extended budget is the run's now
    assert _evaluated(out) == 3
    from nasforge.runner import RunStore

    with RunStore.open(out) as store:
        extra = store.config["extra"]
        assert store.config["budget"] == 3 and extra["job"] == "search" and extra["options"]["budget"] == 3
