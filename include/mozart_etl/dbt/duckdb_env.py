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


def forget_dbt_duckdb_environment(context: object = None) -> None:
    """Close and drop dbt-duckdb's environment of this process, if any.

    `context` is ignored: it lets a task hook (which Airflow calls with the
    task's context) be this function. No public API resets the environment,
    hence the private names.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        if environment is not None:
            environment.close()
            DuckDBConnectionManager._ENV = None


__all__ = ["forget_dbt_duckdb_environment"]
