"""Tabular estimator: look an architecture's metrics up in a benchmark table (a CSV) by its canonical string.

The reward column drives the search; the final column is only reported (``metrics["final"]``); the time
column gives the simulated seconds a query costs (times ``time_scale``). No file or column name is
assumed: the caller names them. With a ``space``, every table string is parsed by the space and keyed by
its canonical string, so tables written in another (equivalent) notation still match ``str(arch)``.

Accuracy is a fraction in [0, 1] everywhere in nasforge, and benchmark tables (NAS-Bench-201, NATS, NASLib)
store percent, so the reward and final columns are converted where they are read. The rule, per column,
with ``percent=None`` (the default): a column whose values all lie in [0, 1] is a fraction and kept; one whose
values all lie in [0, 100] with some above 1 is percent and divided by 100; any other column (a loss, a
score, values above 100 or below 0) is refused with an error naming it and its range. ``percent=True`` says the
columns are percent (divided by 100; values must lie in [0, 100]); ``percent=False`` keeps the values as they
are (a reward that is not an accuracy). ``units`` records what was done per column.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from nasforge.errors import NasforgeError
from nasforge.estimators._base import Result
from nasforge.spaces import Architecture, SearchSpace


class TabularEstimator:
    """``evaluate(arch)`` is a dict lookup: reward, final and simulated time of the architecture's row."""

    def __init__(
        self,
        table_csv: str | os.PathLike[str],
        arch_col: str,
        reward_col: str,
        final_col: str | None = None,
        time_col: str | None = None,
        time_scale: float = 1.0,
        space: SearchSpace | None = None,
        percent: bool | None = None,
    ) -> None:
        path = Path(table_csv)
        if not path.is_file():
            raise NasforgeError(f"table {str(path)!r} not found (expected a CSV file with a header row)")
        if not math.isfinite(time_scale) or time_scale <= 0:
            raise NasforgeError(f"time_scale must be a number > 0, got {time_scale!r}")
        self.path = path
        self.arch_col, self.reward_col, self.final_col, self.time_col = arch_col, reward_col, final_col, time_col
        self.time_scale = float(time_scale)
        self.space_name = None if space is None else space.name
        self.percent = percent
        #: reward/final column name -> "fraction", "percent" (divided by 100 when read) or "raw"
        self.units: dict[str, str] = {}
        #: canonical arch string -> (reward, final or nan, time in seconds or 0)
        self.rows: dict[str, tuple[float, float, float]] = {}
        self._load(space)

    def _load(self, space: SearchSpace | None) -> None:
        try:
            self._read(space)
        except UnicodeDecodeError as e:
            raise NasforgeError(f"table {str(self.path)!r} is not UTF-8 text (byte {e.start})") from None
        except csv.Error as e:
            raise NasforgeError(f"table {str(self.path)!r} is not a valid CSV file: {e}") from None

    def _read(self, space: SearchSpace | None) -> None:
        with self.path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            try:
                header = next(reader)
            except StopIteration:
                raise NasforgeError(f"table {str(self.path)!r} is empty (expected a header row)") from None
            cols = {name.strip(): i for i, name in enumerate(header)}
            wanted = [("arch", self.arch_col), ("reward", self.reward_col), ("final", self.final_col),
                      ("time", self.time_col)]
            for what, name in wanted:
                if name is not None and name not in cols:
                    raise NasforgeError(f"{what} column {name!r} not in table {self.path.name}; "
                                        f"columns: {', '.join(cols)}")
            ia, ir = cols[self.arch_col], cols[self.reward_col]
            i_f = None if self.final_col is None else cols[self.final_col]
            it = None if self.time_col is None else cols[self.time_col]
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if ia >= len(row):
                    raise NasforgeError(f"table {self.path.name} line {line}: no {self.arch_col!r} column "
                                        f"(the row has {len(row)} fields, the header {len(cols)})")
                text = row[ia].strip()
                if space is not None:
                    try:
                        text = str(space.parse(text))
                    except NasforgeError as e:
                        raise NasforgeError(f"table {self.path.name} line {line}: arch {row[ia]!r} does not parse "
                                            f"in space {space.name!r} ({e})") from None
                reward = self._number(row, ir, self.reward_col, line, cols)
                final = math.nan if i_f is None else self._number(row, i_f, self.final_col, line, cols)
                secs = 0.0 if it is None else self._number(row, it, self.time_col, line, cols) * self.time_scale
                if secs < 0:  # a negative time would give back time under --time-budget
                    raise NasforgeError(f"table {self.path.name} line {line}: time column {self.time_col!r} is "
                                        f"negative ({secs / self.time_scale:g}); times must be >= 0 seconds")
                if text in self.rows:
                    raise NasforgeError(f"table {self.path.name} line {line}: arch {text!r} appears twice")
                self.rows[text] = (reward, final, secs)
        if not self.rows:
            raise NasforgeError(f"table {self.path.name} has no rows")
        fr = self._unit(0, self.reward_col)
        ff = 1.0 if self.final_col is None else self._unit(1, self.final_col)
        if fr != 1.0 or ff != 1.0:
            self.rows = {k: (r * fr, f * ff, t) for k, (r, f, t) in self.rows.items()}

    def _unit(self, i: int, col: str) -> float:
        """Decide column ``col`` (index ``i`` of a row tuple) is a fraction, percent or raw; the factor to apply."""
        values = [row[i] for row in self.rows.values()]
        lo, hi = min(values), max(values)
        if self.percent is False:
            self.units[col] = "raw"
            return 1.0
        if self.percent is None and lo >= 0.0 and hi <= 1.0:
            self.units[col] = "fraction"
            return 1.0
        if lo >= 0.0 and hi <= 100.0:
            self.units[col] = "percent"
            return 0.01
        how = "percent" if self.percent else "an accuracy (a fraction in [0, 1] or percent in [0, 100])"
        raise NasforgeError(f"table {self.path.name}: column {col!r} ranges {lo:g} to {hi:g}, so it is not {how}; "
                            f"pass percent=False (--no-percent) to use its values as they are")

    def _number(self, row: list[str], i: int, col: str | None, line: int, cols: dict[str, int]) -> float:
        try:
            v = float(row[i])
        except (ValueError, IndexError):
            raise NasforgeError(
                f"table {self.path.name} line {line}: column {col!r} is not numeric "
                f"({row[i] if i < len(row) else ''!r}); columns: {', '.join(cols)}"
            ) from None
        if not math.isfinite(v):
            raise NasforgeError(f"table {self.path.name} line {line}: column {col!r} is {v} (must be finite)")
        return v

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, arch: object) -> bool:
        return str(arch) in self.rows

    def lookup(self, arch: Architecture | str) -> tuple[float, float, float]:
        """(reward, final, simulated seconds); a missing architecture raises ``NasforgeError`` naming it."""
        row = self.rows.get(str(arch))
        if row is None:
            of = "" if self.space_name is None else f" of space {self.space_name!r}"
            raise NasforgeError(f"architecture {str(arch)!r} is not in table {self.path.name} "
                                f"({len(self.rows)} architectures{of})")
        return row

    def evaluate(self, arch: Architecture) -> Result:
        reward, final, secs = self.lookup(arch)
        metrics = {"reward": reward} if math.isnan(final) else {"reward": reward, "final": final}
        return Result(reward, metrics, {}, secs)
