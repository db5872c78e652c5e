"""dbt-duckdb's process-wide environment, and forgetting it between uses.

dbt-duckdb keeps one environment per process (`DuckDBConnectionManager._ENV`):
its read-write connection to the warehouse file and, while dbt parses, the
plugin sources it reads through it. A process that runs more than one thing
(`dag.test`, a reused worker) must drop it before

- another tenant's dbt command: otherwise dbt reads that tenant's Iceberg
  catalog through the first tenant's environment;
- a read-only connection to the warehouse (the publish and the mart Asset
  counts of `publish/warehouse.py`): DuckDB refuses it while the read-write
  one is open.

Written once here for the task wrappers, the dbt task hooks and the Asset
events alike. dbt is imported only when called: the DAG parse path imports
this module.
"""

from __future__ import annotations

import sys
from typing import Any


def forget_dbt_duckdb_environment(context: object = None) -> None:
    """Close and drop dbt-duckdb's environment of this process, if any.

    `context` is ignored: it lets a task hook (which Airflow calls with the
    task's context) be this function. No public API resets the environment,
    hence the private names.
    """
    module = sys.modules.get("dbt.adapters.duckdb.connections")
    if module is None:
        # Never imported here, so no environment: importing dbt-duckdb only to
        # find that out cost a sync task 1.6 s.
        return
    manager: Any = module.DuckDBConnectionManager

    with manager._LOCK:
        environment = manager._ENV
        if environment is not None:
            environment.close()
            manager._ENV = None


__all__ = ["forget_dbt_duckdb_environment"]
