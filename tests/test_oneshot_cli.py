"""``nasforge oneshot``: run directories and --json for each method on tiny settings; one-line errors, exit 2."""

from __future__ import annotations

import json

import pytest
import torch

from nasforge.cli import main

torch.set_num_threads(1)

NB201 = ["--space", "nb201", "-o", "C=4", "-o", "N=1", "-o", "resolution=8"]
MOBILE = ["--space", "mobilenet", "-o", "stage_channels=[8,16]", "-o", "stage_strides=[2,1]", "-o", "depths=[1,2]",
          "-o", "kernels=[3,5]", "-o", "expands=[1,3]", "-o", "head_channels=16", "-o", "stem_channels=8",
          "-o", "first_channels=8", "-o", "resolutions=[8,16]", "-o", "widths=[0.5,1.0]"]
TINY = ["--dataset", "digits", "--subset", "64", "--epochs", "2", "--batch-size", "32", "--seed", "1"]


def run_json(capsys, args: list[str]) -> dict:
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_darts_writes_run_dir(tmp_path, capsys) -> None:
    out = tmp_path / "d"
    s = run_json(capsys, ["oneshot", "darts", *NB201, *TINY, "--out", str(out)])
    assert s["epochs"] == 2 and s["seconds"] > 0 and s["peak_memory_bytes"] > 0
    assert len(s["derived_per_epoch"]) == 2 and s["arch"] == s["derived_per_epoch"][-1]
    assert (out / "arch.txt").read_text().strip() == f"nb201:{s['arch']}"
    for name in ("probabilities.png", "report.html", "profile.json", "config.yaml", "result.json"):
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "profile.json").read_text())["params"] == s["cost"]["params"]


@pytest.mark.slow
def test_proxyless_reports_latencies_and_spos_searches(tmp_path, capsys) -> None:
    s = run_json(capsys, ["oneshot", "proxyless", *MOBILE, *TINY, "--latency-target", "50",
                          "--supernet-option", "width=0.5", "--out", str(tmp_path / "p")])
    assert s["arch"].startswith("r8-w0.5|")  # the supernet's resolution (smallest) and the asked width
    assert s["expected_latency"] > 0 and s["predicted_latency"] > 0 and s["latency_target"] == 50
    assert s["measured_latency"] > 0  # the derived network timed on the host, as the table was fitted
    cal = s["latency_calibration"]
    assert cal["calibration_networks"] >= 24 and 0 <= cal["calibration_mean_rel_err"] <= cal["calibration_max_rel_err"]
    s = run_json(capsys, ["oneshot", "spos", *MOBILE, *TINY, "--budget", "3", "--out", str(tmp_path / "s")])
    assert s["search_trials"] == 3 and 0 <= s["inherited_val_acc"] <= 1
    assert (tmp_path / "s" / "history.png").exists() and (tmp_path / "s" / "search").is_dir()


@pytest.mark.slow
def test_darts_pt_selection_uses_only_val_subset_images(tmp_path, capsys, monkeypatch) -> None:
    """--val-subset caps the validation data DARTS-PT scores (every one of its evaluations), not only training."""
    from nasforge.oneshot import _method_darts

    seen: list[int] = []
    mixed_accuracy = _method_darts.mixed_accuracy

    def spy(net, val, batch_size=256, temperature=1.0):
        seen.append(len(val[0]))
        return mixed_accuracy(net, val, batch_size, temperature)

    monkeypatch.setattr(_method_darts, "mixed_accuracy", spy)
    s = run_json(capsys, ["oneshot", "darts", *NB201, "--dataset", "digits", "--subset", "64", "--val-subset", "20",
                          "--epochs", "1", "--batch-size", "32", "--selection", "pt", "--out", str(tmp_path / "d")])
    assert "alpha_arch" in s and len(seen) > 6 and set(seen) == {20}  # digits' whole validation split is 144


@pytest.mark.parametrize(("args", "message"), [
    (["oneshot", "enas", *TINY], "unknown one-shot method 'enas'; allowed: darts, proxyless, spos"),
    (["oneshot", "darts", "--space", "nope", *TINY], "unknown space 'nope'"),
    (["oneshot", "darts", "--space", "lattice", *TINY], "has no supernet; supernets exist for: config, darts"),
    (["oneshot", "spos", *NB201, "--latency-target", "5", *TINY], "apply to proxyless only"),
    (["oneshot", "darts", *NB201, "--selection", "best", *TINY], "unknown selection 'best'; allowed: alpha, pt"),
    (["oneshot", "darts", *NB201, "--warmup-epochs", "2", *TINY], "warmup epochs=2 must be in 0..1"),
    (["oneshot", "proxyless", *NB201, "--latency-target", "1", "--latency-model", "missing.json", *TINY],
     "does not exist"),
    pytest.param(["oneshot", "proxyless", *MOBILE, "--latency-target", "0.00001", *TINY],
                 "unreachable: the smallest reachable", marks=pytest.mark.slow),  # measures the supernet's latencies
    (["oneshot", "proxyless", *MOBILE, "--supernet-option", "width=0.7", *TINY], "width=0.7 is not a choice"),
    (["oneshot", "darts", *NB201, "--selection", "pt", "--val-subset", "0", *TINY],
     "--val-subset 0 must be a positive number of images"),
])
def test_bad_input_is_one_line_exit_2(args, message, capsys, tmp_path) -> None:
    assert main([*args, "--out", str(tmp_path / "x")]) == 2
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.startswith("error")]
    assert len(err) == 1 and message in err[0]  # progress logs may precede the error line
