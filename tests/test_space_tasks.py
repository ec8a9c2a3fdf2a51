"""The dense contract's task check on every space: ``SearchSpace.tasks`` and ``for_data(..., task=...)``."""

from __future__ import annotations

import pytest

from nasforge.errors import NasforgeError
from nasforge.spaces import TASKS, check_task, get_space, list_spaces
from nasforge.testing.pytest_spaces import SMALL_OPTIONS


def test_tasks_are_the_three_of_the_contract() -> None:
    assert TASKS == ("classification", "segmentation", "detection")
    assert [check_task(t) for t in TASKS] == list(TASKS)


@pytest.mark.parametrize("bad", ["", "Detection", "pose", None, 3])
def test_unknown_task_is_one_line(bad: object) -> None:
    with pytest.raises(NasforgeError, match=r"^unknown task .*; allowed: classification, segmentation, detection$"):
        check_task(bad)
    with pytest.raises(NasforgeError, match="unknown task"):
        get_space("nb201", **SMALL_OPTIONS["nb201"]).for_data((3, 16, 16), 5, task=bad)  # type: ignore[arg-type]


def test_a_task_the_space_cannot_serve_is_one_line() -> None:
    with pytest.raises(NasforgeError) as e:
        get_space("nb201").for_data((3, 16, 16), 5, task="detection")
    assert str(e.value) == "space 'nb201' cannot serve task 'detection' (it serves: classification)"


def test_every_space_lists_tasks_of_the_contract_and_serves_what_it_lists() -> None:
    for name in list_spaces():
        if name == "config":
            continue  # needs a file; a StagedSpace like mobilenet
        sp = get_space(name, **SMALL_OPTIONS.get(name, {}))
        assert sp.tasks and set(sp.tasks) <= set(TASKS), name
        assert sp.task in sp.tasks, name
        for task in sp.tasks:
            fitted = sp.for_data((1, 32, 32), 5, task=task)
            assert fitted.name == name and fitted.task == task, (name, task)
        for task in set(TASKS) - set(sp.tasks):
            with pytest.raises(NasforgeError, match=f"cannot serve task '{task}'"):
                sp.for_data((1, 32, 32), 5, task=task)
