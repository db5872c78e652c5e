"""Name a dbt behaviour flag's source without `inspect.stack()`.

Every dbt command builds its adapter, and the adapter its behaviour flags
(dbt-adapters' two defaults carry no `source`). For each, dbt-common 1.39
names the module that created it with `inspect.stack()`, which resolves
every frame's module and reads its source lines from disk. Inside an Airflow
task, under Cosmos and dbt, the stack is deep: 0.1 s per dbt build in a demo
day, and the largest single dbt cost of `make test` (70 of its ~1 250 CPU
seconds in a py-spy profile, more than dbt's full parses). The replacement
walks the same frames and returns the same name (the first module that is
not dbt-common's flags module), reading only each frame's globals.

Written by hand because no dbt-common release avoids the stack walk (1.39.0
is the newest on PyPI); the check in tests/dbt/test_flag_source.py compares
it with dbt-common's own answer, so an upstream change in what a source is
shows there.
"""

from __future__ import annotations

import sys
from types import FrameType


def _creating_module() -> str:
    """The first module on the stack outside dbt-common's flags module:
    what `BehaviorFlagRendered._default_source` returns, found without
    building a FrameInfo (and reading source) for every frame."""
    from dbt_common import behavior_flags

    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if name and name != behavior_flags.__name__:
            return str(name)
        frame = frame.f_back
    return "Unknown"


def dbt_common_default_source() -> object:
    """dbt-common's own `_default_source` (the staticmethod object), kept
    when first replaced: the test compares the two answers."""
    from dbt_common.behavior_flags import BehaviorFlagRendered

    return _ORIGINAL.get("source", BehaviorFlagRendered.__dict__["_default_source"])


_ORIGINAL: dict[str, object] = {}


def name_flag_sources_cheaply() -> None:
    """Replace dbt-common's stack walk for this process (idempotent); called
    before each dbt command (factory/dbt_groups.py, dbt/runner.py)."""
    from dbt_common.behavior_flags import BehaviorFlagRendered

    _ORIGINAL.setdefault("source", BehaviorFlagRendered.__dict__["_default_source"])
    BehaviorFlagRendered._default_source = staticmethod(_creating_module)  # type: ignore[method-assign]
