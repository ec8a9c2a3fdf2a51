"""The supernet registry: which space type has a supernet, the options it takes and a small example space.

A supernet class registers itself with ``@register_supernet("nb201", NB201Space, options=(...), example=...)``
(one decorator per space it serves), as spaces and strategies do. ``make_supernet(space, **options)`` builds the
supernet of a space instance; ``list_supernets()`` names the spaces that have one, and ``example_space(name)``
gives a space small enough to train a step in a second, so a conformance suite can run over every supernet
(``nasforge.testing``): registering a supernet enrols it there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from nasforge.errors import NasforgeError
from nasforge.oneshot._rng import torch_seeded
from nasforge.oneshot._supernet import Supernet
from nasforge.spaces import SearchSpace

METHODS = ("darts", "proxyless", "spos")
"""The one-shot methods, the one list every caller checks names against."""

S = TypeVar("S", bound=type[Supernet])


@dataclass(frozen=True)
class SupernetEntry:
    """One registered supernet: the space (registry name and type) it serves, the class that builds it
    (called as ``cls(space, **options)``), the options it accepts and a small example space."""

    name: str
    space_type: type[SearchSpace]
    cls: type[Supernet]
    options: tuple[str, ...]
    example: Callable[[], SearchSpace]


_SUPERNETS: dict[str, SupernetEntry] = {}


def register_supernet(name: str, space_type: type[SearchSpace], options: tuple[str, ...],
                      example: Callable[[], SearchSpace]) -> Callable[[S], S]:
    """Class decorator: the supernet of spaces of ``space_type`` (registry name ``name``).

    ``options`` are the keyword options ``make_supernet`` passes on (``seed`` is always accepted: weight and
    alpha init); ``example`` builds a small space of that type for tests.
    """

    def deco(cls: S) -> S:
        _SUPERNETS[name] = SupernetEntry(name, space_type, cls, tuple(options), example)
        return cls

    return deco


def list_supernets() -> list[str]:
    """Registry names of the spaces that have a supernet."""
    return sorted(_SUPERNETS)


def supernet_entry(name: str) -> SupernetEntry:
    """The registry entry of a space name; unknown names raise ``NasforgeError`` naming the known ones."""
    if name not in _SUPERNETS:
        raise NasforgeError(f"space {name!r} has no supernet; supernets exist for: {', '.join(list_supernets())}")
    return _SUPERNETS[name]


def example_space(name: str) -> SearchSpace:
    """A small space of the registered type ``name`` (a supernet of it trains a step in about a second)."""
    return supernet_entry(name).example()


def _entry_of(space: SearchSpace) -> SupernetEntry:
    for e in _SUPERNETS.values():  # exact type first, so a registered subclass wins over its base
        if type(space) is e.space_type:
            return e
    for e in _SUPERNETS.values():
        if isinstance(space, e.space_type):
            return e
    raise NasforgeError(f"space {space.name!r} has no supernet; supernets exist for: {', '.join(list_supernets())}")


def make_supernet(space: SearchSpace, **options: Any) -> Supernet:
    """The supernet of a space; spaces without one raise ``NasforgeError`` naming those that have one.

    Options: ``seed`` (weight and alpha init: the same seed gives the same supernet, the caller's torch RNG
    untouched) and the registered ones, e.g. ``num_classes`` for all; nb201 also ``in_channels``; staged
    spaces (``mobilenet``, ``config``) also ``resolution`` and ``width`` (fixed per supernet, values of the space).
    """
    entry = _entry_of(space)
    allowed = ("seed", *entry.options)
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise NasforgeError(f"unknown supernet option(s) {', '.join(bad)} for {space.name}; allowed: "
                            f"{', '.join(allowed)}")
    seed = int(options.pop("seed", 0))
    with torch_seeded(seed):  # module init draws from torch's default RNG: from ``seed``, then restored
        return entry.cls(space, seed=seed, **options)
