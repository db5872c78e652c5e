"""The run's first task prepares the tenant's local stores for the table tasks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mozart_etl.factory import tasks
from tests.helpers import make_tenant, table_dict


def test_the_first_task_creates_the_sql_catalog_tables(tmp_path: Path) -> None:
    """Table tasks that each opened a new SQLite catalog at once raced to create
    its tables; the run's first task creates them before any of those start."""
    lots = table_dict("lots", [{"name": "id", "type": "int"}])
    tenant = make_tenant(tmp_path, [lots])
    database = tenant.iceberg.catalog.uri.removeprefix("sqlite:///")
    assert not Path(database).exists()

    tasks.prepare_local_stores(tenant)

    with sqlite3.connect(database) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"iceberg_tables", "iceberg_namespace_properties"} <= names
    assert Path(tenant.dbt.duckdb_path).parent.is_dir()
