"""Example downstream DAG: an APS engine job that starts when the demo tenant's
marts are fresh (an Airflow DAG scheduled on Assets, no sensors, no polling).

Every mart `run` task of a tenant DAG updates the Asset
`<tenant>.<mart>` (see mozart_etl.factory.assets); this DAG runs once each of
the marts it lists has a new event, and reads what the events carry (the
production day and the day's rows).
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from mozart_etl.config.loader import load_tenant, tenants_dir
from mozart_etl.factory.assets import mart_asset

log = logging.getLogger(__name__)

TENANT = "demo"
MARTS = ("mart_wip", "mart_plan_vs_actual")
DAG_ID = "demo_marts_consumer"


def read_fresh_marts(**context: Any) -> dict[str, dict[str, Any]]:
    """What the APS engine would plan from: each mart's latest event."""
    fresh: dict[str, dict[str, Any]] = {}
    for asset, events in context["triggering_asset_events"].items():
        extra = dict(events[-1].extra)
        fresh[asset.name] = extra
        log.info(
            "%s is fresh: day %s, %s rows",
            asset.name,
            extra.get("production_day"),
            extra.get("rows"),
        )
    return fresh


if (tenants_dir() / TENANT / "tenant.yaml").is_file():
    tenant = load_tenant(tenants_dir() / TENANT)
    with DAG(
        dag_id=DAG_ID,
        description=f"Example: runs when {TENANT}'s {', '.join(MARTS)} are updated",
        schedule=[mart_asset(tenant, mart) for mart in MARTS],
        catchup=False,
        tags=["mozart", "example", f"tenant:{TENANT}"],
        doc_md=__doc__,
    ):
        PythonOperator(task_id="read_fresh_marts", python_callable=read_fresh_marts)
