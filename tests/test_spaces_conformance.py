"""The conformance suite every registered space runs (parametrised over ``list_spaces()``).

Registering a space enrols it here. ``OPTIONS`` gives small settings per space (tiny networks, and a
configuration small enough to enumerate); a space without an entry runs with its defaults. A space whose
traced peak memory legitimately differs from its analytic one says why in a ``peak_memory_note``
attribute (a string); params, MACs and the output shape must match exactly for every space.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from nasforge.spaces import SearchSpace, get_space, list_spaces

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = REPO / "examples" / "spaces" / "tiny_mcu.yaml"

OPTIONS: dict[str, dict[str, Any]] = {
    "mobilenet": {"resolutions": [32, 40], "widths": [0.25, 0.5], "in_channels": 1, "num_classes": 10,
                  "stage_channels": [16, 24], "stage_strides": [2, 2], "depths": [1, 2], "kernels": [3, 5],
                  "expands": [3, 6], "head_channels": 32},
    "nb201": {"C": 4, "N": 1, "resolution": 16},
    "nasnet": {"B": 1, "ops": ["nor_conv_1x1", "nor_conv_3x3"], "combine": ["add"], "C": 4, "layers": 1,
               "resolution": 16},
    "darts": {"C": 4, "layers": 1, "nodes": 2, "ops": ["skip_connect", "sep_conv_3x3"], "resolution": 16},
    "lattice": {"layers": 4, "levels": 3, "base_channels": 4, "resolution": 32, "num_classes": 10},
    "config": {"path": str(EXAMPLE_CONFIG)},
}
ENUMERABLE = 20_000  # spaces up to this size are enumerated (size and chi-square checks)
SPACES = list_spaces()


def space_of(name: str) -> SearchSpace:
    return get_space(name, **OPTIONS.get(name, {}))


def samples(space: SearchSpace, n: int, seed: int = 0) -> list[Any]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def test_every_space_is_enrolled() -> None:
    assert {"mobilenet", "lattice", "config"} <= set(SPACES)


@pytest.mark.parametrize("name", SPACES)
def test_round_trip_hash_and_eq(name: str) -> None:
    sp = space_of(name)
    archs = samples(sp, 40)
    for a in archs:
        b = sp.parse(str(a))
        assert b == a and hash(b) == hash(a) and str(b) == str(a)
        assert sp.decode(sp.encode(a)) == a
        assert len(a.choices) == len(sp.decisions())
        assert all(0 <= c < d.n for c, d in zip(a.choices, sp.decisions(), strict=True))
    distinct = {a.choices: str(a) for a in archs}
    assert len(set(distinct.values())) == len(distinct)  # different choices, different strings


def _changed_active(sp: SearchSpace, a: Any, b: Any) -> list[int]:
    act_a, act_b = sp.active(a.choices), sp.active(b.choices)
    return [i for i in range(len(a.choices)) if act_a[i] and act_b[i] and a.choices[i] != b.choices[i]]


@pytest.mark.parametrize("name", SPACES)
def test_mutate_changes_one_decision_and_stays_valid(name: str) -> None:
    sp = space_of(name)
    rng = np.random.default_rng(1)
    for a in samples(sp, 60, seed=1):
        m = sp.mutate(a, rng)
        assert m != a
        assert sp.parse(str(m)) == m and sp.decode(m.choices) == m
        assert len(_changed_active(sp, a, m)) == 1, (str(a), str(m))


@pytest.mark.parametrize("name", SPACES)
def test_neighbours_are_one_decision_away(name: str) -> None:
    sp = space_of(name)
    for a in samples(sp, 3, seed=6):
        ns = sp.neighbours(a)
        assert ns and a not in ns and len(set(ns)) == len(ns)
        for n in ns:
            assert sp.parse(str(n)) == n
            assert len(_changed_active(sp, a, n)) == 1, (str(a), str(n))


@pytest.mark.parametrize("name", SPACES)
def test_crossover_takes_each_decision_from_a_parent(name: str) -> None:
    sp = space_of(name)
    rng = np.random.default_rng(2)
    archs = samples(sp, 40, seed=2)
    for a, b in zip(archs[::2], archs[1::2], strict=True):
        child = sp.crossover(a, b, rng)
        assert sp.parse(str(child)) == child
        act = sp.active(child.choices)
        for i, c in enumerate(child.choices):
            if act[i]:
                assert c in (a.choices[i], b.choices[i]), (i, str(a), str(b), str(child))


@pytest.mark.parametrize("name", SPACES)
def test_size_equals_enumeration(name: str) -> None:
    sp = space_of(name)
    n = sp.size()
    assert isinstance(n, int) and n > 0
    if n > ENUMERABLE:
        pytest.skip(f"{name}: size {n} too large to enumerate; add small options to OPTIONS")
    archs = list(sp.enumerate())
    assert len(archs) == len(set(archs)) == n


@pytest.mark.parametrize("name", SPACES)
def test_sampling_is_uniform(name: str) -> None:
    """Chi-square against the enumeration: exact bins for small spaces, else hashed bins of the strings."""
    sp = space_of(name)
    n = sp.size()
    if n > ENUMERABLE:
        pytest.skip(f"{name}: size {n} too large to enumerate; add small options to OPTIONS")
    bins = min(n, 60)

    def bin_of(a: Any) -> int:
        return zlib.crc32(str(a).encode()) % bins

    expected = Counter(bin_of(a) for a in sp.enumerate())
    draws = max(3000, 30 * bins)
    got = Counter(bin_of(a) for a in samples(sp, draws, seed=5))
    keys = sorted(expected)
    assert set(got) <= set(keys)
    obs = np.array([got[k] for k in keys], dtype=float)
    exp = np.array([expected[k] * draws / n for k in keys])
    assert chisquare(obs, exp).pvalue > 1e-4


@pytest.mark.parametrize("name", SPACES)
def test_build_forward_and_backward(name: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    sp = space_of(name)
    for a in samples(sp, 2, seed=3):
        m = sp.build(a)
        x = torch.randn(2, *sp.input_shape(a))
        y = m(x)
        assert y.shape[0] == 2 and torch.isfinite(y).all()
        y.float().pow(2).mean().backward()
        grads = [p.grad for p in m.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", SPACES)
def test_analytic_cost_equals_traced_cost(name: str) -> None:
    from nasforge import profile

    torch.set_num_threads(1)
    sp = space_of(name)
    note = getattr(sp, "peak_memory_note", None)
    for a in samples(sp, 3, seed=4):
        c = sp.cost(a)
        t = profile(sp.build(a).eval(), sp.input_shape(a))
        assert (c.params, c.macs, c.output_shape) == (t.params, t.macs, t.output_shape), str(a)
        if note is None:
            assert (c.peak_activations, c.activations) == (t.peak_activations, t.activations), str(a)


@pytest.mark.parametrize("name", SPACES)
def test_network_spec_is_what_cost_and_build_use(name: str) -> None:
    """``network_spec`` (optional in the base) is the network ``cost`` costs, with per-call class overrides."""
    sp = space_of(name)
    if type(sp).network_spec is SearchSpace.network_spec:
        with pytest.raises(NotImplementedError, match="has no network_spec"):
            sp.network_spec(samples(sp, 1)[0])
        return
    for a in samples(sp, 3, seed=5):
        c, n = sp.cost(a), sp.network_spec(a).cost()
        assert (c.params, c.macs, c.output_shape) == (n.params, n.macs, n.output_shape), str(a)
        assert tuple(sp.network_spec(a).input_shape) == tuple(sp.input_shape(a))
        assert sp.network_spec(a, num_classes=7).cost().output_shape[0] == 7


@pytest.mark.parametrize("name", SPACES)
def test_same_seed_same_samples(name: str) -> None:
    sp = space_of(name)
    assert [str(a) for a in samples(sp, 20, seed=7)] == [str(a) for a in samples(space_of(name), 20, seed=7)]
    assert [str(a) for a in samples(sp, 20, seed=7)] != [str(a) for a in samples(sp, 20, seed=8)] or sp.size() == 1


_CHILD = """
import json, sys
import numpy as np
from nasforge.spaces import get_space
out = {}
for name, opts in json.loads(sys.argv[1]).items():
    sp = get_space(name, **opts)
    rng = np.random.default_rng(11)
    a = [sp.sample(rng) for _ in range(5)]
    out[name] = [str(x) for x in a] + [str(sp.mutate(x, rng)) for x in a] + [str(sp.crossover(a[0], a[1], rng))]
print(json.dumps(out))
"""


def test_same_seed_same_samples_in_another_process() -> None:
    """Seeded sampling, mutation and crossover do not depend on process state (hash seeds, caches)."""
    opts = {name: OPTIONS.get(name, {}) for name in SPACES}
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(opts)], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONHASHSEED": "123"}, cwd=REPO)
    theirs = json.loads(proc.stdout)
    for name in SPACES:
        sp = space_of(name)
        rng = np.random.default_rng(11)
        a = [sp.sample(rng) for _ in range(5)]
        mine = [str(x) for x in a] + [str(sp.mutate(x, rng)) for x in a] + [str(sp.crossover(a[0], a[1], rng))]
        assert theirs[name] == mine, name
