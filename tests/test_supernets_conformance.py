"""Every registered supernet runs the conformance suite ``nasforge.testing.pytest_supernets.SupernetSuite``, and
``nasforge oneshot spos --space NAME`` end to end (``--space config`` used to fail before any training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Cli
from nasforge.errors import NasforgeError
from nasforge.oneshot import list_supernets, make_supernet
from nasforge.spaces import get_space
from nasforge.testing.pytest_spaces import TINY_CONFIG_YAML
from nasforge.testing.pytest_supernets import SupernetSuite


class TestSupernets(SupernetSuite):
    pass


def test_every_built_in_supernet_is_enrolled() -> None:
    assert {"nb201", "darts", "mobilenet", "config"} <= set(list_supernets())


@pytest.mark.parametrize("layers", [1, 2])
def test_darts_supernet_without_a_normal_cell_says_so(layers: int) -> None:
    """layers < 3 puts a reduction at every cell: was an IndexError while building the supernet."""
    space = get_space("darts", C=4, layers=layers, nodes=2, resolution=8)
    with pytest.raises(NasforgeError, match=f"layers={layers} has only reduction cells; use layers >= 3"):
        make_supernet(space)


#: small ``-o`` options per supernet's space for the command line (a new supernet needs an entry)
CLI_OPTIONS = {
    "nb201": ["-o", "C=4", "-o", "N=1"],
    "darts": ["-o", "C=4", "-o", "layers=3", "-o", "nodes=2"],
    "mobilenet": ["-o", "stage_channels=[8,16]", "-o", "stage_strides=[2,1]", "-o", "depths=[1,2]",
                  "-o", "kernels=[3]", "-o", "expands=[1,3]"],
    "config": [],  # the path is added per test
}


@pytest.mark.slow  # seconds each (training, search, report); the suite's for_data test is the fast check
@pytest.mark.parametrize("name", list_supernets())
def test_oneshot_command_runs_on_every_supernet(name: str, cli: Cli, tmp_path: Path) -> None:
    assert name in CLI_OPTIONS, f"give the new supernet {name!r} small command-line options in CLI_OPTIONS"
    opts = list(CLI_OPTIONS[name])
    if name == "config":
        (tmp_path / "space.yaml").write_text(TINY_CONFIG_YAML)
        opts += ["-o", f"path={tmp_path / 'space.yaml'}"]
    d = cli.json("oneshot", "spos", "--space", name, *opts, "--dataset", "digits", "--subset", "64", "--epochs", "1",
                 "--batch-size", "32", "--budget", "4", "--seed", "0", "--out", str(tmp_path / "run"))
    assert d["space"] == name and d["arch"] and 0.0 <= d["inherited_val_acc"] <= 1.0
    assert (tmp_path / "run" / "result.json").is_file()
