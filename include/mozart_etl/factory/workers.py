"""What a worker should import once, before it starts task processes.

An Airflow 3 task is a process of its own: it imports what its DAG file and
its callable need, seconds on a small machine, for tasks whose own work often
takes less. With `[core] mp_start_method = forkserver`, Airflow's executors
fork task processes from a server that imported `[core]
mp_forkserver_preload` once; each task inherits those modules instead of
importing them (measured on the 2-core machine: a slim tenant's Python tasks
2-5 s each without, about 2 s with; docs/performance.md). The stack's compose
file and the live test harness set both options from this list.
"""

from __future__ import annotations

FORKSERVER_PRELOAD = (
    "airflow.sdk",
    "airflow.providers.standard.operators.python",
    "cosmos",
    "dbt.cli.main",
    "pyarrow",
    "duckdb",
    "pyiceberg.catalog.sql",
    "mozart_etl.factory.dag_factory",
)
"""`AIRFLOW__CORE__MP_FORKSERVER_PRELOAD`, comma-separated."""
