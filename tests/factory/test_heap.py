"""A table task runs with the heap that existed before it frozen for the
garbage collector (factory/heap.py), and leaves nothing frozen behind, even
when it fails."""

from __future__ import annotations

import gc

import pytest

from mozart_etl.factory.lineage import StageOperator


def _stage(callable_: object) -> StageOperator:
    return StageOperator(task_id="sync_x", stage="sync", python_callable=callable_)


def test_a_stage_runs_frozen_and_unfreezes_after() -> None:
    on_the_heap = [object() for _ in range(1000)]
    frozen_during: list[int] = []

    def work() -> str:
        frozen_during.append(gc.get_freeze_count())
        return "done"

    assert gc.get_freeze_count() == 0
    assert _stage(work).execute({}) == "done"
    assert frozen_during[0] > len(on_the_heap)
    assert gc.get_freeze_count() == 0


def test_a_failed_stage_unfreezes_too() -> None:
    def fail() -> None:
        raise RuntimeError("the stage failed")

    with pytest.raises(RuntimeError, match="the stage failed"):
        _stage(fail).execute({})
    assert gc.get_freeze_count() == 0
