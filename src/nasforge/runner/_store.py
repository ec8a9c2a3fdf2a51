"""The run store: one run directory with ``trials.sqlite`` and ``config.yaml``.

Storage contract (what resume relies on):
- ``meta`` holds ``format = nasforge-run``, the schema ``version`` and the run ``config`` (JSON). A directory
  is a nasforge run exactly when its ``trials.sqlite`` has that ``format`` row.
- ``trials`` has one row per asked architecture, numbered 0, 1, ... in ask order. A row is inserted with
  status ``running`` in the same transaction as its ``ask`` event, and completed (status, reward, metrics,
  cost, timings, error) in the same transaction as its ``tell`` event. So after a crash at any point, the
  store is a prefix of the uninterrupted run's event log: every ``running`` trial was asked, not told.
- ``events`` is the ordered log of ``ask``/``tell`` events (``seq`` ascending); replaying it into a fresh
  strategy with the same seed reproduces the strategy's state.
- ``strategy_state`` keeps the latest ``state_dict()`` snapshot (for inspection; resume replays events).
- SQLite runs in WAL mode; every write is one transaction. ``config.yaml`` is written atomically
  (temp file + rename), and a new run directory is assembled under a temporary name and renamed into
  place, so a run directory is never left half-written.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from nasforge._files import write_atomic
from nasforge.errors import NasforgeError
from nasforge.estimators import Result
from nasforge.runner._lock import acquire, release

FORMAT = "nasforge-run"
VERSION = 1
DB_NAME = "trials.sqlite"
CONFIG_NAME = "config.yaml"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trials (
    number INTEGER PRIMARY KEY,
    arch TEXT NOT NULL,
    choices TEXT NOT NULL,
    status TEXT NOT NULL,
    reward REAL,
    metrics TEXT NOT NULL DEFAULT '{}',
    cost TEXT NOT NULL DEFAULT '{}',
    seconds REAL,
    wall_seconds REAL,
    started_at REAL NOT NULL,
    finished_at REAL,
    error TEXT
);
CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, trial INTEGER NOT NULL);
CREATE TABLE strategy_state (id INTEGER PRIMARY KEY CHECK (id = 1), after_seq INTEGER NOT NULL, state TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Trial:
    """One asked architecture and what became of it (status ``running`` until it is told)."""

    number: int
    arch: str
    choices: tuple[int, ...]
    status: str
    reward: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    wall_seconds: float | None = None
    started_at: float = 0.0
    finished_at: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.reward is not None

    def result(self) -> Result:
        """The ``Result`` the strategy was told (rebuilt from the stored row)."""
        if self.status == "running":
            raise ValueError(f"trial {self.number} has no result yet")
        return Result(self.reward, dict(self.metrics), dict(self.cost), float(self.seconds or 0.0),
                      self.status, self.error)

    def key(self) -> tuple[Any, ...]:
        """Everything that must match between two runs with the same seed (not the timings)."""
        return (self.number, self.arch, self.choices, self.status, self.reward,
                json.dumps(self.metrics, sort_keys=True), json.dumps(self.cost, sort_keys=True), self.error)

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "arch": self.arch, "choices": list(self.choices), "status": self.status,
                "reward": self.reward, "metrics": self.metrics, "cost": self.cost, "seconds": self.seconds,
                "wall_seconds": self.wall_seconds, "started_at": self.started_at,
                "finished_at": self.finished_at, "error": self.error}


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):  # numpy arrays and scalars, torch tensors
        return o.tolist()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def dumps(obj: Any) -> str:
    """JSON with numpy/torch values turned into lists (floats round-trip exactly)."""
    return json.dumps(obj, default=_json_default, sort_keys=True)


def _reward(value: Any) -> float | None:
    """A stored reward as a float: old versions stored a numpy scalar reward as its raw bytes (a BLOB)."""
    if isinstance(value, bytes):
        import numpy as np

        dtype = {2: np.float16, 4: np.float32, 8: np.float64}.get(len(value))
        value = None if dtype is None else float(np.frombuffer(value, dtype=dtype)[0])
        return value if value is not None and math.isfinite(value) else None
    return None if value is None else float(value)


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` holds a nasforge run store."""
    db = Path(path) / DB_NAME
    if not db.is_file():
        return False
    try:
        con = _connect_readonly(db)
        try:
            row = con.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as e:  # a run store that cannot be read is a damaged run, not "no run"
        text = str(e).lower()
        if "malformed" in text or "not a database" in text or "corrupt" in text:
            raise NasforgeError(f"the run store {db} is damaged ({e}); its trials cannot be read "
                                "(restore it from a copy, or start a new run elsewhere)") from None
        return False
    return row is not None and row[0] == FORMAT


RUN_SEARCH = "run_search"
"""What ``job_of`` says of a run store written by ``run_search`` from Python, not by a job."""


def job_of(path: str | os.PathLike[str]) -> str | None:
    """The name of the job whose run ``path`` holds (``search``, ``oneshot``, ...), ``run_search`` for a run store
    written from Python, None when ``path`` holds no nasforge run."""
    p = Path(path)
    if is_run_dir(p):
        with RunStore.open(p) as store:
            job = (store.config.get("extra") or {}).get("job")
        if isinstance(job, str):
            return job
        return "search" if isinstance(job, dict) else RUN_SEARCH  # a dict: a search run written before `job`
    cfg = p / CONFIG_NAME
    if not cfg.is_file():
        return None
    try:
        data = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return None
    if isinstance(data, dict):
        if isinstance(data.get("job"), str):
            return str(data["job"])
        if "method" in data and "supernet_options" in data:  # a one-shot run written before `job`
            return "oneshot"
    return None


def check_new_run_dir(out_dir: str | os.PathLike[str]) -> Path:
    """``out_dir`` as a Path if a new run may be created there (absent or an empty folder); else one clear line."""
    path = Path(out_dir)
    if path.exists():
        if is_run_dir(path):
            raise NasforgeError(f"{path} is already a nasforge run; resume it or choose a new directory")
        if not path.is_dir():
            raise NasforgeError(f"output path {path} exists and is not a directory; choose a new directory")
        if any(path.iterdir()):
            raise NasforgeError(f"output directory {path} exists and is not a nasforge run; refusing to write")
    return path


def _connect_readonly(db: Path) -> sqlite3.Connection:
    """A read-only connection; on a folder nobody can write (read-only medium) ``immutable``, since SQLite could not
    create the WAL index there and no writer can change the file."""
    if os.access(db.parent, os.W_OK):
        return sqlite3.connect(f"file:{quote(str(db))}?mode=ro", uri=True)
    return sqlite3.connect(f"file:{quote(str(db))}?mode=ro&immutable=1", uri=True)


def _connect(db: Path) -> sqlite3.Connection:
    con = sqlite3.connect(db, isolation_level=None, timeout=30.0)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: consistent after a crash; a lost tail is replayed
    return con


class RunStore:
    """A run directory: create it (``RunStore.create``) or open an existing run (``RunStore.open``)."""

    def __init__(self, path: Path, con: sqlite3.Connection, lock: Path | None = None) -> None:
        self.path = path
        self._con = con
        self._lock = lock  # the run folder's lock (runner/_lock.py), held by a writer until close

    # -- opening -----------------------------------------------------------------------------------
    @classmethod
    def create(cls, out_dir: str | os.PathLike[str], config: dict[str, Any]) -> RunStore:
        """A new run at ``out_dir``, which must not exist or be an empty folder (never overwritten). The store holds
        the run folder's lock (one writer) until it is closed."""
        lock = acquire(out_dir)
        try:
            return cls._create(out_dir, config, lock)
        except BaseException:
            release(lock)
            raise

    @classmethod
    def _create(cls, out_dir: str | os.PathLike[str], config: dict[str, Any], lock: Path) -> RunStore:
        path = check_new_run_dir(out_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        try:
            write_atomic(tmp / CONFIG_NAME, yaml.safe_dump(json.loads(dumps(config)), sort_keys=False))
            con = _connect(tmp / DB_NAME)
            try:
                con.execute("BEGIN")
                for stmt in _SCHEMA.strip().split(";"):
                    if stmt.strip():
                        con.execute(stmt)
                con.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                                [("format", FORMAT), ("version", str(VERSION)), ("config", dumps(config))])
                con.execute("COMMIT")
            finally:
                con.close()
            os.rename(tmp, path)  # atomic; replaces an empty folder, fails on a non-empty one
        except BaseException:
            for p in sorted(tmp.glob("*")):
                p.unlink()
            if tmp.exists():
                tmp.rmdir()
            raise
        return cls(path, _connect(path / DB_NAME), lock)

    @classmethod
    def open(cls, run_dir: str | os.PathLike[str], write: bool = False) -> RunStore:
        """An existing run; anything else raises ``NasforgeError``. ``write=True`` (to continue the run) takes the
        run folder's lock first: another process writing it is refused with one line."""
        path = Path(run_dir)
        lock = acquire(path) if write else None
        try:
            if not is_run_dir(path):
                raise NasforgeError(f"{path} is not a nasforge run (no {DB_NAME} with a run in it)")
            con = _connect(path / DB_NAME) if write or os.access(path, os.W_OK) else _connect_readonly(path / DB_NAME)
            store = cls(path, con, lock)
        except BaseException:
            if lock is not None:
                release(lock)
            raise
        version = store._meta("version")
        if version != str(VERSION):
            store.close()
            raise NasforgeError(f"{path}: run store version {version} is not supported (expected {VERSION})")
        return store

    def close(self) -> None:
        self._con.close()
        if self._lock is not None:
            release(self._lock)
            self._lock = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _txn(self) -> Iterator[sqlite3.Connection]:
        self._con.execute("BEGIN IMMEDIATE")
        try:
            yield self._con
            self._con.execute("COMMIT")
        except BaseException:
            if self._con.in_transaction:  # SQLite may have rolled back itself (disk full): keep the first error
                with contextlib.suppress(sqlite3.Error):
                    self._con.execute("ROLLBACK")
            raise

    def _meta(self, key: str) -> str | None:
        row = self._con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # -- config ------------------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        text = self._meta("config")
        return {} if text is None else dict(json.loads(text))

    def update_config(self, **changes: Any) -> None:
        """Record changed settings (e.g. a budget extended on resume) in the store and ``config.yaml``."""
        cfg = {**self.config, **changes}
        with self._txn() as con:
            con.execute("UPDATE meta SET value = ? WHERE key = 'config'", (dumps(cfg),))
        write_atomic(self.path / CONFIG_NAME, yaml.safe_dump(json.loads(dumps(cfg)), sort_keys=False))

    # -- trials and events -------------------------------------------------------------------------
    def record_ask(self, number: int, arch: str, choices: tuple[int, ...], cost: dict[str, Any] | None = None,
                   started_at: float | None = None,
                   tell: tuple[Result, float | None, dict[str, Any] | None] | None = None) -> None:
        """Insert trial ``number`` as running and log its ask, in one transaction.

        With ``tell=(result, wall_seconds, state)`` the trial is also completed in the same transaction
        (used for candidates rejected by a constraint, which are told at once).
        """
        with self._txn() as con:
            con.execute("INSERT INTO trials (number, arch, choices, status, cost, started_at) "
                        "VALUES (?, ?, ?, 'running', ?, ?)",
                        (number, arch, json.dumps(list(choices)), dumps(cost or {}),
                         time.time() if started_at is None else started_at))
            con.execute("INSERT INTO events (kind, trial) VALUES ('ask', ?)", (number,))
            if tell is not None:
                self._complete(con, number, *tell)

    def record_tell(self, number: int, result: Result, wall_seconds: float | None = None,
                    state: dict[str, Any] | None = None) -> None:
        """Complete trial ``number`` with its result, log the tell (and a strategy snapshot), in one transaction."""
        with self._txn() as con:
            self._complete(con, number, result, wall_seconds, state)

    @staticmethod
    def _complete(con: sqlite3.Connection, number: int, result: Result, wall_seconds: float | None,
                  state: dict[str, Any] | None) -> None:
        reward = result.reward
        if reward is not None and not math.isfinite(reward):
            reward = None
        cur = con.execute(
            "UPDATE trials SET status = ?, reward = ?, metrics = ?, cost = ?, seconds = ?, wall_seconds = ?, "
            "finished_at = ?, error = ? WHERE number = ? AND status = 'running'",
            (result.status, reward, dumps(result.metrics), dumps(result.cost), result.seconds,
             wall_seconds, time.time(), result.error, number))
        if cur.rowcount != 1:
            raise RuntimeError(f"trial {number} is not running; cannot record its result")
        seq = con.execute("INSERT INTO events (kind, trial) VALUES ('tell', ?)", (number,)).lastrowid
        if state is not None:
            con.execute("INSERT OR REPLACE INTO strategy_state (id, after_seq, state) VALUES (1, ?, ?)",
                        (seq, dumps(state)))

    def save_strategy_state(self, state: dict[str, Any]) -> None:
        with self._txn() as con:
            seq = con.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
            con.execute("INSERT OR REPLACE INTO strategy_state (id, after_seq, state) VALUES (1, ?, ?)",
                        (seq, dumps(state)))

    def save_front(self, front: dict[str, Any]) -> None:
        """Keep a multi-objective run's front and hypervolume history (derived from the trials; rewritten at the
        end of every run or resume) in ``meta`` under ``front``."""
        with self._txn() as con:
            con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('front', ?)", (dumps(front),))

    def front(self) -> dict[str, Any] | None:
        """The stored front of a multi-objective run (``save_front``), or None."""
        text = self._meta("front")
        return None if text is None else dict(json.loads(text))

    def strategy_state(self) -> dict[str, Any] | None:
        row = self._con.execute("SELECT state FROM strategy_state WHERE id = 1").fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def events(self) -> list[tuple[str, int]]:
        """The ordered (kind, trial number) log."""
        return [(str(k), int(t)) for k, t in self._con.execute("SELECT kind, trial FROM events ORDER BY seq")]

    def trials(self) -> list[Trial]:
        rows = self._con.execute(
            "SELECT number, arch, choices, status, reward, metrics, cost, seconds, wall_seconds, started_at, "
            "finished_at, error FROM trials ORDER BY number")
        return [Trial(int(r[0]), str(r[1]), tuple(json.loads(r[2])), str(r[3]), _reward(r[4]), json.loads(r[5]),
                      json.loads(r[6]), r[7], r[8], float(r[9]), r[10], r[11]) for r in rows]
