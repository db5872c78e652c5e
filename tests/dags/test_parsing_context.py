"""A task's process builds only its own tenant's DAG (Airflow's parsing context).

Every task parses the DAG file again; with hundreds of tenants in one folder,
building all of them would cost each task the whole parse.
"""

from __future__ import annotations

import pytest

from mozart_etl.config.loader import tenant_folders
from mozart_etl.factory.dag_factory import build_tenant_dags

CONTEXT_DAG_ID = "_AIRFLOW_PARSING_CONTEXT_DAG_ID"  # set by Airflow's task runner


def test_the_scheduler_parse_builds_every_tenant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CONTEXT_DAG_ID, raising=False)
    assert sorted(build_tenant_dags()) == sorted(f.name for f in tenant_folders())


def test_a_task_parse_builds_only_its_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONTEXT_DAG_ID, "demo")
    dags = build_tenant_dags()
    assert list(dags) == ["demo"]
    # The tenant's real DAG (a sync task per table), not a stand-in.
    assert "sync.lot_history" in dags["demo"].task_ids
