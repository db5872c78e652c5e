"""The Airflow layer: turns tenant configs and stage functions into DAGs.

Files here are on the DAG parse path: they import Airflow and Cosmos only;
stage modules (pyarrow, duckdb, pyiceberg, drivers) load inside the tasks.
"""
