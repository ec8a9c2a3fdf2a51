"""The conformance suite of search spaces: every registered space runs it (``SpaceSuite``).

Checks: canonical strings round-trip (parse, encode/decode, hash, equality); bad input (strings, choices,
architectures of another space) is one ``NasforgeError`` line; mutation changes exactly one active decision;
neighbours are one decision away; crossover takes each decision from a parent; ``size`` equals the enumeration;
sampling is uniform (chi-square); built networks run forward and backward; the analytic cost equals the traced
cost of the built network (params, MACs, output shape; activations unless the space says why in a
``peak_memory_note`` attribute); ``network_spec`` is what ``cost`` costs; ``for_data`` fits the space to a
dataset's image shape and classes (or says why it cannot); the same seed gives the same samples, also in
another process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from nasforge.errors import NasforgeError
from nasforge.spaces import Architecture, SearchSpace, get_space, list_spaces

#: a small config-defined space (written to a temporary file for the ``config`` space)
TINY_CONFIG_YAML = """\
input: {channels: 1, resolutions: [32, 40]}
num_classes: 10
widths: [0.5, 1.0]
stem: {channels: 8, stride: 2}
stages:
  - {block: inverted_residual, channels: 16, stride: 2, depth: [1, 2], kernel: [3, 5], expand: [3, 6]}
  - {block: conv_bn_act, channels: 24, stride: 2, depth: [1], kernel: [3, 5]}
  - {block: basic, channels: 32, stride: 1, depth: [1, 2]}
head: {channels: 64}
"""

#: small settings of the built-in spaces: tiny networks, sizes small enough to enumerate
SMALL_OPTIONS: dict[str, dict[str, Any]] = {
    "mobilenet": {"resolutions": [32, 40], "widths": [0.25, 0.5], "in_channels": 1, "num_classes": 10,
                  "stage_channels": [16, 24], "stage_strides": [2, 2], "depths": [1, 2], "kernels": [3, 5],
                  "expands": [3, 6], "head_channels": 32},
    "nb201": {"C": 4, "N": 1, "resolution": 16},
    "nasnet": {"B": 1, "ops": ["nor_conv_1x1", "nor_conv_3x3"], "combine": ["add"], "C": 4, "layers": 1,
               "resolution": 16},
    "darts": {"C": 4, "layers": 1, "nodes": 2, "ops": ["skip_connect", "sep_conv_3x3"], "resolution": 16},
    "lattice": {"layers": 4, "levels": 3, "base_channels": 4, "resolution": 32, "num_classes": 10},
    "nasfpn": {"cells": 3, "levels": 2, "channels": 4, "head_convs": 1, "resolution": 16, "num_classes": 3},
}


def samples(space: SearchSpace, n: int, seed: int = 0) -> list[Architecture]:
    """``n`` architectures sampled with ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def outputs(y: Any) -> tuple[torch.Tensor, ...]:
    """A network's outputs as a tuple (detectors return one map per pyramid level)."""
    return tuple(y) if isinstance(y, (tuple, list)) else (y,)


def check_task_outputs(space: SearchSpace, model: torch.nn.Module, x: torch.Tensor, y: Any, classes: int) -> None:
    """The dense contract's shapes for the space's task: (N, classes) logits; (N, classes, H, W) per-pixel logits at
    the input's resolution; per level (N, classes + 5, ceil(H / s), ceil(W / s)) with the module's ``strides``."""
    n, _, h, w = x.shape
    if space.task == "classification":
        assert tuple(y.shape) == (n, classes), tuple(y.shape)
    elif space.task == "segmentation":
        assert tuple(y.shape) == (n, classes, h, w), tuple(y.shape)
    else:
        strides = tuple(int(s) for s in getattr(model, "strides"))  # noqa: B009 (an attribute of detectors only)
        assert isinstance(y, tuple) and len(y) == len(strides) >= 1, (type(y), strides)
        for level, s in zip(y, strides, strict=True):
            assert tuple(level.shape) == (n, classes + 5, -(-h // s), -(-w // s)), (tuple(level.shape), s)


def output_channels(space: SearchSpace, classes: int) -> int:
    """Channels of the last output of a network with ``classes`` (detection adds 4 box distances and centerness)."""
    return classes + 5 if space.task == "detection" else classes


def _changed_active(sp: SearchSpace, a: Architecture, b: Architecture) -> list[int]:
    act_a, act_b = sp.active(a.choices), sp.active(b.choices)
    return [i for i in range(len(a.choices)) if act_a[i] and act_b[i] and a.choices[i] != b.choices[i]]


_CHILD = """
import importlib, json, sys
import numpy as np
sys.path[:0] = json.loads(sys.argv[2])
for module in json.loads(sys.argv[3]):
    importlib.import_module(module)
from nasforge.spaces import get_space
out = {}
for name, opts in json.loads(sys.argv[1]).items():
    sp = get_space(name, **opts)
    rng = np.random.default_rng(11)
    a = [sp.sample(rng) for _ in range(5)]
    out[name] = [str(x) for x in a] + [str(sp.mutate(x, rng)) for x in a] + [str(sp.crossover(a[0], a[1], rng))]
print(json.dumps(out))
"""


class SpaceSuite:
    """Subclass as ``class TestSpaces(SpaceSuite)`` in a test file: every test runs once per registered space.

    ``options`` maps a space name to small settings (a space without an entry runs with its defaults; the
    enumeration checks need a size up to ``enumerable``); ``spaces`` limits the run to some names.
    """

    options: ClassVar[dict[str, dict[str, Any]]] = SMALL_OPTIONS
    spaces: ClassVar[tuple[str, ...] | None] = None
    enumerable: ClassVar[int] = 20_000

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "space_name" in metafunc.fixturenames:
            metafunc.parametrize("space_name", list(self.spaces or list_spaces()))

    @pytest.fixture(scope="class")
    @classmethod
    def space_options(cls, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
        """Options per space name (the ``config`` space gets ``TINY_CONFIG_YAML`` unless given a path)."""
        opts = {name: dict(cls.options.get(name, {})) for name in (cls.spaces or list_spaces())}
        if "config" in opts and "path" not in opts["config"]:
            path = tmp_path_factory.mktemp("config_space") / "tiny.yaml"
            path.write_text(TINY_CONFIG_YAML)
            opts["config"]["path"] = str(path)
        return opts

    @pytest.fixture
    def space(self, space_name: str, space_options: dict[str, dict[str, Any]]) -> SearchSpace:
        return get_space(space_name, **space_options[space_name])

    def _enumerable(self, space: SearchSpace) -> int:
        n = space.size()
        assert isinstance(n, int) and n > 0
        if n > self.enumerable:
            pytest.fail(f"space {space.name!r} has {n} architectures with the suite's options, more than "
                        f"{self.enumerable} to enumerate: give it small settings in the suite's `options`")
        return n

    def test_round_trip_hash_and_eq(self, space: SearchSpace) -> None:
        archs = samples(space, 40)
        for a in archs:
            b = space.parse(str(a))
            assert b == a and hash(b) == hash(a) and str(b) == str(a)
            assert space.decode(space.encode(a)) == a
            assert len(a.choices) == len(space.decisions())
            assert all(0 <= c < d.n for c, d in zip(a.choices, space.decisions(), strict=True))
        distinct = {a.choices: str(a) for a in archs}
        assert len(set(distinct.values())) == len(distinct)  # different choices, different strings

    def test_mutate_changes_one_decision_and_stays_valid(self, space: SearchSpace) -> None:
        rng = np.random.default_rng(1)
        for a in samples(space, 60, seed=1):
            m = space.mutate(a, rng)
            assert m != a
            assert space.parse(str(m)) == m and space.decode(m.choices) == m
            assert len(_changed_active(space, a, m)) == 1, (str(a), str(m))

    def test_neighbours_are_one_decision_away(self, space: SearchSpace) -> None:
        for a in samples(space, 3, seed=6):
            ns = space.neighbours(a)
            assert ns and a not in ns and len(set(ns)) == len(ns)
            for n in ns:
                assert space.parse(str(n)) == n
                assert len(_changed_active(space, a, n)) == 1, (str(a), str(n))

    def test_crossover_takes_each_decision_from_a_parent(self, space: SearchSpace) -> None:
        rng = np.random.default_rng(2)
        archs = samples(space, 40, seed=2)
        for a, b in zip(archs[::2], archs[1::2], strict=True):
            child = space.crossover(a, b, rng)
            assert space.parse(str(child)) == child
            act = space.active(child.choices)
            for i, c in enumerate(child.choices):
                if act[i]:
                    assert c in (a.choices[i], b.choices[i]), (i, str(a), str(b), str(child))

    def test_size_equals_enumeration(self, space: SearchSpace) -> None:
        n = self._enumerable(space)
        archs = list(space.enumerate())
        assert len(archs) == len(set(archs)) == n

    def test_sampling_is_uniform(self, space: SearchSpace) -> None:
        """Chi-square against the enumeration: exact bins for small spaces, else hashed bins of the strings."""
        n = self._enumerable(space)
        bins = min(n, 60)

        def bin_of(a: Architecture) -> int:
            return zlib.crc32(str(a).encode()) % bins

        from scipy.stats import chisquare

        expected = Counter(bin_of(a) for a in space.enumerate())
        draws = max(3000, 30 * bins)
        got = Counter(bin_of(a) for a in samples(space, draws, seed=5))
        keys = sorted(expected)
        assert set(got) <= set(keys)
        obs = np.array([got[k] for k in keys], dtype=float)
        exp = np.array([expected[k] * draws / n for k in keys])
        assert chisquare(obs, exp).pvalue > 1e-4

    def test_build_forward_and_backward(self, space: SearchSpace, torch_threads: None) -> None:
        torch.manual_seed(0)
        for a in samples(space, 2, seed=3):
            m = space.build(a)
            x = torch.randn(2, *space.input_shape(a))
            ys = outputs(m(x))
            assert all(y.shape[0] == 2 and torch.isfinite(y).all() for y in ys)
            torch.stack([y.float().pow(2).mean() for y in ys]).sum().backward()
            grads = [p.grad for p in m.parameters() if p.grad is not None]
            assert grads and all(torch.isfinite(g).all() for g in grads)

    def test_analytic_cost_equals_traced_cost(self, space: SearchSpace, torch_threads: None) -> None:
        from nasforge.cost import profile

        note = getattr(space, "peak_memory_note", None)
        for a in samples(space, 3, seed=4):
            c = space.cost(a)
            t = profile(space.build(a).eval(), space.input_shape(a))
            assert (c.params, c.macs, c.output_shape) == (t.params, t.macs, t.output_shape), str(a)
            if note is None:
                assert (c.peak_activations, c.activations) == (t.peak_activations, t.activations), str(a)

    def test_network_spec_is_what_cost_and_build_use(self, space: SearchSpace) -> None:
        """``network_spec`` (optional in the base) is the network ``cost`` costs, with per-call class overrides."""
        if type(space).network_spec is SearchSpace.network_spec:
            with pytest.raises(NotImplementedError, match="has no network_spec"):
                space.network_spec(samples(space, 1)[0])
            return
        for a in samples(space, 3, seed=5):
            c, n = space.cost(a), space.network_spec(a).cost()
            assert (c.params, c.macs, c.output_shape) == (n.params, n.macs, n.output_shape), str(a)
            assert tuple(space.network_spec(a).input_shape) == tuple(space.input_shape(a))
            assert space.network_spec(a, num_classes=7).cost().output_shape[0] == output_channels(space, 7)

    def test_bad_input_is_one_line_nasforge_error(self, space: SearchSpace) -> None:
        """Bad strings, wrong or out-of-range choices and architectures of another space: one clear line each."""
        k = len(space.decisions())
        foreign = Architecture("another-space", (0,) * k, "x")
        calls = [lambda: space.parse("not an architecture!"), lambda: space.decode([0] * (k + 1)),
                 lambda: space.decode([10**6] * k), lambda: space.decode([-1] * k), lambda: space.encode(foreign),
                 lambda: space.cost(foreign), lambda: space.build(foreign)]
        for call in calls:
            with pytest.raises(NasforgeError) as e:
                call()
            assert str(e.value) and "\n" not in str(e.value), str(e.value)

    @pytest.mark.parametrize("data_shape", [(1, 12, 12), (3, 20, 20)])
    def test_for_data_fits_the_data_or_says_why(self, space: SearchSpace, data_shape: tuple[int, int, int],
                                                torch_threads: None) -> None:
        """``for_data`` (what the jobs call) gives, for each task the space serves, a space of the same name and task
        whose networks take the data's images (their channels, or 3 for a fixed RGB stem) and give the task's outputs
        for its classes (the dense contract); or one ``NasforgeError`` line. Other tasks are refused in one line."""
        for task in space.tasks:
            try:
                fitted = space.for_data(data_shape, 7, task=task)
            except NasforgeError as e:
                assert space.name in str(e) and "\n" not in str(e), str(e)
                continue
            assert fitted.name == space.name and fitted.task == task
            for a in samples(fitted, 2, seed=9):
                shape = tuple(fitted.input_shape(a))
                assert shape[0] in (data_shape[0], 3), (shape, data_shape)
                assert fitted.cost(a).output_shape[0] == output_channels(fitted, 7), str(a)
                model = fitted.build(a).eval()
                x = torch.randn(2, *shape)
                with torch.no_grad():
                    check_task_outputs(fitted, model, x, model(x), 7)
        for task in ("classification", "segmentation", "detection"):
            if task not in space.tasks:
                with pytest.raises(NasforgeError, match=f"cannot serve task '{task}'"):
                    space.for_data(data_shape, 7, task=task)

    def test_same_seed_same_samples(self, space: SearchSpace, space_name: str,
                                    space_options: dict[str, dict[str, Any]]) -> None:
        again = get_space(space_name, **space_options[space_name])
        assert [str(a) for a in samples(space, 20, seed=7)] == [str(a) for a in samples(again, 20, seed=7)]
        other = [str(a) for a in samples(space, 20, seed=8)]
        assert [str(a) for a in samples(space, 20, seed=7)] != other or space.size() == 1

    @pytest.mark.slow
    def test_same_seed_same_samples_in_another_process(self, space_options: dict[str, dict[str, Any]],
                                                       request: pytest.FixtureRequest) -> None:
        """Seeded sampling, mutation and crossover do not depend on process state (hash seeds, caches).

        The child imports the test's module first, so spaces registered there are known to it too.
        """
        modules = [request.module.__name__] if request.module is not None else []
        proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(space_options), json.dumps(sys.path),
                               json.dumps(modules)], capture_output=True, text=True, check=False,
                              env={**os.environ, "PYTHONHASHSEED": "123"}, cwd=Path.cwd(), timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        theirs = json.loads(proc.stdout.strip().splitlines()[-1])
        for name, opts in space_options.items():
            sp = get_space(name, **opts)
            rng = np.random.default_rng(11)
            a = [sp.sample(rng) for _ in range(5)]
            mine = [str(x) for x in a] + [str(sp.mutate(x, rng)) for x in a] + [str(sp.crossover(a[0], a[1], rng))]
            assert theirs[name] == mine, name

    @pytest.fixture
    def torch_threads(self) -> Iterator[None]:
        """One torch thread while the test runs (small networks: threads only add overhead)."""
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(n)
