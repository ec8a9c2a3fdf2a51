"""The one parser of byte sizes, used by every package (device YAML, constraints, options).

A size is a number of bytes: an int, or a string of a number and an optional unit. Units (case-insensitive,
``B`` is always bytes): ``B``; ``kB``/``MB``/``GB``/``TB`` = 1000^k bytes (SI); ``KiB``/``MiB``/``GiB``/``TiB``
= 1024^k bytes (binary). So ``320kB`` is 320,000 bytes and ``320KiB`` is 327,680 bytes, wherever it is written.
A bare number is bytes. Datasheets that say "320 KB SRAM" mean KiB: write ``320KiB``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from nasforge.errors import NasforgeError

#: unit (lower case) -> bytes; "" is a bare number
BYTE_UNITS: dict[str, int] = {
    "": 1, "b": 1,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}
ALLOWED_BYTES = ("an integer number of bytes, or a number with a unit: B; kB, MB, GB, TB (1000^k); "
                 "KiB, MiB, GiB, TiB (1024^k)")
_SIZE = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*")


def parse_bytes(value: Any, what: str = "size", *, allow_zero: bool = False) -> int:
    """``value`` (an int, a whole float, or a string like ``"320kB"``, ``"1.5 MiB"``, ``"4096"``) as bytes.

    Anything else raises ``NasforgeError`` naming ``what``, the bad value and the allowed units, as does a size
    that is not a whole number of bytes (``"1.5"``; ``"1.5kB"`` is 1500). Sizes must be positive (``allow_zero``
    also admits 0).
    """
    if isinstance(value, bool):
        raise NasforgeError(f"{what} {value!r} is not a size; allowed: {ALLOWED_BYTES}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise NasforgeError(f"{what} {value!r} is not a whole number of bytes; allowed: {ALLOWED_BYTES}")
        n = int(value)
    elif isinstance(value, str):
        m = _SIZE.fullmatch(value)
        unit = m.group(2).lower() if m else ""
        if m is None or unit not in BYTE_UNITS:
            raise NasforgeError(f"{what} {value!r} is not a size; allowed: {ALLOWED_BYTES}")
        x = float(m.group(1)) * BYTE_UNITS[unit]
        n = round(x)
        if abs(x - n) > 1e-9 * max(1.0, x):
            raise NasforgeError(f"{what} {value!r} is not a whole number of bytes; allowed: {ALLOWED_BYTES}")
    else:
        raise NasforgeError(f"{what} {value!r} is not a size; allowed: {ALLOWED_BYTES}")
    if n < 0 or (n == 0 and not allow_zero):
        raise NasforgeError(f"{what} {value!r} must be {'>= 0' if allow_zero else 'positive'}; "
                            f"allowed: {ALLOWED_BYTES}")
    return n

