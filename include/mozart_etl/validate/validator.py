"""Run a table's checks over one extract with DuckDB; split accepted / quarantined.

DuckDB evaluates every rule in one pass over the extract's Parquet files (read
through pyarrow's filesystem, so the same code serves a local lake and S3) and
spills to disk when a partition outgrows memory.
"""

from __future__ import annotations

import logging
from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from mozart_etl.config.constants import Severity
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.errors import ValidationFailed
from mozart_etl.lake import ExtractManifest, Lake
from mozart_etl.validate.rules import Check, compile_rules
from mozart_etl.validate.rules.base import quote

log = logging.getLogger(__name__)

FAILED_RULES_COLUMN = "_mozart_failed_rules"


class RuleResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    kind: str
    severity: Severity
    failed: int
    tolerated: bool


class ValidationReport(BaseModel):
    """Per-rule counts and where accepted and quarantined rows went."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    table: str
    production_day: date
    extract_id: str
    rows: int
    accepted: int
    quarantined: int
    rules: list[RuleResult]
    accepted_path: str
    quarantine_path: str

    @property
    def blocking(self) -> list[RuleResult]:
        return [
            r for r in self.rules if r.severity == Severity.ERROR and not r.tolerated
        ]


def validate_extract(
    tenant: TenantConfig, table: TableConfig, manifest: ExtractManifest
) -> ValidationReport:
    """Check, split and report; raise ValidationFailed past an error rule's tolerance.

    The report and quarantine are written before raising, so a failed run can be
    inspected; the raw table is untouched because the load never starts.
    """
    lake = Lake(tenant)
    checks = compile_rules(table)
    folder = f"{manifest.folder}/validated"
    lake.make_dirs(folder)
    con = duckdb.connect()
    try:
        # UTC, so timestamptz columns come back as timestamp[us, tz=UTC] as they
        # were extracted, not labelled with the worker's zone (Iceberg rejects it).
        con.execute("SET TimeZone = 'UTC'")
        dataset = ds.dataset([f.path for f in manifest.files], filesystem=lake.fs)
        con.register("extract_rows", dataset)
        _flag_rows(con, table, checks)
        rows, failed = _count(con, checks)
        accepted_path = f"{folder}/accepted.parquet"
        quarantine_path = f"{folder}/quarantine.parquet"
        error_flags = _any_flag(checks, Severity.ERROR)
        accepted = _write(con, lake, accepted_path, f"NOT ({error_flags})", checks)
        quarantined = _write(con, lake, quarantine_path, error_flags, checks, tag=True)
    finally:
        con.close()
    report = ValidationReport(
        tenant_id=tenant.tenant_id,
        table=table.name,
        production_day=manifest.production_day,
        extract_id=manifest.extract_id,
        rows=rows,
        accepted=accepted,
        quarantined=quarantined,
        rules=[
            RuleResult(
                name=c.name,
                kind=c.kind,
                severity=c.severity,
                failed=n,
                tolerated=c.tolerated(n, rows),
            )
            for c, n in zip(checks, failed, strict=True)
        ],
        accepted_path=accepted_path,
        quarantine_path=quarantine_path,
    )
    lake.write_json(f"{folder}/report.json", report.model_dump_json(indent=2))
    _log_report(report)
    if report.blocking:
        summary = ", ".join(f"{r.name}: {r.failed} row(s)" for r in report.blocking)
        raise ValidationFailed(
            f"{len(report.blocking)} rule(s) failed beyond tolerance ({summary}) of "
            f"{rows} rows; nothing was loaded. "
            f"Rejected rows: {lake.uri(quarantine_path)}",
            tenant=tenant.tenant_id,
            table=table.name,
        )
    return report


def _flag(index: int) -> str:
    return quote(f"_mozart_check_{index}")


def _any_flag(checks: list[Check], severity: Severity) -> str:
    """Any flag of a check of `severity`; flags are numbered over all `checks`."""
    flags = [_flag(i) for i, c in enumerate(checks) if c.severity == severity]
    return " OR ".join(flags) if flags else "FALSE"


def _flag_rows(
    con: duckdb.DuckDBPyConnection, table: TableConfig, checks: list[Check]
) -> None:
    flags = [
        f"coalesce(({check.sql}), FALSE) AS {_flag(i)}"
        for i, check in enumerate(checks)
    ]
    params = [value for check in checks for value in check.params]
    columns = ", ".join(quote(name) for name in table.column_names)
    select = ", ".join([columns, *flags])
    create = f"CREATE TEMP TABLE checked AS SELECT {select} FROM extract_rows"
    con.execute(create, params).fetchall()


def _count(
    con: duckdb.DuckDBPyConnection, checks: list[Check]
) -> tuple[int, list[int]]:
    sums = [f"count(*) FILTER (WHERE {_flag(i)})" for i, _ in enumerate(checks)]
    (row,) = con.execute(
        f"SELECT {', '.join(['count(*)', *sums])} FROM checked"
    ).fetchall()
    return int(row[0]), [int(n) for n in row[1:]]


def _write(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    path: str,
    where: str,
    checks: list[Check],
    *,
    tag: bool = False,
) -> int:
    """Stream the selected rows to Parquet on the lake's filesystem; count them."""
    columns = [f"* EXCLUDE ({', '.join(_flag(i) for i, _ in enumerate(checks))})"]
    if not checks:
        columns = ["*"]
    if tag:
        names = [
            f"CASE WHEN {_flag(i)} THEN {_literal(c.name)} END"
            for i, c in enumerate(checks)
        ]
        failed_rules = f"list_filter([{', '.join(names)}], lambda x: x IS NOT NULL)"
        columns.append(f"{failed_rules} AS {quote(FAILED_RULES_COLUMN)}")
    query = f"SELECT {', '.join(columns)} FROM checked WHERE {where}"
    reader = con.sql(query).to_arrow_reader()
    rows = 0
    with pq.ParquetWriter(
        path, reader.schema, filesystem=lake.fs, compression="zstd"
    ) as out:
        for batch in reader:
            out.write_batch(batch)
            rows += batch.num_rows
    return rows


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _log_report(report: ValidationReport) -> None:
    log.info(
        "validated %s.%s: %d rows, %d accepted, %d quarantined",
        report.tenant_id,
        report.table,
        report.rows,
        report.accepted,
        report.quarantined,
    )
    for rule in report.rules:
        if rule.failed:
            log.warning(
                "  rule %s (%s, %s): %d failing row(s)%s",
                rule.name,
                rule.kind,
                rule.severity,
                rule.failed,
                "" if rule.tolerated else " — beyond tolerance",
            )


def read_accepted(lake: Lake, report: ValidationReport) -> pa.Table:
    return pq.read_table(report.accepted_path, filesystem=lake.fs)
