"""Pareto fronts and hypervolume (``nasforge.pareto``, moocore underneath): hand-made fronts, a brute-force grid
count, non-dominated sorting and crowding on hand-made sets, and the strategies' 2-D hypervolume improvement."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nasforge.pareto import (
    crowding_distance,
    hv_contributions,
    hypervolume,
    hypervolume_history,
    nondominated,
    normalise,
    pareto_ranks,
)
from nasforge.strategies._pareto_local import hv_improvement_2d


def test_hypervolume_of_hand_made_fronts() -> None:
    # three steps up to (1, 1): 0.3 x 0.2 + 0.4 x 0.5 + 0.1 x 0.9
    assert hypervolume([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]], [1, 1]) == pytest.approx(0.35)
    assert hypervolume([[0.5, 0.5]], [1, 1]) == pytest.approx(0.25)
    assert hypervolume([[0, 0, 0]], [1, 2, 3]) == pytest.approx(6.0)
    # two boxes in 3-D overlapping in [0.5,1]x[0.5,1]x[0,1]: 0.5 + 0.5 - 0.25
    assert hypervolume([[0, 0.5, 0], [0.5, 0, 0]], [1, 1, 1]) == pytest.approx(0.75)
    # dominated and duplicated points add nothing; points outside the box add nothing
    assert hypervolume([[0.5, 0.5], [0.6, 0.6], [0.5, 0.5], [1.2, 0.0], [0.0, 1.0]], [1, 1]) == pytest.approx(0.25)
    assert hypervolume(np.zeros((0, 2)), [1, 1]) == 0.0


def _grid_count(points: np.ndarray, ref: np.ndarray) -> int:
    """Unit cells of the integer grid below ``ref`` dominated by some point (a cell's lower corner >= a point)."""
    count = 0
    for cell in itertools.product(*(range(int(r)) for r in ref)):
        if any(np.all(np.array(cell) >= p) for p in points):
            count += 1
    return count


@pytest.mark.parametrize("dim", [2, 3])
def test_hypervolume_equals_a_brute_force_count_on_a_grid(dim: int) -> None:
    rng = np.random.default_rng(dim)
    ref = np.full(dim, 8 if dim == 2 else 6)
    for _ in range(15):
        pts = rng.integers(0, ref[0] + 1, size=(int(rng.integers(1, 9)), dim))
        assert hypervolume(pts, ref) == _grid_count(pts, ref)


def test_nondominated_and_ranks_of_hand_made_sets() -> None:
    pts = [[1, 5], [2, 3], [3, 4], [4, 1], [2, 3], [5, 5], [3, 2]]
    assert nondominated(pts).tolist() == [True, True, False, True, False, False, True]  # first duplicate kept
    assert pareto_ranks(pts).tolist() == [0, 0, 1, 0, 0, 2, 0]  # duplicates tie
    assert pareto_ranks([[1, 1, 1], [2, 2, 2], [3, 3, 3], [0, 4, 4]]).tolist() == [0, 1, 2, 0]
    assert nondominated(np.zeros((0, 2))).tolist() == []


def test_crowding_distance_and_contributions() -> None:
    d = crowding_distance([[0, 4], [1, 2], [2, 1.5], [4, 0]])
    assert np.isinf(d[0]) and np.isinf(d[3])
    assert d[1] == pytest.approx(2 / 4 + 2.5 / 4) and d[2] == pytest.approx(3 / 4 + 2 / 4)
    assert hv_contributions([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]], [1, 1]).tolist() == pytest.approx(
        [0.3 * 0.2, 0.4 * 0.3, 0.1 * 0.4])


def test_history_and_normalise() -> None:
    pts = normalise([[2, 10], [4, 30], [1, 50], [3, 20]], [1, 10], [4, 50])
    assert np.allclose(pts, [[1 / 3, 0], [1, 0.5], [0, 1], [2 / 3, 0.25]])
    hist = hypervolume_history(np.vstack([pts[:1], [[np.nan, np.nan]], pts[1:]]), [1.1, 1.1])
    assert hist == pytest.approx([hypervolume(pts[:k], [1.1, 1.1]) for k in (1, 1, 2, 3, 4)])
    assert all(a <= b for a, b in itertools.pairwise(hist))


def test_2d_improvement_equals_the_library_hypervolume_difference() -> None:
    rng = np.random.default_rng(0)
    ref = np.array([1.0, 1.0])
    for _ in range(50):
        f = rng.random((int(rng.integers(1, 8)), 2))
        c = rng.random((20, 2)) * 1.2
        got = hv_improvement_2d(f, c, ref)
        want = [hypervolume(np.vstack([f, p]), ref) - hypervolume(f, ref) for p in c]
        assert got == pytest.approx(want, abs=1e-12)
