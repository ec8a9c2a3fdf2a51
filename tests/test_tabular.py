"""TabularEstimator: lookups by canonical string, column checks, parsing with a space, the real NB201 table."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nasforge.errors import NasforgeError
from nasforge.estimators import TabularEstimator
from runner_toy import ToySpace


def _csv(tmp: Path, text: str) -> Path:
    p = tmp / "table.csv"
    p.write_text(text)
    return p


def test_lookup_reward_final_time(tmp_path: Path) -> None:
    p = _csv(tmp_path, "name,val,test,secs\n0-1-2-3-0,0.5,0.55,100\n3-1-2-0-3,0.9,0.8,200\n")
    est = TabularEstimator(p, "name", "val", final_col="test", time_col="secs", time_scale=0.5)
    space = ToySpace()
    r = est.evaluate(space.parse("3-1-2-0-3"))
    assert r.ok and r.reward == 0.9 and r.metrics == {"reward": 0.9, "final": 0.8} and r.seconds == 100.0
    assert len(est) == 2 and space.parse("0-1-2-3-0") in est
    with pytest.raises(NasforgeError, match=r"^architecture '0-0-0-0-0' is not in table table.csv \(2 archi"):
        est.evaluate(space.parse("0-0-0-0-0"))  # a clear one-line error, not a KeyError
    with pytest.raises(NasforgeError, match="'1-1-1-1-1' is not in table"):
        est.lookup("1-1-1-1-1")
    bare = TabularEstimator(p, "name", "val")
    assert bare.evaluate(space.parse("0-1-2-3-0")).metrics == {"reward": 0.5} and bare.lookup("0-1-2-3-0")[2] == 0.0


def test_space_normalises_the_table_strings(tmp_path: Path) -> None:
    p = _csv(tmp_path, "a,r\n 00-1-2-3-0 ,0.5\n")  # parses to the canonical "0-1-2-3-0"
    est = TabularEstimator(p, "a", "r", space=ToySpace())
    assert "0-1-2-3-0" in est.rows


@pytest.mark.parametrize("text,kwargs,match", [
    ("a,r\n0-0-0-0-0,0.1\n", {"reward_col": "val"}, r"reward column 'val' not in table .*; columns: a, r"),
    ("a,r\n0-0-0-0-0,0.1\n", {"final_col": "fin"}, r"final column 'fin' not in table .*; columns: a, r"),
    ("a,r\n0-0-0-0-0,high\n", {}, r"line 2: column 'r' is not numeric \('high'\); columns: a, r"),
    ("a,r\n0-0-0-0-0,nan\n", {}, r"line 2: column 'r' is nan"),
    ("a,r\n0-x-0-0-0,0.1\n", {"space": ToySpace()}, r"line 2: arch '0-x-0-0-0' does not parse in space 'toy'"),
    ("a,r\n0-0-0-0-0,0.1\n0-0-0-0-0,0.2\n", {}, r"line 3: arch '0-0-0-0-0' appears twice"),
    ("", {}, "is empty"),
    ("a,r\n", {}, "has no rows"),
])
def test_bad_tables_are_one_line_errors(tmp_path: Path, text: str, kwargs: dict[str, object], match: str) -> None:
    p = _csv(tmp_path, text)
    args: dict[str, object] = {"arch_col": "a", "reward_col": "r", **kwargs}
    with pytest.raises(NasforgeError, match=match) as e:
        TabularEstimator(p, **args)  # type: ignore[arg-type]
    assert "\n" not in str(e.value)


def test_missing_file_and_bad_scale(tmp_path: Path) -> None:
    with pytest.raises(NasforgeError, match="not found"):
        TabularEstimator(tmp_path / "nope.csv", "a", "r")
    p = _csv(tmp_path, "a,r\nx,1\n")
    with pytest.raises(NasforgeError, match="time_scale"):
        TabularEstimator(p, "a", "r", time_scale=0.0)


def test_real_nb201_table_lookup_is_fast(shared_data: Path) -> None:
    table = shared_data / "nb201_nats_tss" / "nb201_12ep_acc_minibench.csv"
    est = TabularEstimator(table, "cellstr", "cifar10-val", final_col="cifar10-test")
    assert len(est) == 15625
    best = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    reward, final, _ = est.lookup(best)
    assert 0.8 < reward < 1 and 0.8 < final < 1  # the table's percent, read as fractions
    assert est.units == {"cifar10-val": "percent", "cifar10-test": "percent"}
    keys = list(est.rows)[:1000]
    t0 = time.perf_counter()
    for k in keys:
        est.lookup(k)
    per = (time.perf_counter() - t0) / len(keys)
    assert per < 50e-6, f"lookup took {per * 1e6:.1f} us"


def test_search_loop_on_real_nb201_table(tmp_path: Path, shared_data: Path) -> None:
    """run_search + TabularEstimator + a registered strategy on NB201; a resumed run extends to the same trials."""
    from nasforge.runner import run_search
    from nasforge.spaces import get_space

    table = shared_data / "nb201_nats_tss" / "nb201_12ep_acc_minibench.csv"
    space = get_space("nb201")
    est = TabularEstimator(table, "cellstr", "cifar10-val", final_col="cifar10-test", space=space)
    full = run_search(space, "evolution", est, 40, ["params<=1e6"], seed=5)
    run_search(space, "evolution", est, 20, ["params<=1e6"], seed=5, out_dir=tmp_path / "r")
    more = run_search(space, "evolution", est, 40, ["params<=1e6"], seed=5, out_dir=tmp_path / "r", resume=True)
    assert [t.key() for t in more.trials] == [t.key() for t in full.trials]
    ok = [t for t in full.trials if t.ok]
    assert len(ok) == 40 and all(t.reward == est.rows[t.arch][0] and "final" in t.metrics for t in ok)
    assert all(t.cost["params"] > 1e6 for t in full.trials if t.status == "infeasible")
    assert full.best is not None and full.best.reward == max(t.reward for t in ok)  # type: ignore[type-var]
