"""The YAML-defined ``config`` space: the example file works, and every bad file is one clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from nasforge.cli import main
from nasforge.errors import NasforgeError
from nasforge.spaces import get_space

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "spaces" / "tiny_mcu.yaml"


def test_example_file_defines_the_expected_space() -> None:
    sp = get_space("config", path=str(EXAMPLE))
    # 2 resolutions x 2 widths x (4 + 4**2) inverted-residual stages x 2 kernels x 2 basic depths
    assert sp.size() == 2 * 2 * 20 * 2 * 2 == len(set(sp.enumerate()))
    a = sp.parse("r40-w0.5|k5e6,k3e3|k5|b,b")
    net = sp.network_spec(a)
    assert net.input_shape == (1, 40, 40)
    assert [type(b).__name__ for st in net.stages for b in st] == [
        "InvertedResidual", "InvertedResidual", "ConvBNAct", "BasicBlock", "BasicBlock"]
    assert sp.cost(a).output_shape == (10,)
    assert sp.cost(a).params == net.cost().params


def test_head_scale_shrinks_the_head_below_width_one() -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    text = "r40-w0.5|k5e6,k3e3|k5|b,b"
    fixed = get_space("config", spec=data)
    scaled = get_space("config", spec={**data, "head": {**data["head"], "scale": True}})
    hc = data["head"]["channels"]
    assert fixed.network_spec(fixed.parse(text)).head[0].out_ch == hc
    assert scaled.network_spec(scaled.parse(text)).head[0].out_ch == hc // 2
    assert scaled.cost(scaled.parse(text)).params < fixed.cost(fixed.parse(text)).params


def test_spec_mapping_equals_file(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    a, b = get_space("config", path=EXAMPLE), get_space("config", spec=data)
    rng1, rng2 = np.random.default_rng(0), np.random.default_rng(0)
    assert [str(a.sample(rng1)) for _ in range(10)] == [str(b.sample(rng2)) for _ in range(10)]


def _write(tmp_path: Path, edit: dict[str, object] | None = None, text: str | None = None) -> str:
    data = yaml.safe_load(EXAMPLE.read_text())
    for key, value in (edit or {}).items():
        node = data
        *parents, last = key.split(".")
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is None:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value
    p = tmp_path / "space.yaml"
    p.write_text(text if text is not None else yaml.safe_dump(data))
    return str(p)


@pytest.mark.parametrize(("edit", "message"), [
    ({"colour": "red"}, "colour is an unknown key; allowed: input, num_classes, widths"),
    ({"stages.1.expand": [3]}, "stages[1].expand is an unknown key; allowed: block, channels, stride, depth, kernel"),
    ({"stages.0.channels": "many"}, "stages[0].channels must be an int >= 1, got 'many'"),
    ({"stages.0.kernel": []}, "stages[0].kernel is an empty choice list"),
    ({"stages.0.kernel": [3, 4]}, "stages[0].kernel has bad value 4; allowed: odd ints"),
    ({"stages.0.depth": 2}, "stages[0].depth must be a list of ints"),
    ({"stages.0.block": "transformer"}, "unknown block type 'transformer'; allowed: inverted_residual, conv_bn_act"),
    ({"stages.0.stride": 3}, "stages[0].stride must be an int in 1..2, got 3"),
    ({"input.resolutions": [4, 32]}, "smaller than the total stride 8 of stem and stages; allowed: resolutions >= 8"),
    ({"stages.0.expand": [0.01]}, "gives a block with no hidden channels"),
    ({"widths": [0.5, 0.5]}, "widths repeats a choice"),
    ({"stem": None}, "stem is missing (required: input, stem, stages)"),
    ({"act": "tanh"}, "act has bad value 'tanh'; allowed: relu"),
    ({"stages": []}, "stages must be a non-empty list"),
    ({"head.scale": "yes"}, "head.scale must be true or false, got 'yes'"),
    ({"head.size": 3}, "head.size is an unknown key; allowed: channels, scale"),
])
def test_bad_files_are_one_line_errors(tmp_path: Path, edit: dict[str, object], message: str) -> None:
    path = _write(tmp_path, edit)
    with pytest.raises(NasforgeError) as e:
        get_space("config", path=path)
    assert message in str(e.value) and "space.yaml" in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(NasforgeError, match="not found"):
        get_space("config", path=str(tmp_path / "nope.yaml"))
    with pytest.raises(NasforgeError, match="not valid YAML"):
        get_space("config", path=_write(tmp_path, text="stages: [unclosed"))
    with pytest.raises(NasforgeError, match="exactly one of path"):
        get_space("config")


def test_cli_describes_a_config_space(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["space", "describe", "config", "-o", f"path={EXAMPLE}", "--samples", "5"]) == 0
    assert "space config: 320 architectures" in capsys.readouterr().out
    assert main(["space", "describe", "config", "-o", f"path={_write(tmp_path, {'colour': 1})}"]) == 2
    assert "colour is an unknown key" in capsys.readouterr().err
