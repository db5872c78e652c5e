"""Raw tables and marts are Airflow Assets updated by the tasks that write
them (a raw table by its table's sync task, every mart by the marts layer's
dbt build), with what was written; the example consumer DAG is queued by
their events and, once the scheduler may create runs, runs on them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mozart_etl.demo.generate import DEMO_DAY, TENANT_TZ
from mozart_etl.factory.assets import mart_asset, raw_asset
from mozart_etl.load.catalog import open_catalog
from tests.browser.conftest import CONSUMER, ROOT, LiveDemo
from tests.e2e.oracle import expected_marts

CONSUMED = ("mart_wip", "mart_plan_vs_actual")  # dags/examples/demo_marts_consumer.py
DAILY_MARTS = {
    "mart_wip": "snapshot_date",
    "mart_cycle_time": "work_date",
    "mart_lead_time": "work_date",
    "mart_plan_vs_actual": "work_date",
    "mart_equipment_utilization": "work_date",
    "mart_line_balance": "work_date",
}


def _events(live: LiveDemo, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Each Asset's events from the run: their extras, with the task that
    emitted each (`_task`)."""
    rows = live.airflow.sql(
        "SELECT a.uri, e.source_task_id, e.extra FROM asset_event e "
        "JOIN asset a ON a.id = e.asset_id "
        "WHERE e.source_dag_id = 'demo' AND e.source_run_id = %s",
        (run_id,),
    )
    events: dict[str, list[dict[str, Any]]] = {}
    for uri, task_id, extra in rows:
        events.setdefault(uri, []).append({**extra, "_task": task_id})
    return events


def _oracle(live: LiveDemo) -> dict[str, list[dict[str, Any]]]:
    return expected_marts(
        Path(live.tenant.source.database),
        DEMO_DAY,
        TENANT_TZ,
        exclude_keys={tuple(k) for k in live.summary.bad_lot_history_keys},
    )


def test_every_raw_table_and_mart_has_one_event_with_what_was_written(
    live_demo: LiveDemo,
) -> None:
    tenant, summary = live_demo.tenant, live_demo.summary
    events = _events(live_demo, live_demo.finished_run())
    models = (ROOT / "tenants" / "demo" / "dbt" / "models" / "marts").glob("*.sql")
    raw = {raw_asset(tenant, t.name).uri: t for t in tenant.tables}
    marts = {mart_asset(tenant, path.stem).uri for path in models}
    # Exactly our stable URIs, one event each: no path-based duplicates (Cosmos).
    assert set(events) == set(raw) | marts
    assert all(len(extras) == 1 for extras in events.values())

    catalog = open_catalog(tenant)
    for uri, table in raw.items():
        (extra,) = events[uri]
        assert extra["_task"] == f"sync.{table.name}", uri
        # The first sync reads the whole table: one version per source row, a
        # quarantined row's being the version that closes it (counts in no mart).
        assert extra["rows_in_table"] == summary.rows[table.name], table.name
        assert extra["rows_loaded"] == summary.rows[table.name] - (
            len(summary.bad_lot_history_keys) if table.name == "lot_history" else 0
        ), table.name
        iceberg = catalog.load_table((tenant.raw_namespace, table.name))
        assert extra["snapshot_id"] == iceberg.current_snapshot().snapshot_id
        assert extra["partition"] == f"_mozart_partition={DEMO_DAY}"

    assert {events[uri][0]["_task"] for uri in marts} == {"dbt_marts"}
    oracle = _oracle(live_demo)
    for mart, column in DAILY_MARTS.items():
        (extra,) = events[mart_asset(tenant, mart).uri]
        assert extra["rows"] == len(oracle[mart]), mart
        assert extra["partition"] == f"{column}={DEMO_DAY}"
        assert extra["production_day"] == DEMO_DAY.isoformat()


def test_consumer_dag_is_queued_then_run_by_the_scheduler(live_demo: LiveDemo) -> None:
    live_demo.finished_run()
    airflow, tenant = live_demo.airflow, live_demo.tenant
    queued = airflow.sql(
        "SELECT a.uri FROM asset_dag_run_queue q JOIN asset a ON a.id = q.asset_id "
        "WHERE q.target_dag_id = %s",
        (CONSUMER,),
    )
    assert {uri for (uri,) in queued} == {mart_asset(tenant, m).uri for m in CONSUMED}

    # Let the scheduler create runs again (the demo paused: no cron run of it).
    airflow.set_paused("demo", True)
    airflow.process_env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "True"
    airflow.restart(["scheduler"])
    (run,) = airflow.wait_for_runs(CONSUMER, 1, timeout=300)
    assert (run["run_type"], run["state"]) == ("asset_triggered", "success")
    fresh = airflow.api(
        "GET",
        f"/dags/{CONSUMER}/dagRuns/{run['dag_run_id']}/taskInstances/"
        "read_fresh_marts/xcomEntries/return_value",
        params={"deserialize": True, "stringify": False},
    ).json()["value"]
    oracle = _oracle(live_demo)
    assert set(fresh) == {f"{tenant.namespace}.{m}" for m in CONSUMED}
    for mart in CONSUMED:
        extra = fresh[f"{tenant.namespace}.{mart}"]
        assert extra["rows"] == len(oracle[mart])
        assert extra["production_day"] == DEMO_DAY.isoformat()
