"""The search job's task option: bad input refused in one line with nothing written, and dense runs end to end
(the estimators on the built-in data, best/ with the ONNX checked by onnxruntime, the report) with a tiny space
that follows the dense contract (``dense_toy``), registered for the test only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nasforge.errors import NasforgeError
from nasforge.jobs._search import SearchConfig


@pytest.mark.parametrize(("args", "match"), [
    (["--task", "pose"], "unknown task 'pose'; allowed: classification, segmentation, detection"),
    (["--task", "detection", "--space", "nb201"], "space 'nb201' cannot serve task 'detection' (it serves: "
                                                  "classification)"),
    (["--task", "detection", "--space", "lattice", "--dataset", "digits"], "dataset 'digits' has no detection targets"),
    (["--task", "segmentation", "--space", "lattice", "--dataset", "coco", "--data-dir", "x"],
     "dataset 'coco' has no segmentation"),
    (["--dataset", "multiscale"], "dataset 'multiscale' holds segmentation/detection targets"),
])
def test_bad_task_input_is_one_line_and_writes_nothing(cli: Any, tmp_path: Path, args: list[str],
                                                        match: str) -> None:
    out = tmp_path / "run"
    err = cli.error("search", *args, "--device", "none", "--out", str(out))
    assert match in err
    assert not out.exists()


def test_coco_with_a_missing_image_is_one_line_and_writes_nothing(cli: Any, tmp_path: Path, toy_space: str) -> None:
    data = tmp_path / "coco"
    (data / "images").mkdir(parents=True)
    (data / "annotations.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png"}], "annotations": [], "categories": [{"id": 1, "name": "x"}]}))
    out = tmp_path / "run"
    err = cli.error("search", "--task", "detection", "--space", toy_space, "--dataset", "coco", "--data-dir", str(data),
                    "--device", "none", "--out", str(out))
    assert "a.png (id 1" in err and "does not exist" in err
    assert not out.exists()


def test_task_option_in_yaml_and_python_defaults_the_dataset(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("task: segmentation\nspace: lattice\n")
    given = SearchConfig.merge_given(cfg_file, {})
    cfg = SearchConfig.new(given)
    assert cfg.task == "segmentation" and cfg.dataset == "multiscale"
    assert SearchConfig(task="detection").space == "nasfpn" and SearchConfig().space == "mobilenet"
    assert SearchConfig.new({}).dataset == "digits" and SearchConfig.new({}).task == "classification"
    assert SearchConfig.new({"task": "detection", "dataset": "coco", "space": "lattice"}).dataset == "coco"
    with pytest.raises(NasforgeError, match="unknown task"):
        SearchConfig.new({"task": "Detection"})


@pytest.fixture
def toy_space(monkeypatch: pytest.MonkeyPatch) -> str:
    from dense_toy import TinyDenseSpace
    from nasforge.spaces import _base

    monkeypatch.setitem(_base._SPACES, "tinydense", TinyDenseSpace)
    return "tinydense"


SMALL_SPACES = {"detection": ["--space", "nasfpn", "-o", "cells=2", "-o", "channels=8", "-o", "head_convs=1"],
                "segmentation": ["--space", "lattice", "-o", "layers=3", "-o", "levels=2", "-o", "base_channels=4"]}


@pytest.mark.slow  # two tiny searches with training, export and report
@pytest.mark.parametrize("task", ["segmentation", "detection"])
def test_dense_search_end_to_end(cli: Any, tmp_path: Path, task: str) -> None:
    """``--task detection --space nasfpn`` and ``--task segmentation --space lattice``: a search, constraints, the
    final pick's files (ONNX checked, predictions and topology drawn), the report, and a resume."""
    out = tmp_path / task
    args = ["search", "--task", task, *SMALL_SPACES[task], "--device", "none", "--strategy", "random",
            "--budget", "2", "--epochs", "1", "--final-epochs", "1", "--batch-size", "16",
            "--dataset-option", "canvas=32", "--dataset-option", "min_size=6", "--dataset-option", "max_size=16",
            "--dataset-option", "counts=48,16,16",
            "--constraint", "macs<=1e9", "--out", str(out)]
    summary = cli.json(*args)
    best = summary["best"]
    assert best["task"] == task and best["metric"] == ("miou" if task == "segmentation" else "map50")
    assert 0.0 <= best["val_metric"] <= 1.0 and 0.0 <= best["test_metric"] <= 1.0
    assert set(best["per_class"]) <= set(best["classes"]) and best["per_class"]
    assert best["onnx_max_abs_diff"] <= 1e-4
    for f in ("best/model.onnx", "best/model.pt", "best/predictions.png", "best/topology.png", "best/summary.json",
              "report.html"):
        assert (out / f).is_file(), f
    html = (out / "report.html").read_text()
    assert "predictions.png" in html and "topology.png" in html
    assert ("mean IoU" if task == "segmentation" else "mAP@0.5") in html
    if task == "segmentation":
        return
    # resume with a larger budget continues the same run
    summary = cli.json(*args[:-2], "--budget", "3", "--out", str(out), "--resume")
    assert summary["trials"] == 3
