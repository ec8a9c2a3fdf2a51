"""Latency predictors: a regressor on architecture features, trained from a few measured architectures.

Features (``ArchFeatures``), all derived from the space, none from a particular benchmark:
- ``onehot``: one column per (decision, choice) of ``space.decisions()``;
- ``counts``: for each choice value, how many decisions picked it (decisions sharing a choice list);
- ``cost``: the space's analytic cost (log MACs, params, other ops, activations, peak activations);
- ``graph``: from the network's layer IR when the space describes networks as blocks: per layer kind
  (op and kernel) how many layers are *live* (their output reaches the network output) and how many are
  dead (computed but unused, e.g. behind ``none`` edges), MACs of the live and the dead graph, MACs
  per stage. Equal effective networks get equal live features. Block statistics are cached per
  distinct (block, input shape), so this costs one IR emission per new block;
- ``space``: ``space.features(arch) -> dict[str, float]`` when the space offers it.

The model is scikit-learn gradient boosting on log latency with absolute-error loss, chosen by
measurement on the HELP NB201 table (``bench/latency_predictor.py``): it fits relative error and shrugs off
noisy measurements. With N=1000 training rows it has 0.913 of predictions within +/-10% averaged over the
21 device columns (naive one-hot baseline 0.837) and 0.700 on the CPU/phone columns (baseline 0.537);
squared loss, ridge, Huber and a Huber+GB stack all scored lower. Latencies are floored at a tiny positive
value before the log, so the near-zero latencies of degenerate networks stay finite.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasforge._files import write_atomic
from nasforge.errors import NasforgeError
from nasforge.hardware._trees import TreeEnsemble

if TYPE_CHECKING:
    from nasforge.blocks._spec import Spec
    from nasforge.hardware._lut import LatencyTable
    from nasforge.spaces import Architecture, SearchSpace

FEATURE_GROUPS = ("onehot", "counts", "cost", "graph", "space", "lut")
DEFAULT_FEATURES = ("onehot", "counts", "cost", "graph", "space", "lut")
FLOOR_MS = 1e-6


# -- graph statistics of one block ------------------------------------------------------------------------


def _layer_kind(op: str, attrs: dict[str, Any]) -> str:
    k = attrs.get("kernel")
    if k is not None and op != "adaptive_avgpool":
        g = attrs.get("groups", 1)
        dw = "dw" if g > 1 and g == attrs.get("in_channels") else ""
        return f"{op}{dw}_{k[0]}x{k[1]}"
    return op


@lru_cache(maxsize=65536)
def block_graph_stats(spec: Spec, in_shape: tuple[int, ...]) -> tuple[tuple[tuple[str, float], ...], tuple[int, ...]]:
    """((feature, value) pairs, output shape) of one block: live/dead layer counts per kind and MACs."""
    from nasforge.cost import GraphBuilder
    from nasforge.cost._ir import ALIAS_OPS
    from nasforge.cost._rules import RULES

    g = GraphBuilder(in_shape)
    spec.emit(g, 0)
    nodes = g.nodes
    live = [False] * len(nodes)
    live[-1] = True
    for i in range(len(nodes) - 1, -1, -1):
        if live[i]:
            for j in nodes[i].inputs:
                live[j] = True
    out: dict[str, float] = {}
    for i, n in enumerate(nodes):
        if i == 0 or n.op in ALIAS_OPS:
            continue
        tag = "live" if live[i] else "dead"
        name = f"{tag}:{_layer_kind(n.op, n.attrs)}"
        out[name] = out.get(name, 0.0) + 1.0
        rule = RULES.get(n.op)
        macs = rule(n).macs if rule is not None else 0
        out[f"{tag}_macs"] = out.get(f"{tag}_macs", 0.0) + macs
    return tuple(sorted(out.items())), nodes[-1].out_shape


def graph_features(network: Any) -> dict[str, float]:
    """Live/dead layer counts, live/dead MACs and MACs per stage of a ``NetworkSpec``."""
    total: dict[str, float] = {}
    shape = tuple(network.input_shape)

    def add(specs: Sequence[Spec], stage: str | None) -> None:
        nonlocal shape
        macs = 0.0
        for s in specs:
            stats, shape = block_graph_stats(s, shape)
            for k, v in stats:
                total[k] = total.get(k, 0.0) + v
                if k == "live_macs":
                    macs += v
        if stage is not None:
            total[stage] = macs

    add(network.stem, None)
    for i, st in enumerate(network.stages):
        add(st, f"stage{i}_live_macs")
    add(network.head, None)
    return total


# -- the feature encoder -------------------------------------------------------------------------------------


class ArchFeatures:
    """Architecture -> feature vector for one space; columns are fixed by the first ``fit_names`` call."""

    def __init__(self, space: SearchSpace, groups: Sequence[str] = DEFAULT_FEATURES,
                 lut: LatencyTable | None = None) -> None:
        bad = [g for g in groups if g not in FEATURE_GROUPS]
        if bad:
            raise NasforgeError(f"unknown feature group {bad[0]!r}; allowed: {', '.join(FEATURE_GROUPS)}")
        self.space = space
        self.groups = tuple(groups)
        self.lut = lut
        self.decisions = space.decisions()
        self._values = sorted({repr(v) for d in self.decisions for v in d.choices})
        self._graphs = "graph" in self.groups  # off from the first arch whose space has no block network
        self.names: list[str] | None = None
        self._cache: dict[Architecture, dict[str, float]] = {}

    def raw(self, arch: Architecture) -> dict[str, float]:
        """All features of one architecture by name (groups that do not apply to the space are skipped)."""
        f = self._cache.get(arch)
        if f is None:
            f = self._raw(arch)
            if len(self._cache) < 200_000:
                self._cache[arch] = f
        return f

    def _raw(self, arch: Architecture) -> dict[str, float]:
        f: dict[str, float] = {}
        choices = self.space.encode(arch)
        if "onehot" in self.groups:
            for d, c in zip(self.decisions, choices, strict=True):
                f[f"{d.name}={d.choices[c]!r}"] = 1.0
        if "counts" in self.groups:
            for d, c in zip(self.decisions, choices, strict=True):
                k = f"count:{d.choices[c]!r}"
                f[k] = f.get(k, 0.0) + 1.0
        if "cost" in self.groups:
            cost = self.space.cost(arch)
            f["log_macs"] = math.log1p(cost.macs)
            f["log_params"] = math.log1p(cost.params)
            f["log_other_ops"] = math.log1p(cost.other_ops)
            f["log_activations"] = math.log1p(cost.activations)
            f["log_peak_activations"] = math.log1p(cost.peak_activations)
        if self._graphs:
            from nasforge.hardware._lut import block_network

            net = block_network(self.space, arch)
            if net is None:
                self._graphs = False
            else:
                for k, v in graph_features(net).items():
                    f[f"graph:{k}"] = math.log1p(v) if k.endswith("macs") else v
        if "space" in self.groups:
            fn = getattr(self.space, "features", None)
            if callable(fn):
                for k, v in fn(arch).items():
                    f[f"space:{k}"] = float(v)
        if "lut" in self.groups and self.lut is not None:
            f["log_lut_ms"] = math.log(max(self.lut.predict(arch), FLOOR_MS))
        return f

    def fit_names(self, archs: Sequence[Architecture]) -> list[str]:
        """Fix the columns: the onehot columns of every choice plus every feature these archs produce."""
        names: set[str] = set()
        if "onehot" in self.groups:
            names |= {f"{d.name}={v!r}" for d in self.decisions for v in d.choices}
        for a in archs:
            names |= set(self.raw(a))
        self.names = sorted(names)
        return self.names

    def transform(self, archs: Sequence[Architecture]) -> np.ndarray:
        if self.names is None:
            self.fit_names(archs)
        assert self.names is not None
        index = {n: i for i, n in enumerate(self.names)}
        X = np.zeros((len(archs), len(self.names)))
        for r, a in enumerate(archs):
            for k, v in self.raw(a).items():
                i = index.get(k)
                if i is not None:
                    X[r, i] = v
        return X


# -- the predictor --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """Gradient-boosting settings: ``loss`` absolute_error (default) or squared_error."""

    loss: str = "absolute_error"
    n_estimators: int = 600
    learning_rate: float = 0.05
    max_depth: int = 3
    seed: int = 0


NAIVE = ModelConfig(loss="squared_error", n_estimators=100, learning_rate=0.1, max_depth=3)


class LatencyPredictor:
    """Predicts milliseconds of architectures of one space from features of the architecture.

    ``fit(archs, ms)`` then ``predict(arch)`` / ``predict_many(archs)``. ``features`` picks the feature
    groups (see the module doc); ``lut`` adds the lookup-table sum as a feature.
    """

    def __init__(self, space: SearchSpace, features: Sequence[str] = DEFAULT_FEATURES,
                 model: ModelConfig | None = None, lut: LatencyTable | None = None) -> None:
        self.space = space
        self.encoder = ArchFeatures(space, features, lut)
        self.config = model or ModelConfig()
        self._model: TreeEnsemble | None = None
        #: exact latencies by canonical architecture string, used before the trees (a transfer model's predictions
        #: for every architecture of its prior; empty for a plain predictor)
        self.lookup: dict[str, float] = {}
        self.info: dict[str, Any] = {}

    @staticmethod
    def naive(space: SearchSpace, seed: int = 0) -> LatencyPredictor:
        """The baseline: gradient boosting (squared loss, 100 trees) on the one-hot encoding, log target."""
        return LatencyPredictor(space, ("onehot",), ModelConfig(**{**NAIVE.__dict__, "seed": seed}))

    def fit(self, archs: Sequence[Architecture], ms: Sequence[float] | np.ndarray,
            X: np.ndarray | None = None) -> LatencyPredictor:
        from sklearn.ensemble import GradientBoostingRegressor

        y = np.asarray(ms, dtype=float)
        if len(archs) != len(y) or len(y) < 2:
            raise NasforgeError(f"fit needs one latency per architecture and at least 2 of them, got "
                                f"{len(archs)} archs and {len(y)} latencies")
        if not np.all(np.isfinite(y)) or np.any(y < 0):
            raise NasforgeError("latencies must be finite and >= 0 ms")
        if X is None:
            self.encoder.fit_names(archs)
            X = self.encoder.transform(archs)
        elif self.encoder.names is None or X.shape[1] != len(self.encoder.names):
            raise NasforgeError("precomputed features must come from this predictor's encoder (see encode())")
        c = self.config
        gbm = GradientBoostingRegressor(loss=c.loss, n_estimators=c.n_estimators, learning_rate=c.learning_rate,
                                        max_depth=c.max_depth, random_state=c.seed)
        gbm.fit(X, np.log(np.maximum(y, FLOOR_MS)))
        self._model = TreeEnsemble.from_sklearn(gbm)  # plain arrays: what is saved is what predicts
        self.lookup = {}
        return self

    def predict_many(self, archs: Sequence[Architecture], X: np.ndarray | None = None) -> np.ndarray:
        if self._model is None:
            raise NasforgeError("the latency predictor is not fitted; call fit(archs, ms) first")
        if self.lookup:
            known = [self.lookup.get(str(a)) for a in archs]
            if all(v is not None for v in known):
                return np.asarray(known, dtype=float)
        if X is None:
            X = self.encoder.transform(archs)
        out = np.asarray(np.exp(self._model.predict(X)), dtype=float)
        if self.lookup:
            out = np.asarray([o if v is None else v for o, v in zip(out, known, strict=True)], dtype=float)
        return out

    def predict(self, arch: Architecture) -> float:
        """Predicted milliseconds of one architecture."""
        return float(self.predict_many([arch])[0])

    def __call__(self, arch: Architecture) -> float:
        """A latency model for constraints and objectives: ``latency_fn(arch) -> ms``."""
        return self.predict(arch)

    def save(self, path: str | os.PathLike[str], space_name: str | None = None,
             space_options: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Path:
        """Write the fitted model as JSON (``.json``): the feature columns, the space (name + options) it is for
        and the trees' numbers (``TreeEnsemble``); no pickle, so loading it can never run code."""
        if self._model is None or self.encoder.names is None:
            raise NasforgeError("the latency predictor is not fitted; nothing to save")
        p = Path(path)
        if p.suffix != ".json":
            raise NasforgeError(f"latency predictor file {str(p)!r} must end in .json (a pickle is no longer written)")
        state: dict[str, Any] = {
            "format": PREDICTOR_FORMAT, "space": space_name or self.space.name,
            "space_options": dict(space_options or {}), "groups": list(self.encoder.groups),
            "names": list(self.encoder.names), "config": dict(self.config.__dict__), "model": self._model.to_json(),
            "lookup": self.lookup or {}, **(extra or {})}
        return write_atomic(p, json.dumps(state, separators=(",", ":")))

    @staticmethod
    def load(path: str | os.PathLike[str], space: SearchSpace | None = None) -> LatencyPredictor:
        """A predictor written by ``save``. Reads JSON only; a pickle (an old ``.pkl``) is refused unread."""
        from nasforge.spaces import get_space

        p = Path(path)
        state = _read_predictor_json(p)
        where = f"latency predictor {str(p)!r}"
        if not isinstance(state.get("space"), str) or not isinstance(state.get("space_options"), dict):
            raise NasforgeError(f"{where}: 'space' must be a name and 'space_options' a mapping")
        groups, names = state.get("groups"), state.get("names")
        if not (isinstance(groups, list) and all(isinstance(g, str) for g in groups)
                and isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise NasforgeError(f"{where}: 'groups' and 'names' must be lists of strings")
        cfg = state.get("config")
        fields = set(ModelConfig.__dataclass_fields__)
        if not isinstance(cfg, dict) or not set(cfg) <= fields:
            raise NasforgeError(f"{where}: 'config' must be a mapping with keys among {', '.join(sorted(fields))}")
        model = TreeEnsemble.from_json(state.get("model"), where)
        if model.n_features != len(names):
            raise NasforgeError(f"{where}: the model wants {model.n_features} features but {len(names)} are named")
        lookup = state.get("lookup") or {}
        if not isinstance(lookup, dict) or not all(
                isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                and v >= 0 for k, v in lookup.items()):
            raise NasforgeError(f"{where}: 'lookup' must map architecture strings to finite latencies >= 0 ms")
        sp = space or get_space(state["space"], **state["space_options"])
        pred = LatencyPredictor(sp, groups, ModelConfig(**cfg))
        pred.encoder.names = list(names)
        pred._model = model
        pred.lookup = {k: float(v) for k, v in lookup.items()}
        pred.info = {k: v for k, v in state.items() if k == "transfer"}
        return pred


PREDICTOR_FORMAT = "nasforge-latency-predictor/2"
PICKLE_HINT = ("re-fit and save it as JSON (`nasforge latency fit ... --save model.json`), or convert an old nasforge "
               "predictor under an allow-list: python -c \"from nasforge.hardware import resave_pickled_predictor "
               "as r; r('OLD.pkl', 'NEW.json')\"")


def _is_pickle(p: Path) -> bool:
    """Pickles start with the PROTO opcode (protocol 2+) or are named .pkl/.pickle; we look, never unpickle."""
    if p.suffix.lower() in (".pkl", ".pickle"):
        return True
    with p.open("rb") as f:
        return f.read(1) == b"\x80"


def _read_predictor_json(p: Path) -> dict[str, Any]:
    if not p.is_file():
        raise NasforgeError(f"latency predictor file {str(p)!r} does not exist")
    if _is_pickle(p):
        raise NasforgeError(f"refusing to load {str(p)!r}: it is a pickle, and loading a pickle can run code; "
                            + PICKLE_HINT)
    try:
        state = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise NasforgeError(f"latency predictor {str(p)!r} is not valid JSON ({e})") from None
    if not isinstance(state, dict) or state.get("format") != PREDICTOR_FORMAT:
        raise NasforgeError(f"{str(p)!r} is not a saved latency predictor (format {PREDICTOR_FORMAT})")
    return state


def resave_pickled_predictor(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Convert a predictor pickled by an older nasforge (format nasforge-latency-predictor/1) to the JSON format.

    The pickle is read under an allow-list of the globals such a file holds (``_legacy``), so even this
    conversion refuses a file that would run code; the result is a ``.json`` predictor.
    """
    from nasforge.hardware._legacy import read_legacy_predictor
    from nasforge.spaces import get_space

    state = read_legacy_predictor(src)
    space_options = dict(state["space_options"])
    pred = LatencyPredictor(get_space(state["space"], **space_options), state["groups"],
                            ModelConfig(**state["config"]))
    pred.encoder.names = list(state["names"])
    pred._model = TreeEnsemble.from_sklearn(state["model"])
    return pred.save(dst, state["space"], space_options)


def load_latency_model(path: str | os.PathLike[str], space: SearchSpace | None = None) -> Callable[[Any], float]:
    """``latency_fn(arch) -> ms`` from a lookup table (.json/.yaml/.yml) or a saved predictor (.json).

    A ``.json`` file is a predictor when its ``format`` says so, else a lookup table. Pickles are refused unread.
    """
    p = Path(path)
    if p.is_file() and _is_pickle(p):
        raise NasforgeError(f"refusing to load {str(p)!r}: it is a pickle, and loading a pickle can run code; "
                            + PICKLE_HINT)
    if p.suffix in (".json", ".yaml", ".yml"):
        if p.suffix == ".json" and p.is_file() and _json_format(p) == PREDICTOR_FORMAT:
            return LatencyPredictor.load(p, space)
        from nasforge.hardware._lut import LatencyTable

        table = LatencyTable.load(p)
        if space is not None:
            table.bind(space)
        return table.predict
    raise NasforgeError(f"latency model {str(p)!r} must be a lookup table (.json, .yaml) or a predictor (.json)")


def _json_format(p: Path) -> Any:
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None  # the table loader reports the bad file
    return d.get("format") if isinstance(d, dict) else None


# -- metrics and the table workflow ---------------------------------------------------------------------------


def latency_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """within_10pct, within_5pct (share of |pred/true - 1| <= 10% / 5%), spearman, rmse (ms)."""
    from scipy.stats import spearmanr

    t = np.maximum(np.asarray(true, dtype=float), FLOOR_MS)
    p = np.asarray(pred, dtype=float)
    rel = np.abs(p / t - 1)
    constant = len(t) < 2 or np.ptp(t) == 0 or np.ptp(p) == 0
    rho = float("nan") if constant else float(spearmanr(p, t).statistic)
    return {"within_10pct": float(np.mean(rel <= 0.10)), "within_5pct": float(np.mean(rel <= 0.05)),
            "spearman": rho, "rmse": float(np.sqrt(np.mean((p - np.asarray(true, dtype=float)) ** 2)))}


def read_latency_table(path: str | os.PathLike[str], arch_col: str,
                       target_cols: Sequence[str]) -> tuple[list[str], dict[str, np.ndarray]]:
    """Arch strings and the named numeric columns of a CSV; bad file/column/value -> one-line error."""
    p = Path(path)
    if not p.is_file():
        raise NasforgeError(f"table {str(p)!r} not found (expected a CSV file with a header row)")
    with p.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if not header:
            raise NasforgeError(f"table {p.name} is empty (expected a header row)")
        cols = {h: i for i, h in enumerate(header)}
        if arch_col not in cols:
            raise NasforgeError(f"arch column {arch_col!r} not in table {p.name}; columns: {', '.join(header)}")
        for t in target_cols:
            if t not in cols:
                raise NasforgeError(f"unknown device column {t!r} in table {p.name}; columns: {', '.join(header)}")
        ia = cols[arch_col]
        idx = [cols[t] for t in target_cols]
        archs: list[str] = []
        vals: list[list[float]] = [[] for _ in target_cols]
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            archs.append(row[ia].strip())
            for k, (t, i) in enumerate(zip(target_cols, idx, strict=True)):
                try:
                    v = float(row[i])
                except (ValueError, IndexError):
                    raise NasforgeError(f"table {p.name} line {line}: column {t!r} is not numeric") from None
                if not math.isfinite(v) or v < 0:
                    raise NasforgeError(f"table {p.name} line {line}: column {t!r} is {v} (must be finite, >= 0)")
                vals[k].append(v)
    if not archs:
        raise NasforgeError(f"table {p.name} has no rows")
    return archs, {t: np.asarray(v) for t, v in zip(target_cols, vals, strict=True)}


def parse_archs(space: SearchSpace, texts: Sequence[str], where: str = "table") -> list[Architecture]:
    out = []
    for i, t in enumerate(texts):
        try:
            out.append(space.parse(t))
        except NasforgeError as e:
            raise NasforgeError(f"{where} row {i + 1}: arch {t!r} does not parse in space {space.name!r} ({e})") \
                from None
    return out


def split(n_rows: int, n_train: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_train`` random row indices for training and all the others for testing."""
    if not 1 < n_train < n_rows:
        raise NasforgeError(f"train size {n_train} must be between 2 and {n_rows - 1} (the table has {n_rows} rows "
                            "and at least one must be left to test on)")
    perm = np.random.default_rng(seed).permutation(n_rows)
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])


@dataclass
class FitReport:
    """What ``fit_on_table`` measured, per target column."""

    column: str
    metrics: dict[str, float]
    n_train: int
    n_test: int
    predictor: LatencyPredictor | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self.metrics, "n_train": self.n_train, "n_test": self.n_test}


def encode(space: SearchSpace, archs: Sequence[Architecture], groups: Sequence[str] = DEFAULT_FEATURES,
           lut: LatencyTable | None = None) -> tuple[np.ndarray, ArchFeatures]:
    """Features of all ``archs`` and the encoder that made them (columns fixed on these archs)."""
    enc = ArchFeatures(space, groups, lut)
    enc.fit_names(archs)
    return enc.transform(archs), enc


def fit_on_table(space: SearchSpace, archs: Sequence[Architecture], y: np.ndarray, n_train: int, seed: int = 0,
                 encoded: tuple[np.ndarray, ArchFeatures] | None = None, naive: bool = False,
                 column: str = "") -> FitReport:
    """Train on ``n_train`` random rows, report on all the others.

    ``encoded`` (from ``encode``) lets many columns and sizes share one feature matrix of all rows.
    """
    tr, te = split(len(archs), n_train, seed)
    pred = LatencyPredictor.naive(space, seed) if naive else LatencyPredictor(space, model=ModelConfig(seed=seed))
    X, enc = encoded if encoded is not None else encode(space, archs, pred.encoder.groups)
    pred.encoder = enc
    pred.fit([archs[i] for i in tr], y[tr], X[tr])
    p = pred.predict_many([archs[i] for i in te], X[te])
    return FitReport(column, latency_metrics(p, y[te]), len(tr), len(te), pred)
