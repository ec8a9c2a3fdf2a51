"""The shared pieces of the jobs: run folders checked before any work, the config base, atomic writes, and the
one ``-o key=value`` parser of every command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nasforge.cli import main


class Called(Exception):
    """Raised by a stand-in for work that must not start."""


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make loading data and building supernets fail loudly, so a test shows they were never reached."""
    from nasforge.jobs import _oneshot

    seen: list[str] = []

    def stop(what: str) -> Any:
        def f(*_a: Any, **_k: Any) -> Any:
            seen.append(what)
            raise Called(what)
        return f

    monkeypatch.setattr(_oneshot, "prepare_space", stop("supernet"))
    monkeypatch.setattr(_oneshot, "_train", stop("training"))
    monkeypatch.setattr("nasforge.data.load_dataset", stop("data"))
    monkeypatch.setattr("nasforge.runner._constraints.check_satisfiable", stop("search work"))
    return seen


def _oneshot_run(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.yaml").write_text("job: oneshot\nmethod: spos\n")
    (path / "result.json").write_text("{}")
    return path


def _search_run(path: Path) -> Path:
    from nasforge.runner import RunStore

    RunStore.create(path, {"extra": {"job": "search", "options": {}}}).close()
    return path


def _files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize("method", ["spos", "darts", "proxyless"])
def test_oneshot_refuses_a_folder_with_a_run_before_any_work(method: str, tmp_path: Path, no_work: list[str],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: spos trained the whole supernet before refusing the folder; darts/proxyless wrote into it."""
    out = _oneshot_run(tmp_path / "run")
    before = _files(out)
    assert main(["oneshot", method, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{out} already holds a oneshot run" in err and len(err.splitlines()) == 1, err
    assert no_work == [] and _files(out) == before


@pytest.mark.parametrize("method", ["darts", "proxyless"])
def test_oneshot_refuses_a_non_run_default_folder(method: str, tmp_path: Path, no_work: list[str],
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: darts and proxyless silently wrote into an existing default folder."""
    monkeypatch.chdir(tmp_path)
    default = tmp_path / "runs" / f"oneshot-{method}-0"
    default.mkdir(parents=True)
    (default / "notes.txt").write_text("precious")
    assert main(["oneshot", method]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a nasforge run" in err and len(err.splitlines()) == 1, err
    assert no_work == [] and _files(default) == ["notes.txt"]


def test_a_run_of_another_job_is_named(tmp_path: Path, no_work: list[str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    search = _search_run(tmp_path / "s")
    assert main(["oneshot", "spos", "--out", str(search)]) == 2
    assert f"{search} holds a search run, not a oneshot run" in capsys.readouterr().err
    one = _oneshot_run(tmp_path / "o")
    assert main(["search", "--out", str(one)]) == 2
    assert f"{one} holds a oneshot run, not a search run" in capsys.readouterr().err
    assert main(["search", "--out", str(one), "--resume"]) == 2
    assert f"{one} holds a oneshot run, not a search run" in capsys.readouterr().err
    assert no_work == []


def test_benchmark_checks_its_folder_and_options_before_reading_the_table(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    absent = str(tmp_path / "absent.csv")  # never read: the folder is refused first
    assert main(["benchmark", "--table", absent, "--arch-col", "a", "--reward-col", "r", "--out", str(mine)]) == 2
    assert "not a nasforge run" in capsys.readouterr().err
    cfg = tmp_path / "b.yaml"
    cfg.write_text(f"table: {absent}\narch_col: a\n")
    assert main(["benchmark", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert "benchmark: missing option reward_col" in err and len(err.splitlines()) == 1, err


def test_job_of_reads_old_runs_too(tmp_path: Path) -> None:
    from nasforge.jobs._runs import job_of
    from nasforge.runner import RunStore

    RunStore.create(tmp_path / "old-search", {"extra": {"job": {"budget": 3}}}).close()
    RunStore.create(tmp_path / "plain", {}).close()
    (tmp_path / "old-oneshot").mkdir()
    (tmp_path / "old-oneshot" / "config.yaml").write_text("method: darts\nsupernet_options: {}\n")
    assert job_of(tmp_path / "old-search") == "search"
    assert job_of(tmp_path / "plain") == "run_search"
    assert job_of(tmp_path / "old-oneshot") == "oneshot"
    assert job_of(tmp_path) is None


@pytest.mark.parametrize("job", ["search", "oneshot", "benchmark"])
def test_config_file_unknown_key_is_one_line(job: str, tmp_path: Path, no_work: list[str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("seeds: 2\nepohcs: 3\n" if job == "benchmark" else "epochs: 2\nepohcs: 3\n")
    args = {"search": ["search"], "oneshot": ["oneshot", "darts"], "benchmark": ["benchmark"]}[job]
    assert main([*args, "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown key 'epohcs'" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_flags_override_the_config_file_and_options_merge(tmp_path: Path) -> None:
    from nasforge.jobs._oneshot import OneShotConfig

    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 2\nspace_options: {C: 4, N: 1}\nconstraints: ['macs<=1e9']\n")
    given = OneShotConfig.merge_given(cfg, {"method": "darts", "epochs": 5, "space_options": {"N": 2},
                                            "constraints": ["params<=1e6"], "seed": None})
    assert given == {"method": "darts", "epochs": 5, "space_options": {"C": 4, "N": 2},
                     "constraints": ["macs<=1e9", "params<=1e6"]}
    c = OneShotConfig.new(given)
    assert c.epochs == 5 and c.seed == 0 and c.default_out() == Path("runs/oneshot-darts-0")


def test_search_config_normalises_what_the_cli_used_to() -> None:
    from nasforge.jobs._search import SearchConfig

    assert SearchConfig(device="none").device is None and SearchConfig(device="").device is None
    assert SearchConfig.new({"device": "none"}).device is None


def test_resume_merge_rules() -> None:
    from nasforge.errors import NasforgeError
    from nasforge.jobs._oneshot import OneShotConfig
    from nasforge.jobs._search import SearchConfig

    stored = {**SearchConfig(budget=5, epochs=1).to_dict(), "space_options": {"C": 4, "N": 1}}
    new = SearchConfig.resumed(stored, {"budget": 9, "epochs": 1, "space_options": {"C": 4}}, "runs/x")
    assert (new.budget, new.epochs, new.out) == (9, 1, "runs/x")
    with pytest.raises(NasforgeError, match="epochs was 1, now 2; on resume only budget, workers, final_epochs"):
        SearchConfig.resumed(stored, {"epochs": 2}, "runs/x")
    with pytest.raises(NasforgeError, match="space_options"):
        SearchConfig.resumed(stored, {"space_options": {"C": 8}}, "runs/x")
    with pytest.raises(NasforgeError, match="a oneshot run cannot be resumed"):
        OneShotConfig.resumed({"method": "darts", "epochs": 1}, {"epochs": 2}, "runs/y")


def test_atomic_writes_leave_no_temp_files(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    from nasforge._files import atomic_dir, save_figure, write_atomic

    write_atomic(tmp_path / "a.txt", "one")
    write_atomic(tmp_path / "a.txt", b"two")
    assert (tmp_path / "a.txt").read_text() == "two"
    fig = Figure()
    fig.subplots().plot([0, 1])
    save_figure(fig, tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "d") as d:
        (d / "x").write_text("half")
        raise RuntimeError("killed")
    assert not (tmp_path / "d").exists()
    with atomic_dir(tmp_path / "d") as d:
        (d / "x").write_text("whole")
    assert (tmp_path / "d" / "x").read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "d", "f.png"]


# -- one -o parser for every command --------------------------------------------------------------------------
def test_option_parser_reads_lists_either_way() -> None:
    from nasforge.cli._options import parse_options

    assert parse_options(["widths=0.5,1.0"]) == parse_options(["widths=[0.5,1.0]"]) == {"widths": [0.5, 1.0]}
    assert parse_options(["depths=[[1,2],[1,2,3]]", "k=3", "b=true", "name=a"]) == {
        "depths": [[1, 2], [1, 2, 3]], "k": 3, "b": True, "name": "a"}


def _capture(monkeypatch: pytest.MonkeyPatch, target: str, seen: list[Any], pick: Any) -> None:
    def fake(*a: Any, **k: Any) -> Any:
        seen.append(pick(*a, **k))
        raise Called(target)
    monkeypatch.setattr(target, fake)


@pytest.mark.parametrize("widths", ["0.5,1.0", "[0.5,1.0]", "[0.5, 1.0]"])
def test_every_command_reads_list_options_the_same(widths: str, monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    """`-o widths=0.5,1.0` and `-o widths=[0.5,1.0]` give the same list in every command that takes -o."""
    seen: list[Any] = []
    # the CLI imports the library when a command runs (a fast start), so the library's own names are patched
    _capture(monkeypatch, "nasforge.jobs._search.run_job", seen, lambda given, **_: given["space_options"])
    _capture(monkeypatch, "nasforge.jobs._oneshot.run_oneshot", seen, lambda cfg, **_: cfg.space_options)
    _capture(monkeypatch, "nasforge.design.tinynas", seen, lambda *a, **_: a[7])
    _capture(monkeypatch, "nasforge.spaces.get_space", seen, lambda name, **o: o)  # space and latency commands
    cmds = [["search", "-o", f"widths={widths}", "--out", str(tmp_path / "s")],
            ["oneshot", "spos", "--space", "mobilenet", "-o", f"widths={widths}", "--out", str(tmp_path / "o")],
            ["design", "tinynas", "--device", "stm32f746", "-o", f"widths={widths}"],
            ["space", "describe", "mobilenet", "-o", f"widths={widths}"],
            ["space", "sample", "mobilenet", "-o", f"widths={widths}"],
            ["latency", "measure", "--space", "mobilenet", "--arch", "x", "-o", f"widths={widths}"]]
    for cmd in cmds:
        with pytest.raises(Called):
            main(cmd)
    assert len(seen) == len(cmds)
    assert all(s["widths"] == [0.5, 1.0] for s in seen), seen


# -- SearchSpace.for_data ------------------------------------------------------------------------------------
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "spaces" / "tiny_mcu.yaml"


def _every_space() -> list[tuple[str, dict[str, Any]]]:
    from nasforge.spaces import get_space, list_spaces

    small = {"nb201": {"C": 4, "N": 1}, "darts": {"C": 4, "layers": 3}, "nasnet": {"C": 4, "layers": 3, "B": 2},
             "lattice": {"layers": 3, "levels": 2, "base_channels": 4}, "mobilenet": {"stage_channels": [8, 16],
             "stage_strides": [2, 1], "depths": [1, 2], "head_channels": 16, "stem_channels": 8,
             "first_channels": 8}, "config": {"path": str(EXAMPLE)}}
    classifiers = [name for name in list_spaces() if "classification" in get_space(name, **small.get(name, {})).tasks]
    return [(name, small.get(name, {})) for name in classifiers]  # the dense tasks: SpaceSuite's for_data test


@pytest.mark.parametrize(("name", "options"), _every_space())
def test_every_space_fits_the_data(name: str, options: dict[str, Any]) -> None:
    """for_data gives a space whose networks take the data's images (re-channelled where the stem is fixed at 3
    channels) and predict its classes; options the user set (``keep``) stay."""
    import numpy as np
    import torch

    from nasforge.spaces import get_space

    space = get_space(name, **options)
    fitted = space.for_data((1, 12, 12), 7)
    assert fitted is not space and fitted.name == space.name
    arch = fitted.sample(np.random.default_rng(0))
    shape = fitted.input_shape(arch)
    assert shape[0] in (1, 3) and (shape[0] == 1 or not hasattr(space, "in_channels"))
    assert shape[1] >= 12 or name == "config"  # a config file keeps its own resolutions
    model = fitted.build(arch).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, *shape)).shape == (2, 7)
    assert fitted.cost(arch).macs > 0
    kept = space.for_data((1, 12, 12), 7, keep={"num_classes", *options})
    with torch.no_grad():
        out = kept.build(arch).eval()(torch.zeros(2, *kept.input_shape(arch)))
    assert out.shape[1] == space.num_classes != 7  # type: ignore[attr-defined]


def test_for_data_says_what_is_wrong() -> None:
    from nasforge.errors import NasforgeError
    from nasforge.spaces import get_space

    with pytest.raises(NasforgeError, match=r"input shape \(8, 8\) must be \(channels, height, width\)"):
        get_space("nb201").for_data((8, 8), 10)
    with pytest.raises(NasforgeError, match="at least 2 classes"):
        get_space("nb201").for_data((1, 8, 8), 1)


def test_oneshot_on_a_config_space_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: `nasforge oneshot <method> --space config ...` always failed (num_classes was passed to the
    config space, which takes only path/spec)."""
    import json

    out = tmp_path / "run"
    assert main(["oneshot", "darts", "--space", "config", "-o", f"path={EXAMPLE}", "--dataset", "digits",
                 "--subset", "64", "--val-subset", "32", "--epochs", "1", "--batch-size", "32",
                 "--out", str(out), "--json"]) == 0, capsys.readouterr().err
    s = json.loads(capsys.readouterr().out)
    assert s["space"] == "config" and s["arch"].startswith("r32-w1|")
    assert (out / "config.yaml").read_text().startswith("job: oneshot\n")
    html = (out / "report.html").read_text()
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0  # `nasforge report` rebuilds the page of any job's run
    assert (out / "report.html").read_text() == html and s["arch"] in html


def test_a_oneshot_run_that_fails_late_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The run is assembled aside and renamed into place at the end: a failure after training (here in the
    step-memory measurement) leaves neither the output folder nor a temporary one."""
    from nasforge.jobs import _oneshot

    def boom(*_a: Any, **_k: Any) -> Any:
        raise Called("late")

    monkeypatch.setattr(_oneshot, "step_peak_memory", boom)
    out = tmp_path / "run"
    with pytest.raises(Called):
        main(["oneshot", "spos", "--space", "nb201", "-o", "C=4", "-o", "N=1", "--dataset", "digits",
              "--subset", "32", "--val-subset", "16", "--epochs", "1", "--budget", "2", "--out", str(out)])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["search"], ["oneshot", "darts"], ["oneshot", "spos"]])
def test_a_refused_folder_prints_exactly_one_line(command: list[str], tmp_path: Path, no_work: list[str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The progress bar starts with the first progress: a command refused before any work prints only its error
    line (it printed an empty bar line first)."""
    (tmp_path / "notes.txt").write_text("not a run")
    assert main([*command, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, repr(err)
    assert no_work == []
