"""The DAG's own documentation, generated from tenant.yaml (never with secrets)."""

from __future__ import annotations

from mozart_etl.config.models import TenantConfig


def tenant_doc_md(tenant: TenantConfig) -> str:
    source = tenant.source
    where = source.conn_id and f"connection `{source.conn_id}`"
    where = where or (
        f"{source.host}:{source.port or ''}" if source.host else "local file"
    )
    rows = "\n".join(
        f"| `{t.name}` | {t.mode} | {', '.join(t.primary_key)} | {t.cursor or '—'} |"
        for t in tenant.tables
    )
    schedule = tenant.schedule
    return (
        f"# Tenant `{tenant.tenant_id}`\n\n{tenant.description}\n\n"
        f"- **Owner**: {tenant.owner}\n"
        f"- **Source**: {source.type}, {where}\n"
        f"- **Schedule**: `{schedule.effective_cron}` ({schedule.timezone}); "
        f"production day starts {schedule.day_start_hour:02d}:00 local\n"
        f"- **Raw**: `{tenant.raw_namespace}.*` · **marts**: `{tenant.namespace}.*` "
        f"({tenant.dbt.target})\n\n"
        "| table | mode | primary key | cursor |\n|---|---|---|---|\n"
        f"{rows}\n"
    )
