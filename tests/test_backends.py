"""The runner's backends without Ray running: thread limits per evaluation, trial resources, the schedule's depth
(``in_flight``) and the one-line refusals of bad backend input (nothing written to the run folder)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from nasforge.errors import NasforgeError  # noqa: E402
from nasforge.estimators import Result  # noqa: E402
from nasforge.runner import run_search  # noqa: E402
from nasforge.runner._backends import (  # noqa: E402
    InlineBackend,
    TrialResources,
    _blas,
    cores,
    make_backend,
    parse_resources,
    thread_limit,
)
from nasforge.spaces import Architecture  # noqa: E402
from ray_toy import free_port  # noqa: E402
from runner_toy import MutateBest, ToyEstimator, ToySpace  # noqa: E402


class ThreadsEstimator:
    """Reports the torch threads it ran with (reward 0.5)."""

    def evaluate(self, arch: Architecture) -> Result:
        return Result(0.5, {"threads": torch.get_num_threads()}, {}, 0.0)


def _blas_threads() -> list[int]:
    return [int(m["num_threads"]) for m in _blas().info() if m["user_api"] == "blas"]


def test_thread_limit_sets_and_restores_torch_and_blas() -> None:
    before, blas = torch.get_num_threads(), _blas_threads()
    with thread_limit(1):
        assert torch.get_num_threads() == 1
        assert all(n == 1 for n in _blas_threads())
    assert torch.get_num_threads() == before and _blas_threads() == blas
    with pytest.raises(RuntimeError), thread_limit(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before and _blas_threads() == blas


def test_each_evaluation_gets_the_cpus_it_was_given() -> None:
    space = ToySpace()
    before = torch.get_num_threads()
    inline = run_search(space, "random", ThreadsEstimator(), 2, seed=0, workers=1, trial_resources="cpu=1")
    assert {t.metrics["threads"] for t in inline.trials} == {1}
    assert torch.get_num_threads() == before  # never leaks into the caller


@pytest.mark.slow
def test_pool_workers_get_cores_over_workers_threads() -> None:
    pool = run_search(ToySpace(), "random", ThreadsEstimator(), 3, seed=0, workers=2)
    assert {t.metrics["threads"] for t in pool.trials} == {max(1, cores() // 2)}


@pytest.mark.parametrize(("text", "expect"), [
    ("cpu=1,gpu=0.5", TrialResources(cpu=1.0, gpu=0.5)),
    ("CPU=2, memory=2GB", TrialResources(cpu=2.0, memory=2_000_000_000)),
    ({"gpu": 1}, TrialResources(gpu=1.0)),
    (None, TrialResources()),
])
def test_parse_resources(text: object, expect: TrialResources) -> None:
    assert parse_resources(text) == expect  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "match"), [
    ("tpu=1", "unknown trial resource 'tpu'; allowed: cpu, gpu, memory"),
    ("cpu=-1", "must be a number >= 0"),
    ("gpu=x", "is not a number"),
    ("cpu", "expected NAME=AMOUNT"),
    ("memory=-3", "memory"),
])
def test_bad_resources_are_one_line(text: str, match: str) -> None:
    with pytest.raises(NasforgeError, match=match):
        parse_resources(text)


def test_in_flight_not_workers_decides_the_trials() -> None:
    """A tell-dependent strategy: the trials depend on how many are asked ahead, not on how many run at once."""
    def run(workers: int, in_flight: int | None) -> list[tuple[object, ...]]:
        space = ToySpace()
        est = ToyEstimator(fail_first=2)
        res = run_search(space, MutateBest(space, seed=7), est, 16, constraints=["macs<=120e3"], seed=7,
                         workers=workers, in_flight=in_flight, backend=InlineBackend(est))  # no pool to spawn
        return [t.key() for t in res.trials]

    assert run(1, 2) == run(2, None) == run(3, 2)
    assert run(1, None) != run(1, 2)  # MutateBest asks after each tell with one in flight


def test_gpu_needs_ray_and_unknown_backend() -> None:
    with pytest.raises(NasforgeError, match="gpu needs --backend ray"):
        make_backend(ToyEstimator(), 1, backend="local", resources="gpu=1")
    with pytest.raises(NasforgeError, match="unknown backend 'spark'; allowed: local, ray"):
        make_backend(ToyEstimator(), 1, backend="spark")


def _search_flags(out: Path, *flags: str) -> list[str]:
    return ["search", "--out", str(out), "--budget", "1", "--epochs", "1", *flags]


@pytest.mark.parametrize(("flags", "line"), [
    (["--backend", "ray", "--trial-resources", "tpu=1"], "unknown trial resource 'tpu'"),
    (["--backend", "ray", "--trial-resources", "cpu=-2"], "must be a number >= 0"),
    (["--backend", "dask"], "unknown backend 'dask'"),
    (["--ray-address", "127.0.0.1:1"], "--ray-address needs --backend ray"),
    (["--in-flight", "0"], "in_flight must be a positive integer"),
])
def test_bad_backend_input_is_one_line_and_writes_nothing(cli: Any, tmp_path: Path, flags: list[str],
                                                          line: str) -> None:
    out = tmp_path / "run"
    err = cli.error(*_search_flags(out, *flags))
    assert line in err and not out.exists()


def test_unreachable_ray_address_is_one_line_and_writes_nothing(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "run"
    err = cli.error(*_search_flags(out, "--backend", "ray", "--ray-address",
                                   f"127.0.0.1:{free_port()}"))
    assert "cannot reach a Ray cluster at 127.0.0.1:" in err and not out.exists()
    err = cli.error(*_search_flags(out, "--backend", "ray", "--ray-address", "nohost"))
    assert "--ray-address 'nohost' is not HOST:PORT" in err and not out.exists()


def test_backend_ray_without_ray_installed_says_how_to_install(cli: Any, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    out = tmp_path / "run"
    err = cli.error(*_search_flags(out, "--backend", "ray"))
    assert "pip install 'nasforge[ray]'" in err and not out.exists()
