"""Mozart ETL: multi-tenant MES/APS pipelines on Apache Airflow 3.

Stage packages (config, extract, validate, load, dbt) never import Airflow;
only `mozart_etl.factory` turns them into DAGs and tasks.
"""

__version__ = "0.1.0"
