"""dbt: per-tenant projects, generated sources, profile settings and manifests.

Knows nothing of Airflow; `mozart_etl.factory.dbt_groups` turns it into Cosmos
task groups.
"""
