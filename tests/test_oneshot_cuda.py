"""The CUDA path of the one-shot methods (runs only where CUDA is; CPU stays the default and is tested elsewhere)."""

from __future__ import annotations

import json

import pytest
import torch

from nasforge.cli import main
from nasforge.oneshot import darts, make_supernet, proxyless, spos
from nasforge.oneshot._memory import step_peak_memory
from nasforge.spaces import get_space

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

MOBILE = ["--space", "mobilenet", "-o", "stage_channels=[8,16]", "-o", "stage_strides=[2,1]", "-o", "depths=[1,2]",
          "-o", "kernels=[3,5]", "-o", "expands=[1,3]", "-o", "head_channels=16", "-o", "stem_channels=8",
          "-o", "first_channels=8", "-o", "resolutions=[8]", "-o", "widths=[1.0]"]


def _data(n: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g).cuda(), torch.randint(0, 10, (n,), generator=g).cuda()


@pytest.mark.parametrize("method", ["darts", "proxyless", "spos"])
def test_methods_train_on_cuda_and_match_the_standalone_network(method: str) -> None:
    space = get_space("nb201", C=4, N=1, resolution=8)
    net = make_supernet(space, seed=0).cuda()
    if method == "darts":
        res = darts(net, _data(), _data(seed=1), epochs=1, batch_size=16)
    elif method == "proxyless":
        res = proxyless(net, _data(), _data(seed=1), epochs=1, batch_size=16)
    else:
        res = spos(net, _data(), epochs=1, batch_size=16)
    assert space.parse(str(res.arch)) == res.arch and next(net.parameters()).is_cuda
    x = _data(4)[0]
    net.fix(res.arch).eval()
    alone = net.to_standalone(res.arch).cuda().eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x), alone(x), rtol=1e-4, atol=1e-4)
    mem = step_peak_memory(net, method, *_data(8))
    assert mem["peak_memory_bytes"] > 0 and "cuda" in mem["peak_memory_kind"].lower()


def test_cli_runs_on_cuda(tmp_path, capsys) -> None:
    args = ["oneshot", "spos", *MOBILE, "--dataset", "digits", "--subset", "64", "--epochs", "1", "--budget", "2",
            "--device-torch", "cuda", "--out", str(tmp_path / "s"), "--json"]
    assert main(args) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["search_trials"] == 2 and s["peak_memory_bytes"] > 0
