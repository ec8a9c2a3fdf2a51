"""Converting a predictor pickled by nasforge <= 0.1 (format nasforge-latency-predictor/1) to the JSON format.

The old file is a pickle of a dict holding a scikit-learn ``GradientBoostingRegressor``. It is read with a
restricted unpickler: only the globals such a file names (numpy arrays and dtypes, the random state, the regressor,
its trees, its loss and init objects) may be looked up; anything else (``os.system``, ``builtins.eval``, ...) is
refused before it is called. This module is the only place nasforge unpickles a latency model, and only when a user
asks for a conversion.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

from nasforge.errors import NasforgeError

ALLOWED = {
    ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.random._mt19937", "MT19937"), ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("sklearn.ensemble._gb", "GradientBoostingRegressor"), ("sklearn.tree._classes", "DecisionTreeRegressor"),
    ("sklearn.tree._tree", "Tree"), ("sklearn.dummy", "DummyRegressor"),
    ("sklearn._loss.loss", "AbsoluteError"), ("sklearn._loss.loss", "HalfSquaredError"),
    ("sklearn._loss.loss", "HuberLoss"), ("sklearn._loss._loss", "CyAbsoluteError"),
    ("sklearn._loss._loss", "CyHalfSquaredError"), ("sklearn._loss._loss", "CyHuberLoss"),
    ("sklearn._loss.link", "IdentityLink"), ("sklearn._loss.link", "Interval"),
}


class _ModelUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise NasforgeError(f"refusing to convert: the pickle names {module}.{name}, which a nasforge latency "
                                "predictor never holds")
        return super().find_class(module, name)


def read_legacy_predictor(src: str | os.PathLike[str]) -> dict[str, Any]:
    """The state dict of an old pickled predictor, read under the allow-list (a foreign global is one line)."""
    p = Path(src)
    if not p.is_file():
        raise NasforgeError(f"pickled predictor {str(p)!r} does not exist")
    try:
        state = _ModelUnpickler(io.BytesIO(p.read_bytes())).load()
    except NasforgeError:
        raise
    except Exception as e:  # a damaged pickle: any of pickle's many errors, reported in one line
        raise NasforgeError(f"{str(p)!r} is not a readable pickled predictor ({type(e).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != "nasforge-latency-predictor/1":
        raise NasforgeError(f"{str(p)!r} is not a pickled nasforge latency predictor (format /1)")
    return state
