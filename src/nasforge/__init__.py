"""nasforge: hardware-aware neural architecture search on PyTorch."""

from __future__ import annotations

from nasforge._profile import profile
from nasforge.cost import Cost
from nasforge.errors import NasforgeError

__version__ = "0.1.0"
__all__ = ["Cost", "NasforgeError", "__version__", "profile"]
