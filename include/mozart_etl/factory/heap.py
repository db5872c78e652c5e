"""A task's garbage collection walks only what the task allocated.

A task process (a worker's, or `dag.test` running a whole DAG in one) holds a
large heap before any task runs: Airflow, the DAG, pyarrow, PyIceberg, dbt.
CPython's full (oldest-generation) collections walk all of it, and a table's
sync or a dbt build allocates enough to trigger several: on the 1M-row day
(bench/e2e.py) 15 full collections took 0.1 to 0.9 s each. Frozen at the
task's start (`gc.freeze`: the objects move to a permanent generation the
collector skips), the heap that existed before costs nothing; the task's own
garbage is still collected. Unfrozen at the end, so a later collection can
free what the task left unreachable.
"""

from __future__ import annotations

import gc


def freeze_heap() -> None:
    """Before a task's work: what exists now is skipped by the collector."""
    gc.freeze()


def unfreeze_heap() -> None:
    """After a task's work, however it ended."""
    gc.unfreeze()


__all__ = ["freeze_heap", "unfreeze_heap"]
