"""Raw tables and marts are Airflow Assets updated by the tasks that write them;
the example consumer DAG is queued by the scheduler's own logic once its marts
are fresh."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
from airflow.models.dag import DagModel
from airflow.utils.session import create_session
from sqlalchemy import select

from mozart_etl.demo.generate import DEMO_DAY, TENANT_TZ
from mozart_etl.factory.assets import mart_asset, raw_asset
from mozart_etl.load.catalog import open_catalog
from tests.e2e.oracle import expected_marts
from tests.observability.conftest import CONSUMER, ROOT, LineageRun

CONSUMED = ("mart_wip", "mart_plan_vs_actual")  # dags/examples/demo_marts_consumer.py
DAILY_MARTS = {
    "mart_wip": "snapshot_date",
    "mart_cycle_time": "work_date",
    "mart_lead_time": "work_date",
    "mart_plan_vs_actual": "work_date",
    "mart_equipment_utilization": "work_date",
    "mart_line_balance": "work_date",
}


def _run_events(run: LineageRun) -> dict[str, list[dict[str, Any]]]:
    with create_session() as session:
        rows = session.execute(
            select(AssetModel.uri, AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetEvent.source_dag_id == "demo")
            .where(AssetEvent.source_run_id == run.run_id)
        ).all()
    events: dict[str, list[dict[str, Any]]] = {}
    for uri, extra in rows:
        events.setdefault(uri, []).append(extra)
    return events


def test_every_raw_table_and_mart_has_one_event_with_what_was_written(
    lineage_run: LineageRun,
) -> None:
    tenant, summary = lineage_run.tenant, lineage_run.summary
    events = _run_events(lineage_run)
    marts = sorted(
        p.stem for p in (ROOT / "tenants/demo/dbt/models/marts").glob("*.sql")
    )
    raw_uris = {raw_asset(tenant, t.name).uri: t for t in tenant.tables}
    mart_uris = {mart_asset(tenant, m).uri: m for m in marts}
    # Exactly our stable URIs: one event each, no path-based duplicates (Cosmos).
    assert set(events) == set(raw_uris) | set(mart_uris)
    assert all(len(extras) == 1 for extras in events.values())

    catalog = open_catalog(tenant)
    for uri, table in raw_uris.items():
        (extra,) = events[uri]
        bad = len(summary.bad_lot_history_keys) if table.name == "lot_history" else 0
        assert extra["rows_in_table"] == summary.rows[table.name] - bad, table
        if table.mode == "full_refresh":  # the others load the day's window
            assert extra["rows_loaded"] == summary.rows[table.name], table
        raw = catalog.load_table((tenant.raw_namespace, table.name))
        snapshot = raw.current_snapshot()
        assert extra["snapshot_id"] == snapshot.snapshot_id, table
        assert extra["partition"] == f"_mozart_partition={DEMO_DAY}"
        assert extra["production_day"] == DEMO_DAY.isoformat()

    oracle = expected_marts(
        Path(tenant.source.database),
        DEMO_DAY,
        TENANT_TZ,
        exclude_keys={tuple(k) for k in summary.bad_lot_history_keys},
    )
    for mart, column in DAILY_MARTS.items():
        (extra,) = events[mart_asset(tenant, mart).uri]
        assert extra["rows"] == len(oracle[mart]), mart
        assert extra["partition"] == f"{column}={DEMO_DAY}"
        assert extra["production_day"] == DEMO_DAY.isoformat()


def test_consumer_dag_is_queued_by_the_scheduler_logic(
    lineage_run: LineageRun,
) -> None:
    tenant = lineage_run.tenant
    with create_session() as session:
        wanted = {
            session.scalar(
                select(AssetModel.id).where(AssetModel.uri == mart_asset(tenant, m).uri)
            )
            for m in CONSUMED
        }
        queued = set(
            session.scalars(
                select(AssetDagRunQueue.asset_id).where(
                    AssetDagRunQueue.target_dag_id == CONSUMER
                )
            )
        )
        assert queued == wanted
        # What the scheduler asks before creating asset-triggered runs.
        _, triggered = DagModel.dags_needing_dagruns(session)
        assert CONSUMER in triggered
