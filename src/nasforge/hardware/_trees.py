"""A fitted gradient-boosting model as plain arrays: predicts with numpy, saves as JSON, loads without executing code.

Why our own format rather than pickle or skops: a latency model is a file users share, and loading one must never
run code. A pickle runs whatever it names; skops' loader needs an allow-list of types that grows with each
scikit-learn release and still loads objects. The fitted model is only numbers (a constant, a learning rate and,
per tree, five arrays), so JSON of those numbers is the whole model: readable, independent of the scikit-learn
version, and loading it builds arrays and nothing else. ``from_sklearn`` copies a fitted
``GradientBoostingRegressor``; ``predict`` equals its ``predict`` (same float32 comparisons, to rounding of the sum).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from nasforge.errors import NasforgeError

TREE_KEYS = ("left", "right", "feature", "threshold", "value")


class TreeEnsemble:
    """``init + learning_rate * sum(tree(x))`` over regression trees stored as flat arrays (all trees concatenated).

    A tree's node ``i`` is a leaf when ``left[i] == -1``; otherwise ``x[feature[i]] <= threshold[i]`` goes to
    ``left[i]``, else to ``right[i]`` (indices within the tree, children after their parent).
    """

    def __init__(self, init: float, learning_rate: float, n_features: int, trees: Sequence[dict[str, Any]]) -> None:
        self.init = float(init)
        self.learning_rate = float(learning_rate)
        self.n_features = int(n_features)
        self.trees = [{k: list(t[k]) for k in TREE_KEYS} for t in trees]
        roots, left, right, feat, thr, val = [], [], [], [], [], []
        offset, depth = 0, 0
        for t in self.trees:
            n = len(t["left"])
            roots.append(offset)
            for i in range(n):
                leaf = t["left"][i] == -1
                left.append(-1 if leaf else offset + t["left"][i])
                right.append(-1 if leaf else offset + t["right"][i])
                feat.append(0 if leaf else t["feature"][i])
            thr.extend(t["threshold"])
            val.extend(t["value"])
            depth = max(depth, _depth(t["left"], t["right"]))
            offset += n
        self._roots = np.asarray(roots, dtype=np.int64)
        self._left = np.asarray(left, dtype=np.int64)
        self._right = np.asarray(right, dtype=np.int64)
        self._feature = np.asarray(feat, dtype=np.int64)
        self._threshold = np.asarray(thr, dtype=np.float64)
        self._value = np.asarray(val, dtype=np.float64)
        self._depth = depth

    @staticmethod
    def from_sklearn(model: Any) -> TreeEnsemble:
        """Copy a fitted ``sklearn.ensemble.GradientBoostingRegressor`` (one output)."""
        trees = []
        for est in model.estimators_[:, 0]:
            t = est.tree_
            trees.append({"left": t.children_left.tolist(), "right": t.children_right.tolist(),
                          "feature": [max(int(f), 0) for f in t.feature],
                          "threshold": t.threshold.tolist(), "value": t.value[:, 0, 0].tolist()})
        init = float(np.asarray(model.init_.constant_).ravel()[0])
        return TreeEnsemble(init, model.learning_rate, model.n_features_in_, trees)

    def predict(self, X: np.ndarray) -> np.ndarray:
        X32 = np.asarray(X, dtype=np.float32)  # scikit-learn's trees compare float32 features to float64 thresholds
        if X32.ndim != 2 or X32.shape[1] != self.n_features:
            raise NasforgeError(f"the model wants {self.n_features} features per row, got shape {X32.shape}")
        node = np.broadcast_to(self._roots, (len(X32), len(self._roots))).copy()
        rows = np.arange(len(X32))[:, None]
        for _ in range(self._depth):
            inner = self._left[node] >= 0
            if not inner.any():
                break
            go_left = X32[rows, self._feature[node]] <= self._threshold[node]
            node = np.where(inner, np.where(go_left, self._left[node], self._right[node]), node)
        return self.init + self.learning_rate * self._value[node].sum(axis=1)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "gradient-boosting", "init": self.init, "learning_rate": self.learning_rate,
                "n_features": self.n_features, "trees": self.trees}

    @staticmethod
    def from_json(d: Any, where: str) -> TreeEnsemble:
        """Validate every field (types, lengths, indices, finiteness) before building: a bad file is one line."""

        def bad(what: str) -> NasforgeError:
            return NasforgeError(f"{where}: {what}")

        if not isinstance(d, dict) or d.get("kind") != "gradient-boosting":
            raise bad("model is not a gradient-boosting model")
        for k in ("init", "learning_rate"):
            if not _is_number(d.get(k)):
                raise bad(f"model.{k} must be a finite number")
        nf = d.get("n_features")
        if not isinstance(nf, int) or isinstance(nf, bool) or nf < 1:
            raise bad("model.n_features must be a positive integer")
        trees = d.get("trees")
        if not isinstance(trees, list) or not trees:
            raise bad("model.trees must be a non-empty list")
        for ti, t in enumerate(trees):
            if not isinstance(t, dict) or any(not isinstance(t.get(k), list) for k in TREE_KEYS):
                raise bad(f"tree {ti} must hold the lists {', '.join(TREE_KEYS)}")
            n = len(t["left"])
            if n == 0 or any(len(t[k]) != n for k in TREE_KEYS):
                raise bad(f"tree {ti}: its lists must be non-empty and of one length")
            for i in range(n):
                lo, hi, f = t["left"][i], t["right"][i], t["feature"][i]
                if not all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi, f)):
                    raise bad(f"tree {ti} node {i}: left, right and feature must be integers")
                if not (_is_number(t["threshold"][i]) and _is_number(t["value"][i])):
                    raise bad(f"tree {ti} node {i}: threshold and value must be finite numbers")
                if lo == -1:
                    continue
                if not (i < lo < n and i < hi < n and 0 <= f < nf):
                    raise bad(f"tree {ti} node {i}: child or feature index out of range")
        return TreeEnsemble(d["init"], d["learning_rate"], nf, trees)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _depth(left: Sequence[int], right: Sequence[int]) -> int:
    """Longest root-to-leaf path (children come after their parent, so one forward pass)."""
    d = [0] * len(left)
    for i in range(len(left)):
        if left[i] != -1:
            d[left[i]] = d[right[i]] = d[i] + 1
    return max(d)
