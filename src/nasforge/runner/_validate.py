"""Results are checked at one boundary before a strategy or the store sees them (``valid_result``).

An estimator is user code: it may return a ``numpy.float32`` or a one-element tensor as the reward, ``None`` for
metrics or seconds, a NaN, a metric that JSON cannot hold, or not a ``Result`` at all. Whatever it returns, the
runner gets back a ``Result`` whose reward is a finite Python ``float`` (or None), whose metrics and cost are JSON
values (numbers, strings, booleans, None, and lists / string-keyed mappings of them) and whose seconds are a
finite float >= 0; anything else makes the trial ``failed`` with the reason in ``error``. So nothing that reaches
the store can make a later resume or report crash.

Numbers: numpy and torch scalars (and one-element arrays / tensors) become Python numbers. A non-finite reward
fails the trial; a non-finite cost number fails it too (costs drive constraints and the Pareto front); a
non-finite metric (a diverged loss beside a valid accuracy) is stored as None, since JSON has no NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nasforge.estimators import Result
from nasforge.spaces._result import STATUSES

MAX_ERROR_CHARS = 2000  # an error text is kept whole up to this, then cut (a traceback is not a reason)
MAX_DEPTH = 8  # nesting of lists / mappings in metrics and cost


class _Bad(Exception):
    """A value that cannot be stored; the message says which and why."""


def scalar(value: Any) -> Any:
    """A numpy / torch scalar or one-element array / tensor as a Python number; any other value as it is."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    item = getattr(value, "item", None)
    if callable(item):
        size = getattr(value, "size", None)
        n = value.numel() if callable(getattr(value, "numel", None)) else (size if isinstance(size, int) else 1)
        if n != 1:
            raise _Bad(f"is an array of {n} elements, not a number")
        try:
            out = item()
        except Exception as e:  # an exotic .item(): say what it was
            raise _Bad(f"is a {type(value).__name__} that gives no number ({type(e).__name__})") from None
        if isinstance(out, bool | int | float):
            return out
        raise _Bad(f"is a {type(value).__name__} holding {type(out).__name__}, not a number")
    return value


def as_number(value: Any, what: str) -> float:
    """``value`` as a finite Python float (numpy/torch scalars accepted), else ``_Bad`` naming ``what``."""
    try:
        v = scalar(value)
    except _Bad as e:
        raise _Bad(f"{what} {e}") from None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _Bad(f"{what} is {type(value).__name__}, not a number")
    f = float(v)
    if not math.isfinite(f):
        raise _Bad(f"{what} is {f}")
    return f


def json_value(value: Any, what: str, finite: bool, depth: int = 0) -> Any:
    """``value`` as a JSON value (scalars converted; lists and string-keyed mappings recursively). A non-finite
    float is None when ``finite`` is False, an error otherwise; any other type is an error naming ``what``."""
    if depth > MAX_DEPTH:
        raise _Bad(f"{what} is nested deeper than {MAX_DEPTH} levels")
    v = scalar(value) if not isinstance(value, list | tuple | Mapping) else value
    if v is None or isinstance(v, bool | str):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        if math.isfinite(v):
            return v
        if finite:
            raise _Bad(f"{what} is {v}")
        return None
    if isinstance(v, list | tuple):
        return [json_value(x, f"{what}[{i}]", finite, depth + 1) for i, x in enumerate(v)]
    if isinstance(v, Mapping):
        out: dict[str, Any] = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise _Bad(f"{what} has a key {k!r} that is not a string")
            out[k] = json_value(x, f"{what}[{k!r}]", finite, depth + 1)
        return out
    raise _Bad(f"{what} is a {type(value).__name__}, not a number, string, list or mapping")


def _mapping(value: Any, what: str, finite: bool) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _Bad(f"{what} is a {type(value).__name__}, not a mapping")
    out = json_value(value, what, finite)
    assert isinstance(out, dict)
    return out


def valid_result(res: Any, wall: float = 0.0) -> Result:
    """``res`` as a ``Result`` the strategy and the store can take (see the module doc); never raises.

    ``wall`` is the measured wall time, used when the estimator gave no ``seconds``.
    """
    if not isinstance(res, Result):
        return Result.failure(f"estimator returned {type(res).__name__}, not a Result", seconds=_seconds(wall))
    status = res.status if res.status in STATUSES else "failed"
    error = res.error if res.error is None or isinstance(res.error, str) else _text(res.error)
    if error is not None and len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS] + "..."
    try:
        seconds = _seconds(wall) if res.seconds is None else as_number(res.seconds, "seconds")
        if seconds < 0:
            raise _Bad(f"seconds is {seconds} (negative)")
        metrics = _mapping(res.metrics, "metrics", finite=False)
        cost = _mapping(res.cost, "cost", finite=True)
        objectives = tuple(as_number(v, f"objectives[{i}]") for i, v in enumerate(getattr(res, "objectives", ())))
    except _Bad as e:
        return Result.failure(f"invalid result: {e}", seconds=_seconds(wall))
    reward: float | None = None
    if status == "ok":
        if res.reward is None:
            return Result(None, metrics, cost, seconds, "failed", "invalid result: reward is None")
        try:
            reward = as_number(res.reward, "reward")
        except _Bad as e:
            return Result(None, metrics, cost, seconds, "failed", f"invalid result: {e}")
    return Result(reward, metrics, cost, seconds, status, error, objectives)


def _seconds(wall: float) -> float:
    return float(wall) if isinstance(wall, int | float) and math.isfinite(wall) and wall >= 0 else 0.0


def _text(obj: Any) -> str:
    try:
        return str(obj)
    except Exception:
        return f"<{type(obj).__name__}>"
