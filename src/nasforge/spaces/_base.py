"""The search-space contract: ``Architecture`` values, ``Decision``s, the ``SearchSpace`` base and registry.

Two views of one space (as in PyGlove): users read and write canonical strings
(``str(arch)``, ``space.parse(text)``); algorithms see a flat list of ``Decision``s and integer
choices (``encode``/``decode``). An ``Architecture`` is an immutable value: equality and hash are the
space name plus the canonical choice tuple (choices of inactive decisions are 0).
"""

from __future__ import annotations

import importlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from nasforge.errors import NasforgeError

if TYPE_CHECKING:
    from torch import nn

    from nasforge.cost import Cost


class NetworkDescription(Protocol):
    """What ``network_spec`` returns: a whole network as specs (``blocks.NetworkSpec`` or a cell stack)."""

    @property
    def input_shape(self) -> tuple[int, ...]: ...

    def cost(self, precision: str = "fp32", layers: bool = False) -> Cost: ...

    def build(self) -> nn.Module: ...


@dataclass(frozen=True, slots=True)
class Architecture:
    """One point of a space: its space's name, its choice indices, and its canonical string."""

    space: str
    choices: tuple[int, ...]
    text: str = field(compare=False, hash=False)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Architecture({self.space}:{self.text})"


@dataclass(frozen=True, slots=True)
class Decision:
    """One categorical decision of the algorithm's view: a name and its choices (readable values)."""

    name: str
    choices: tuple[Hashable, ...]

    @property
    def n(self) -> int:
        return len(self.choices)


#: The prediction tasks a space's networks can serve (the dense contract, see ``SearchSpace.tasks``).
TASKS: tuple[str, ...] = ("classification", "segmentation", "detection")


def check_task(task: Any) -> str:
    """``task`` if it is one of ``TASKS``, else a one-line ``NasforgeError`` naming the allowed ones."""
    if not isinstance(task, str) or task not in TASKS:
        raise NasforgeError(f"unknown task {task!r}; allowed: {', '.join(TASKS)}")
    return task


class SearchSpace(ABC):
    """Base class of every space. Subclasses define the decisions, the canonical string, cost and build.

    Defaults here work on the flat decisions: uniform ``sample``, one-decision ``mutate``, uniform
    ``crossover`` and ``size`` as a product. Spaces whose decisions are conditional (e.g. variable depth)
    override ``active``, ``size`` and ``sample`` so that sampling stays uniform over distinct archs.

    Tasks (the dense contract): ``tasks`` lists what the space's networks can serve; ``task`` is the one
    this instance builds for. Classification networks map (N, C, H, W) to logits (N, classes); segmentation
    ones to logits (N, classes, H, W) at the input's resolution (class 0 is background); detection ones to a
    tuple of per-level (N, classes + 5, H/s, W/s) maps (FCOS-style: class logits, 4 raw box distances whose
    pixel distance is exp(raw) * s, a centerness logit) and carry ``strides``.
    """

    name: str = "space"
    tasks: tuple[str, ...] = ("classification",)
    task: str = "classification"

    # -- the algorithm's view ----------------------------------------------------------------------
    @abstractmethod
    def decisions(self) -> list[Decision]:
        """The flat list of decisions strategies see (fixed for the space's lifetime)."""

    def active(self, choices: Sequence[int]) -> list[bool]:
        """Which decisions matter for these choices (all, unless the space is conditional)."""
        return [True] * len(choices)

    def canonical(self, choices: Sequence[int]) -> tuple[int, ...]:
        """Choices with inactive decisions zeroed, so equal networks are equal values."""
        act = self.active(choices)
        return tuple(int(c) if a else 0 for c, a in zip(choices, act, strict=True))

    def encode(self, arch: Architecture) -> tuple[int, ...]:
        self._check_mine(arch)
        return arch.choices

    def decode(self, choices: Sequence[int]) -> Architecture:
        decs = self.decisions()
        if len(choices) != len(decs):
            raise NasforgeError(f"{self.name}: expected {len(decs)} choices, got {len(choices)}")
        for c, d in zip(choices, decs, strict=True):
            if not 0 <= int(c) < d.n:
                raise NasforgeError(f"{self.name}: choice {c} out of range for decision {d.name!r} (0..{d.n - 1})")
        canon = self.canonical(choices)
        return Architecture(self.name, canon, self.format(canon))

    # -- the user's view ---------------------------------------------------------------------------
    @abstractmethod
    def format(self, choices: tuple[int, ...]) -> str:
        """The canonical string of canonical choices."""

    @abstractmethod
    def parse(self, text: str) -> Architecture:
        """The architecture of a canonical string; raises ``NasforgeError`` naming what is wrong."""

    # -- sampling and variation --------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        """Uniform over distinct architectures (for unconditional spaces: each decision uniform)."""
        return self.decode([int(rng.integers(d.n)) for d in self.decisions()])

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """Change exactly one active decision to another of its choices."""
        self._check_mine(arch)
        decs = self.decisions()
        act = self.active(arch.choices)
        idx = [i for i, d in enumerate(decs) if act[i] and d.n > 1]
        if not idx:
            return arch
        i = idx[int(rng.integers(len(idx)))]
        c = list(arch.choices)
        new = int(rng.integers(decs[i].n - 1))
        c[i] = new if new < c[i] else new + 1
        return self.decode(c)

    def crossover(self, a: Architecture, b: Architecture, rng: np.random.Generator) -> Architecture:
        """Each decision from one parent, chosen uniformly."""
        self._check_mine(a)
        self._check_mine(b)
        pick = rng.integers(2, size=len(a.choices))
        return self.decode([x if p == 0 else y for x, y, p in zip(a.choices, b.choices, pick, strict=True)])

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Every architecture one active decision away (for local search)."""
        decs = self.decisions()
        act = self.active(arch.choices)
        out: list[Architecture] = []
        seen = {arch}
        for i, d in enumerate(decs):
            if not act[i]:
                continue
            for v in range(d.n):
                if v != arch.choices[i]:
                    c = list(arch.choices)
                    c[i] = v
                    n = self.decode(c)
                    if n not in seen:
                        seen.add(n)
                        out.append(n)
        return out

    # -- size --------------------------------------------------------------------------------------
    def size(self) -> int:
        """Exact number of distinct architectures (a Python int)."""
        return math.prod(d.n for d in self.decisions())

    def enumerate(self) -> Iterator[Architecture]:
        """Every distinct architecture (only sensible for small spaces)."""
        decs = self.decisions()
        seen: set[tuple[int, ...]] = set()
        for combo in np.ndindex(*[d.n for d in decs]):
            canon = self.canonical(combo)
            if canon not in seen:
                seen.add(canon)
                yield Architecture(self.name, canon, self.format(canon))

    # -- cost and build ----------------------------------------------------------------------------
    @abstractmethod
    def cost(self, arch: Architecture, resolution: int | None = None, precision: str = "fp32") -> Cost:
        """Analytic cost (no torch module built)."""

    @abstractmethod
    def build(self, arch: Architecture, num_classes: int | None = None, **options: Any) -> nn.Module:
        """The ``nn.Module`` of an architecture."""

    def network_spec(self, arch: Architecture, resolution: int | None = None,
                     num_classes: int | None = None) -> NetworkDescription:
        """The network of an architecture as specs (what ``build`` builds and ``cost`` costs), optional.

        Spaces made of ``blocks`` specs return a ``NetworkSpec`` (lookup tables and latency features read
        its blocks); ``resolution``/``num_classes`` override the space's for this one network.
        """
        raise NotImplementedError(f"space {self.name!r} ({type(self).__name__}) does not describe its networks "
                                  "as specs: it has no network_spec")

    def input_shape(self, arch: Architecture) -> tuple[int, ...]:
        """The (C, H, W) input the built network expects."""
        raise NotImplementedError

    def for_data(self, input_shape: Sequence[int], num_classes: int, keep: Collection[str] = (),
                 task: str = "classification") -> SearchSpace:
        """This space fitted to a dataset of ``input_shape`` (C, H, W) images and ``num_classes`` classes for
        ``task``: a new space with its input channels, classes and input resolution set from the data (what each
        space can set; a space with a fixed 3-channel stem keeps it and the data is re-channelled) and networks
        that serve the task. Options named in ``keep`` (the ones a user set) are left as they are. An unknown
        task, a task the space does not serve (not in ``tasks``) or a space that cannot fit raise one
        ``NasforgeError`` line saying why. Spaces implement ``_fit``."""
        check_task(task)
        if task not in self.tasks:
            raise NasforgeError(f"space {self.name!r} cannot serve task {task!r} (it serves: {', '.join(self.tasks)})")
        return self._fit(input_shape, num_classes, keep, task)

    def _fit(self, input_shape: Sequence[int], num_classes: int, keep: Collection[str], task: str) -> SearchSpace:
        """``for_data`` after the task check (a task in ``tasks``)."""
        raise NasforgeError(f"space {self.name!r} cannot be fitted to a dataset: it sets no input shape or number "
                            "of classes from data (it does not implement for_data)")

    def named_archs(self) -> dict[str, Architecture]:
        """Named architectures of this space with its options (published cells, baselines); none by default."""
        return {}

    def describe(self) -> dict[str, Any]:
        """A readable summary: decisions with choices, the exact size, the tasks served, the named architectures."""
        return {
            "name": self.name,
            "size": self.size(),
            "decisions": [{"name": d.name, "choices": list(d.choices)} for d in self.decisions()],
            "tasks": list(self.tasks),
            "named_archs": {k: str(v) for k, v in self.named_archs().items()},
        }

    def _check_mine(self, arch: Architecture) -> None:
        if arch.space != self.name:
            raise NasforgeError(f"architecture of space {arch.space!r} given to space {self.name!r}")


def data_shape(space: str, input_shape: Sequence[int], num_classes: int) -> tuple[int, int, int]:
    """(channels, side, classes) of a dataset for ``for_data``: images (C, H, W) with a side of min(H, W)."""
    shape = tuple(input_shape)
    if len(shape) != 3 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in shape):
        raise NasforgeError(f"{space}: data input shape {shape} must be (channels, height, width) of positive "
                            "integers")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise NasforgeError(f"{space}: data must have at least 2 classes, got {num_classes!r}")
    return int(shape[0]), int(min(shape[1:])), int(num_classes)


def round_up(value: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is >= ``value`` (and >= ``multiple``)."""
    return max(multiple, -(-value // multiple) * multiple)


def check_int(space: str, name: str, value: Any, low: int, high: int | None = None) -> int:
    """A user's integer option, or a one-line error naming it and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise NasforgeError(f"{space} option {name}={value!r} must be an integer")
    v = int(value)
    if v < low or (high is not None and v > high):
        allowed = f">= {low}" if high is None else f"{low}..{high}"
        raise NasforgeError(f"{space} option {name}={v} out of range; allowed: {allowed}")
    return v


SpaceFactory = Callable[..., SearchSpace]
_SPACES: dict[str, SpaceFactory] = {}
# The built-in spaces, imported on first use (each module registers itself), so a command that needs one space
# does not pay for the tables of all of them.
_BUILTIN = {name: f"nasforge.spaces.{name}" for name in
            ("config", "darts", "lattice", "mobilenet", "nasfpn", "nasnet", "nb201")}


def register_space(name: str) -> Callable[[SpaceFactory], SpaceFactory]:
    """Class/function decorator: ``get_space(name, **options)`` calls it with the options."""

    def deco(factory: SpaceFactory) -> SpaceFactory:
        _SPACES[name] = factory
        return factory

    return deco


def list_spaces() -> list[str]:
    """The registry names: the built-in spaces and those registered with ``register_space``."""
    return sorted(_SPACES.keys() | _BUILTIN.keys())


def get_space(name: str, **options: Any) -> SearchSpace:
    """A space by registry name; unknown names and bad options raise ``NasforgeError``."""
    if name not in _SPACES and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    factory = _SPACES.get(name)
    if factory is None:
        raise NasforgeError(f"unknown space {name!r}; known: {', '.join(list_spaces())}")
    try:
        return factory(**options)
    except TypeError as e:
        raise NasforgeError(f"bad option for space {name!r}: {e}") from None


def parse_arch(text: str, **options: Any) -> Architecture:
    """Parse ``SPACE:ARCH`` (e.g. ``nb201:|nor_conv_3x3~0|+|...|``)."""
    if ":" not in text:
        raise NasforgeError(f"expected SPACE:ARCH, got {text!r}")
    name, _, rest = text.partition(":")
    return get_space(name, **options).parse(rest)
