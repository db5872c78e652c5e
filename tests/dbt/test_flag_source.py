"""dbt/flag_source.py names a behaviour flag's source as dbt-common does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dbt_common.behavior_flags import Behavior, BehaviorFlagRendered

from mozart_etl.dbt.flag_source import (
    dbt_common_default_source,
    name_flag_sources_cheaply,
)
from mozart_etl.factory.dbt_groups import before_dbt_task
from mozart_etl.factory.heap import unfreeze_heap

# As dbt-adapters declares its defaults: no `source`, so dbt-common names one.
FLAGS: list[Any] = [
    {"name": "flag_without_source", "default": False, "docs_url": "https://x.invalid"},
    {
        "name": "flag_with_source",
        "default": True,
        "source": "an-adapter",
        "docs_url": "",
    },
]


@pytest.fixture
def restore_dbt_common() -> Iterator[None]:
    original = dbt_common_default_source()
    yield
    BehaviorFlagRendered._default_source = original  # type: ignore[method-assign]


def _sources_seen_from_here() -> list[str]:
    """The sources of flags built by a caller in this module, as dbt's
    adapter builds its own (a nested call, several frames deep)."""

    def build(depth: int) -> Behavior:
        return build(depth - 1) if depth else Behavior([dict(f) for f in FLAGS], {})

    behavior = build(30)
    return [
        getattr(behavior, f["name"])._behavior_change_event.flag_source for f in FLAGS
    ]


def test_the_cheap_source_is_dbt_commons_answer(restore_dbt_common: None) -> None:
    BehaviorFlagRendered._default_source = dbt_common_default_source()  # type: ignore[method-assign]
    by_dbt_common = _sources_seen_from_here()
    name_flag_sources_cheaply()
    name_flag_sources_cheaply()  # idempotent: dbt-common's answer is kept
    assert BehaviorFlagRendered.__dict__["_default_source"] is not (
        dbt_common_default_source()
    )
    assert _sources_seen_from_here() == by_dbt_common == [__name__, "an-adapter"]


def test_a_dbt_task_names_sources_cheaply(restore_dbt_common: None) -> None:
    BehaviorFlagRendered._default_source = dbt_common_default_source()  # type: ignore[method-assign]
    try:
        before_dbt_task(False, None)
    finally:
        unfreeze_heap()
    assert BehaviorFlagRendered.__dict__["_default_source"] is not (
        dbt_common_default_source()
    )
    assert _sources_seen_from_here()[0] == __name__
