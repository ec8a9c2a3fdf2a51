"""Latency measurement: stable positive numbers, threads restored, onnxruntime path, CLI and bad input."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from nasforge.cli import main
from nasforge.errors import NasforgeError
from nasforge.hardware import measure_latencies, measure_latency
from nasforge.hardware._latency import stats_of

TINY = ["-o", "stage_channels=16,24", "-o", "stage_strides=2,2", "-o", "depths=1", "-o", "kernels=3",
        "-o", "expands=3", "-o", "widths=0.5", "-o", "resolutions=32", "-o", "head_channels=32",
        "-o", "num_classes=10"]


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


def test_stats_by_hand() -> None:
    s = stats_of([1.0, 2.0, 3.0, 4.0, 100.0], "cpu", "torch", 1)
    assert s.median_ms == 3.0 and s.min_ms == 1.0 and s.iqr_ms == 2.0 and s.repeats == 5


def test_measure_is_positive_stable_and_restores_threads() -> None:
    m = _net().train()
    before = torch.get_num_threads()
    a = measure_latency(m, (1, 3, 32, 32), threads=1, warmup=3, repeats=15)
    b = measure_latency(m, (1, 3, 32, 32), threads=1, warmup=3, repeats=15)
    assert torch.get_num_threads() == before
    assert m.training  # mode restored
    for s in (a, b):
        assert 0 < s.min_ms <= s.median_ms and s.iqr_ms >= 0 and s.repeats == 15 and s.threads == 1
    assert 0.2 < a.min_ms / b.min_ms < 5  # same module twice: same order of magnitude even on a busy host
    big = measure_latency(nn.Sequential(*[nn.Conv2d(16, 16, 3, padding=1) for _ in range(8)]), (1, 16, 64, 64),
                          warmup=2, repeats=7)
    assert big.min_ms > a.min_ms  # 8 convs on 64x64 cost more than the tiny net on 32x32


def test_warmup_lasts_at_least_min_warmup_s() -> None:
    calls = []
    m = nn.Identity()
    m.register_forward_hook(lambda *a: calls.append(1))
    measure_latency(m, (1, 4), warmup=1, repeats=1, min_warmup_s=0.05)
    assert len(calls) > 3  # far more than warmup + repeats: the warm-up ran for 50 ms


def test_measure_latencies_interleaves_rounds_per_module_shapes_and_restores_modes() -> None:
    order: list[str] = []
    small, big = _net().train(), nn.Sequential(*[nn.Conv2d(16, 16, 3, padding=1) for _ in range(8)]).eval()
    small.register_forward_hook(lambda *a: order.append("s"))
    big.register_forward_hook(lambda *a: order.append("b"))
    before = torch.get_num_threads()
    a, b = measure_latencies([small, big], [(1, 3, 32, 32), (1, 16, 64, 64)], warmup=1, repeats=3, rounds=4,
                             min_warmup_s=0.0, min_time_s=0.0)
    assert a.repeats == b.repeats == 12 and b.min_ms > a.min_ms
    assert "".join(order) == "ssssbbbb" * 4  # every round runs each module (1 warm-up + 3 timed) in turn
    assert small.training and not big.training and torch.get_num_threads() == before
    (c,) = measure_latencies([_net()], (1, 3, 16, 16), repeats=2, rounds=2, min_warmup_s=0.0, min_time_s=0.0)
    assert c.repeats == 4 and c.min_ms > 0  # one shape for all modules
    (d,) = measure_latencies([nn.Identity()], (1, 4), repeats=2, rounds=2, min_warmup_s=0.0, min_time_s=0.05)
    assert d.repeats > 4  # rounds go on until they have lasted min_time_s
    with pytest.raises(NasforgeError, match="2 modules but 3 input shapes"):
        measure_latencies([small, big], [(1, 3, 8, 8)] * 3)
    with pytest.raises(NasforgeError, match="rounds=0"):
        measure_latencies([small], (1, 3, 8, 8), rounds=0)


@pytest.mark.slow
def test_onnxruntime() -> None:
    s = measure_latency(_net(), (1, 3, 32, 32), runtime="onnxruntime", warmup=2, repeats=10)
    assert s.runtime == "onnxruntime" and s.min_ms > 0


@pytest.mark.parametrize(("kw", "msg"), [
    ({"runtime": "tvm"}, "unknown runtime 'tvm'"),
    ({"device": "tpu"}, "unknown latency device 'tpu'"),
    ({"threads": 0}, "threads=0"),
    ({"repeats": 0}, "repeats=0"),
])
def test_bad_arguments(kw: dict[str, object], msg: str) -> None:
    with pytest.raises(NasforgeError, match=msg):
        measure_latency(_net(), (1, 3, 8, 8), **kw)  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_missing_is_one_line_error() -> None:
    with pytest.raises(NasforgeError, match="CUDA is not available"):
        measure_latency(_net(), (1, 3, 8, 8), device="cuda")


def test_cli_measure(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["latency", "measure", "--space", "mobilenet", *TINY, "--arch", "r32-w0.5|k3e1|k3e3|k3e3",
            "--repeats", "5", "--warmup", "1", "--json"]
    assert main(args) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["median_ms"] > 0 and d["device"] == "cpu"
    assert main([*args[:-1], "--runtime", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "unknown runtime 'bogus'" in err and err.count("\n") == 1
