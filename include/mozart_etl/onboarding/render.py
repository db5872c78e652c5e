"""`mozart check`'s report as text: one block per table, blockers first."""

from __future__ import annotations

from mozart_etl.onboarding.check import Severity, TableCheck, TenantCheck


def render_check(result: TenantCheck) -> str:
    lines = [f"mozart check {result.tenant_id}: source {result.source}"]
    for table in result.tables:
        lines += _table_lines(table)
    blockers = sum(len(table.blockers) for table in result.tables)
    verdict = "OK: no blockers" if result.ok else f"{blockers} BLOCKER(S)"
    lines.append(f"{verdict} in {len(result.tables)} table(s)")
    return "\n".join(lines) + "\n"


def _table_lines(table: TableCheck) -> list[str]:
    state = "reachable" if table.reachable else "NOT reachable"
    lines = [f"- {table.table}: {state}"]
    if table.rows is not None:
        lines.append(
            f"    rows {table.rows:,}; daily volume ≈ {table.daily_rows or 0:,.0f} rows"
        )
        lines.append(f"    checked on: {table.scope}")
        lines.append(
            f"    primary key duplicates: {table.duplicate_keys}; "
            f"cursor NULLs: {_or_dash(table.null_cursors)}; "
            f"late rows: {_or_dash(table.late_rows)}"
            + (
                f" (max {table.max_lateness_hours:.1f} h)"
                if table.max_lateness_hours
                else ""
            )
        )
    if table.probe_rows_per_second:
        lines.append(
            f"    extract estimate: first load ≈ {table.first_extract_seconds:.2f} s, "
            f"daily ≈ {table.daily_extract_seconds:.2f} s "
            f"(probe fetch {table.probe_rows_per_second:,.0f} rows/s)"
        )
    order = {Severity.BLOCKER: 0, Severity.WARNING: 1}
    for finding in sorted(table.findings, key=lambda f: order[f.severity]):
        label = "BLOCKER" if finding.severity == Severity.BLOCKER else "warning"
        lines.append(f"    {label} {table.table}: {finding.message}")
    return lines


def _or_dash(value: object) -> str:
    return "-" if value is None else f"{value:,}"
