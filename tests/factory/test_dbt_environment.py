"""A dbt task leaves the process environment as it found it (Cosmos does not)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from mozart_etl.factory.dbt_groups import after_dbt_task


def test_after_a_dbt_task_the_environment_is_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOZART_TRINO_USER", "mozart_demo")
    monkeypatch.delenv("MOZART_DBT_SCHEMA", raising=False)
    saved = {"MOZART_TRINO_USER": "mozart_demo", "MOZART_DBT_SCHEMA": None}
    # What Cosmos's OpenLineage step leaves behind after another tenant's task.
    os.environ.update({"MOZART_TRINO_USER": "mozart", "MOZART_DBT_SCHEMA": "acme"})
    context = {"task": SimpleNamespace(outlets=[])}

    after_dbt_task("tenants/acme", saved, context)

    assert os.environ["MOZART_TRINO_USER"] == "mozart_demo"
    assert "MOZART_DBT_SCHEMA" not in os.environ
