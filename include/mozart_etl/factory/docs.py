"""The DAG's and its tasks' own documentation, generated from tenant.yaml (never
with secrets): what the UI's "Docs" panels show."""

from __future__ import annotations

from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.factory.assets import mart_asset, raw_asset


def _where(tenant: TenantConfig) -> str:
    """Host and port, an Airflow connection's name, or 'local file': no user,
    no password, no file path."""
    source = tenant.source
    if source.conn_id:
        return f"connection `{source.conn_id}`"
    if source.host:
        return f"{source.host}:{source.port or ''}"
    return "local file"


def tenant_doc_md(tenant: TenantConfig) -> str:
    source = tenant.source
    rows = "\n".join(
        f"| `{t.name}` | {t.mode} | {', '.join(t.primary_key)} | {t.cursor or '—'} "
        f"| `{raw_asset(tenant, t.name).uri}` |"
        for t in tenant.tables
    )
    schedule = tenant.schedule
    alerting = tenant.alerting
    alerts = ", ".join(alerting.emails) if alerting.emails else "none (UI only)"
    pause = alerting.max_consecutive_failed_runs
    example = mart_asset(tenant, "mart_wip")
    return (
        f"# Tenant `{tenant.tenant_id}`\n\n{tenant.description}\n\n"
        f"- **Owner**: {tenant.owner}\n"
        f"- **Source**: {source.type}, {_where(tenant)}\n"
        f"- **Schedule**: `{schedule.effective_cron}` ({schedule.timezone}); "
        f"production day starts {schedule.day_start_hour:02d}:00 local; "
        f"{schedule.retries} retries every {schedule.retry_delay_minutes:g} min\n"
        f"- **Alerts**: {alerts}"
        + (f"; pauses after {pause} failed runs in a row" if pause else "")
        + "\n"
        f"- **Raw**: `{tenant.raw_namespace}.*` · **marts**: `{tenant.namespace}.*` "
        f"({tenant.dbt.target})\n"
        f"- **Run a day by hand**: trigger with "
        f'`{{"production_day": "YYYY-MM-DD"}}`\n'
        f"- **Run ledger**: `mozart report {tenant.tenant_id} --date YYYY-MM-DD`\n\n"
        "| table | mode | primary key | cursor | Asset |\n|---|---|---|---|---|\n"
        f"{rows}\n\n"
        "Each mart is an Asset too (e.g. "
        f"`{example.name}` = `{example.uri}`): schedule a DAG on it to start when "
        "the mart is fresh (see `dags/examples/demo_marts_consumer.py`).\n"
    )


STAGE_DOCS = {
    "extract": "Reads {source} into a new immutable Parquet folder of the lake "
    "(the manifest, written last, makes it visible). {window}",
    "validate": "Checks the extract against {rules} rule(s) and the declared "
    "columns in DuckDB; failing rows go to quarantine, a flood fails the task "
    "naming the rule. Its report is this task's XCom.",
    "transform": "Runs the table's Python transform `{transform}` over the "
    "accepted rows.",
    "load": "Writes the accepted rows to `{raw}` in one Iceberg snapshot "
    "({mode}), records the run in the ledger and updates the Asset `{uri}` "
    "(rows, snapshot id, partition). Its XCom holds the load result and the "
    "ledger row.",
    "sync": "Syncs {source} into `{raw}` ({mode}), stage by stage, each "
    "logged: **extract** (what raw lacks, into an immutable Parquet folder of "
    "the lake), **validate** ({rules} rule(s) and the declared columns; failing "
    "rows go to quarantine, a flood fails the task naming the rule), "
    "**load** (the new versions in one Iceberg snapshot; ledger row; Asset "
    "`{uri}`), **reconcile** (source against raw). The XCom holds each "
    "stage's result. A retry after a complete extract resumes from it: the "
    "source is not read twice.",
}


def stage_doc_md(tenant: TenantConfig, table: TableConfig, stage: str) -> str:
    """The task's Docs panel: what this stage does to this table."""
    ref = table.source
    source = f"`{ref.table}`" if ref.table else "the configured query"
    if table.cursor is None:
        window = "Reads the whole table every run."
    else:
        window = (
            f"Reads the production day's window by cursor `{table.cursor}` "
            f"(lookback {table.lookback_hours:g} h)."
        )
    asset = raw_asset(tenant, table.name)
    text = STAGE_DOCS[stage].format(
        source=f"{source} ({tenant.source.type}, {_where(tenant)})",
        window=window,
        rules=len(table.rules),
        transform=table.transform,
        raw=f"{tenant.raw_namespace}.{table.name}",
        mode=table.mode,
        uri=asset.uri,
    )
    return f"### `{table.name}` · {stage}\n\n{text}\n"
