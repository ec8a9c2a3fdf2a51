"""The space half of the NASNet and DARTS spaces: a stack of normal and reduction cells (``CellStackSpace``).

The cells and the CIFAR-style network they stack into are block specs (``blocks/_cells.py``).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from nasforge.blocks._cells import Cell, CellNetworkSpec, reduction_layers, stack_cells
from nasforge.cost import Cost
from nasforge.errors import NasforgeError
from nasforge.spaces._base import Architecture, SearchSpace, check_int, round_up

if TYPE_CHECKING:
    from torch import nn


def check_resolution(space: str, value: Any, layers: int) -> int:
    """The input resolution: it must halve evenly at every reduction cell."""
    r = check_int(space, "resolution", value, 2)
    f = 2 ** len(reduction_layers(layers))
    if r % f:
        raise NasforgeError(f"{space} option resolution={r} must be a multiple of {f} ({f.bit_length() - 1} "
                            "reduction cells halve it)")
    return r


def data_resolution(layers: int, side: int) -> int:
    """The smallest resolution >= ``side`` that halves evenly at every reduction cell."""
    return round_up(side, 2 ** len(reduction_layers(layers)))


class CellStackSpace(SearchSpace):
    """Shared network half of the NASNet and DARTS spaces: a stem, a stack of normal and reduction cells.

    Subclasses set ``C``, ``layers``, ``stem_multiplier``, ``num_classes``, ``resolution`` and implement
    ``make_cell`` for one architecture's normal or reduction cell.
    """

    C: int
    layers: int
    stem_multiplier: int
    num_classes: int
    resolution: int
    _costs: dict[tuple[tuple[int, ...], int, str], Cost]

    @abstractmethod
    def size_per_cell(self) -> int:
        """Distinct encodings of one cell type."""

    def size(self) -> int:
        """Normal x reduction cell: ``size_per_cell() ** 2``."""
        return self.size_per_cell() ** 2

    @abstractmethod
    def make_cell(self, choices: tuple[int, ...], c_pp: int, c_p: int, c: int, reduction: bool,
                  reduction_prev: bool) -> Cell:
        """The cell of ``choices`` at one position of the stack."""

    def input_shape(self, arch: Architecture | None = None) -> tuple[int, ...]:
        return (3, self.resolution, self.resolution)

    def network_spec(self, arch: Architecture, resolution: int | None = None,
                     num_classes: int | None = None) -> CellNetworkSpec:
        """The network as a spec (``emit`` gives the per-layer IR, ``build`` the module)."""
        self._check_mine(arch)
        r = self.resolution if resolution is None else check_resolution(self.name, resolution, self.layers)
        k = self.num_classes if num_classes is None else check_int(self.name, "num_classes", num_classes, 1)

        def make_cell(c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> Cell:
            return self.make_cell(arch.choices, c_pp, c_p, c, reduction, reduction_prev)

        stem, stack = stack_cells(make_cell, self.C, self.layers, self.stem_multiplier)
        return CellNetworkSpec(self.name, (3, r, r), stem, stack, k)

    def build(self, arch: Architecture, num_classes: int | None = None, **options: Any) -> nn.Module:
        if options:
            raise NasforgeError(f"{self.name}: unknown build option(s) {', '.join(options)}; set C, layers, "
                                "stem_multiplier, num_classes and resolution on the space")
        return self.network_spec(arch, num_classes=num_classes).build()

    def cost(self, arch: Architecture, resolution: int | None = None, precision: str = "fp32") -> Cost:
        """Analytic cost of the whole network (emitted once per architecture, then cached)."""
        self._check_mine(arch)
        key = (arch.choices, self.resolution if resolution is None else int(resolution), precision)
        c = self._costs.get(key)
        if c is None:
            c = self.network_spec(arch, resolution).cost(precision)
            if len(self._costs) > 50_000:
                self._costs.clear()
            self._costs[key] = c
        return c
