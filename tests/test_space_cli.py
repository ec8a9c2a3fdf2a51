"""``nasforge space list | describe | sample``: output, JSON, and one-line errors with exit code 2."""

from __future__ import annotations

import pytest

from conftest import Cli
from nasforge.spaces import get_space

SMALL = ["-o", "resolutions=32,40", "-o", "in_channels=1", "-o", "stage_channels=[16, 24]", "-o",
         "stage_strides=2,2", "-o", "depths=1,2", "-o", "kernels=3,5", "-o", "expands=3,6", "-o", "widths=0.5"]


def test_list_shows_spaces_with_sizes(cli: Cli) -> None:
    rows = {r["name"]: r["size"] for r in cli.json("space", "list")}
    assert rows["mobilenet"] == get_space("mobilenet").size()


def test_describe_json_has_exact_size_and_cost_range(cli: Cli) -> None:
    d = cli.json("space", "describe", "mobilenet", *SMALL, "--samples", "30")
    assert d["size"] == 2 * (4 + 16) ** 2 == get_space("mobilenet", resolutions=[32, 40], in_channels=1,
                                                      stage_channels=[16, 24], stage_strides=[2, 2],
                                                      depths=[1, 2], kernels=[3, 5], expands=[3, 6],
                                                      widths=[0.5]).size()
    assert d["decisions"][0] == {"name": "resolution", "choices": [32, 40]}
    lo, hi = d["cost_range"]["macs"]
    assert 0 < lo < hi


def test_describe_default_size_is_a_json_integer(cli: Cli) -> None:
    d = cli.json("space", "describe", "mobilenet", "--samples", "3")
    assert isinstance(d["size"], int) and d["size"] == get_space("mobilenet").size() > 2**64


def test_sample_is_seeded_and_parseable(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    rows = cli.json("space", "sample", "mobilenet", "-n", "4", "--seed", "3", *SMALL)
    assert cli("space", "sample", "mobilenet", "-n", "4", "--seed", "3", *SMALL) == 0
    text = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in text] == [r["arch"] for r in rows]
    sp = get_space("mobilenet", resolutions=[32, 40], in_channels=1, stage_channels=[16, 24], stage_strides=[2, 2],
                   depths=[1, 2], kernels=[3, 5], expands=[3, 6], widths=[0.5])
    for r in rows:
        c = sp.cost(sp.parse(r["arch"]))
        assert (r["params"], r["macs"], r["peak_memory_bytes"]) == (c.params, c.macs, c.peak_memory_bytes)


@pytest.mark.parametrize(("argv", "message"), [
    (["space", "describe", "nope"], "unknown space 'nope'; known: "),
    (["space", "sample", "mobilenet", "-o", "kernels=3,4"], "'kernels' has bad value 4; allowed: odd ints"),
    (["space", "sample", "mobilenet", "-o", "widths=0,1"], "'widths' has bad value 0; allowed"),
    (["space", "sample", "mobilenet", "-o", "colour=red"], "bad option for space 'mobilenet'"),
    (["space", "sample", "mobilenet", "-o", "kernels"], "bad --option 'kernels'; expected key=value"),
    (["space", "sample", "mobilenet", "-n", "0"], "-n must be >= 1"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str, cli: Cli) -> None:
    assert message in cli.error(*argv)
