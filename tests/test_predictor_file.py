"""The saved latency predictor is JSON of the fitted numbers: same predictions after a round trip, the search job
loads it, bad files are one line, and a pickle (old ``.pkl`` or a malicious one) is refused without being run."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from nasforge.errors import NasforgeError
from nasforge.hardware import LatencyPredictor, load_latency_model
from nasforge.hardware._predictor import ModelConfig
from nasforge.hardware._trees import TreeEnsemble
from nasforge.spaces import get_space

SMALL = ModelConfig(n_estimators=40)


def _fitted(n: int = 60) -> tuple[LatencyPredictor, list]:
    sp = get_space("nb201")
    rng = np.random.default_rng(0)
    archs = list(dict.fromkeys(sp.sample(rng) for _ in range(n)))
    y = np.array([1.0 + sum((0.0, 0.1, 1.0, 3.0, 0.5)[c] for c in a.choices) for a in archs])
    return LatencyPredictor(sp, ("onehot", "counts"), SMALL).fit(archs, y), archs


def test_tree_ensemble_equals_sklearn() -> None:
    from sklearn.ensemble import GradientBoostingRegressor

    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 5))
    y = X[:, 0] * 2 + np.sin(X[:, 1]) + rng.normal(0, 0.1, 200)
    for loss in ("absolute_error", "squared_error"):
        g = GradientBoostingRegressor(loss=loss, n_estimators=30, max_depth=3, random_state=0).fit(X, y)
        ens = TreeEnsemble.from_sklearn(g)
        np.testing.assert_allclose(ens.predict(X), g.predict(X), rtol=1e-10, atol=1e-10)
        back = TreeEnsemble.from_json(json.loads(json.dumps(ens.to_json())), "test")
        np.testing.assert_array_equal(back.predict(X), ens.predict(X))


def test_round_trip_and_search_loader(tmp_path: Path) -> None:
    pred, archs = _fitted()
    path = pred.save(tmp_path / "m.json")
    assert json.loads(path.read_text())["format"] == "nasforge-latency-predictor/2"
    back = LatencyPredictor.load(path)
    np.testing.assert_array_equal(back.predict_many(archs), pred.predict_many(archs))
    fn = load_latency_model(path, get_space("nb201"))  # what `search --latency-model` calls
    assert fn(archs[3]) == pred.predict(archs[3])
    with pytest.raises(NasforgeError, match=r"must end in \.json"):
        pred.save(tmp_path / "m.pkl")


def test_bad_predictor_files_are_one_line_errors(tmp_path: Path) -> None:
    pred, _ = _fitted()
    good = json.loads(pred.save(tmp_path / "m.json").read_text())
    cases = {
        "not json": "{", "wrong format": json.dumps({**good, "format": "x"}),
        "child out of range": json.dumps({**good, "model": {**good["model"], "trees": [
            {"left": [5, -1, -1], "right": [2, -1, -1], "feature": [0, 0, 0], "threshold": [0.5, 0, 0],
             "value": [0, 1, 2]}]}}),
        "names mismatch": json.dumps({**good, "names": good["names"][:3]}),
        "nan value": json.dumps({**good, "model": {**good["model"], "init": float("nan")}}),
        "lookup negative": json.dumps({**good, "lookup": {"x": -1}}),
    }
    for name, text in cases.items():
        p = tmp_path / f"bad_{name.replace(' ', '_')}.json"
        p.write_text(text)
        with pytest.raises(NasforgeError) as e:
            LatencyPredictor.load(p)
        assert "\n" not in str(e.value), name


class _Payload:
    """Unpickling this calls ``Path.touch(marker)``: the classic code-execution gadget."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("name", ["model.pkl", "model.json", "model.bin"])
def test_malicious_pickle_is_refused_without_running(tmp_path: Path, name: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from nasforge.cli import main

    marker = tmp_path / "pwned"
    evil = tmp_path / name
    evil.write_bytes(pickle.dumps(_Payload(marker), protocol=4))
    # (the payload works: unpickling it would create the file; we check that on a copy we are allowed to run)
    for load in (LatencyPredictor.load, load_latency_model):
        with pytest.raises(NasforgeError) as e:
            load(evil)
        msg = str(e.value)
        assert "\n" not in msg
        if name != "model.bin":
            assert "pickle" in msg and "--save model.json" in msg
    assert main(["search", "--space", "nb201", "--latency-model", str(evil), "--constraint", "latency<=5",
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and (name == "model.bin" or "pickle" in err)
    assert not marker.exists()
    assert not (tmp_path / "run").exists()
    from nasforge.hardware import resave_pickled_predictor

    with pytest.raises(NasforgeError, match=r"refusing to convert: the pickle names pathlib\S*\.touch"):
        resave_pickled_predictor(evil, tmp_path / "converted.json")  # the converter's allow-list refuses it too
    assert not marker.exists() and not (tmp_path / "converted.json").exists()
    pickle.loads(evil.read_bytes())  # the control: the payload really creates the file when unpickled
    assert marker.exists()


def test_old_pickled_predictor_converts_when_trusted(tmp_path: Path) -> None:
    """The format /1 pickle (a dict holding the scikit-learn model) is refused, and resaves through the hint."""
    from sklearn.ensemble import GradientBoostingRegressor

    from nasforge.hardware import resave_pickled_predictor

    pred, archs = _fitted()
    X = pred.encoder.transform(archs)
    y = np.log(pred.predict_many(archs))
    gbm = GradientBoostingRegressor(n_estimators=20, random_state=0).fit(X, y)
    old = tmp_path / "old.pkl"
    old.write_bytes(pickle.dumps({"format": "nasforge-latency-predictor/1", "space": "nb201", "space_options": {},
                                  "groups": pred.encoder.groups, "names": pred.encoder.names,
                                  "config": SMALL.__dict__, "model": gbm}))
    with pytest.raises(NasforgeError, match="resave_pickled_predictor"):
        load_latency_model(old)
    new = resave_pickled_predictor(old, tmp_path / "new.json")
    np.testing.assert_allclose(np.log(LatencyPredictor.load(new).predict_many(archs)), gbm.predict(X), rtol=1e-10)
