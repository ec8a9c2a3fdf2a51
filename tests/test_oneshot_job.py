"""The one-shot job on digits: defaults sized to the data (a small supernet at 8x8, DARTS' alpha learning rate
from the run's steps), accuracies that say what they measure and are fractions, and a warning when the
architecture parameters barely moved."""

from __future__ import annotations

import pytest
import torch

from nasforge.jobs._oneshot_defaults import ALPHA_TRAVEL, ARCH_LR_RANGE, darts_arch_lr

torch.set_num_threads(1)


def test_darts_arch_lr_is_sized_to_the_run() -> None:
    # 3 digits epochs (1,294 images, batch 64: 21 steps each) get the measured 0.3; longer runs move alpha as far
    assert darts_arch_lr(3, 0, 1294, 64) == pytest.approx(min(ARCH_LR_RANGE[1], ALPHA_TRAVEL / 63))
    assert darts_arch_lr(10, 0, 1294, 64) == pytest.approx(ALPHA_TRAVEL / 210)
    assert darts_arch_lr(10, 5, 1294, 64) == pytest.approx(ALPHA_TRAVEL / 105)  # warm-up epochs move no alpha
    assert darts_arch_lr(50, 0, 25000, 64) == pytest.approx(ALPHA_TRAVEL / (50 * 391))  # the DARTS paper: ~1e-3
    assert darts_arch_lr(600, 0, 50000, 64) == ARCH_LR_RANGE[0]


@pytest.mark.slow
def test_alpha_that_did_not_move_is_warned_about_on_stderr_and_in_the_summary(cli, tmp_path) -> None:
    s = cli.json("oneshot", "darts", "--dataset", "digits", "--subset", "64", "--epochs", "1", "--arch-lr", "0",
                 "--out", str(tmp_path / "d"))
    assert s["settings"]["arch_lr"] == 0 and s["alpha_max_prob_change"] < 0.02
    assert len(s["warnings"]) == 1 and "barely moved" in s["warnings"][0]
    assert [ln for ln in cli.err.splitlines() if ln.startswith("warning:")] == [f"warning: {s['warnings'][0]}"]
    assert "darts epoch 1/1 step 1/1" in cli.err  # progress on stderr under --json


@pytest.mark.slow
def test_dataset_defaults_are_used_and_reported(cli, tmp_path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the run trains digits on 1 thread and gives the caller's count back
    try:
        s = cli.json("oneshot", "darts", "--dataset", "digits", "--subset", "64", "--epochs", "1",
                     "-o", "N=2", "--out", str(tmp_path / "d"))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert s["settings"]["space_options"] == {"C": 8}  # N was given: the user's value wins, C is the dataset's
    assert s["settings"]["batch_size"] == 64 and s["settings"]["lr"] == 0.025
    assert s["settings"]["temperature_end"] == 0.1
    assert s["settings"]["arch_lr"] == ARCH_LR_RANGE[1]  # one step: the largest
    assert s["settings"]["threads"] == 1


@pytest.mark.slow
def test_retrain_and_bad_settings(cli, tmp_path) -> None:
    s = cli.json("oneshot", "spos", "--dataset", "digits", "--subset", "64", "--epochs", "1", "--budget", "2",
                 "-o", "C=4", "--retrain-epochs", "1", "--out", str(tmp_path / "s"))
    assert s["retrain_epochs"] == 1 and 0 <= s["retrain_val_acc"] <= 1 and 0 <= s["inherited_val_acc"] <= 1
    assert "supernet_val_acc" not in s and s["warnings"] == []  # SPOS has no mixed supernet and no alpha
    assert s["settings"]["lr"] == 0.05 and s["settings"]["batch_size"] == 64  # SPOS' own weight lr
    assert not (tmp_path / "s" / "probabilities.png").exists() and (tmp_path / "s" / "history.png").exists()
    for args, msg in ((["spos", "--arch-lr", "0.1"], "--arch-lr 0.1 must be >= 0 and applies to darts and proxyless"),
                      (["darts", "--temperature-end", "0"], "--temperature-end 0.0 must be in (0, 1]"),
                      (["darts", "--retrain-epochs", "-1"], "--retrain-epochs -1 must be")):
        assert msg in cli.error("oneshot", *args, "--dataset", "digits", "--out", str(tmp_path / "x"))


@pytest.mark.slow
def test_darts_with_the_digits_defaults_learns(cli, tmp_path) -> None:
    """One epoch of the default DARTS on all of digits (21 steps): the supernet, the derived architecture with
    its inherited weights and the architecture parameters all clearly beyond chance (0.1) and the start."""
    s = cli.json("oneshot", "darts", "--space", "nb201", "--dataset", "digits", "--epochs", "1",
                 "--out", str(tmp_path / "d"))
    assert s["supernet_val_acc"] >= 0.5 and s["inherited_val_acc"] >= 0.3, s
    assert s["alpha_max_prob_change"] >= 0.1 and s["warnings"] == []
    assert all(0 <= s[k] <= 1 for k in ("supernet_val_acc", "inherited_val_acc"))
