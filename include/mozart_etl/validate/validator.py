"""Run a table's checks over one extract with DuckDB; quarantine what they reject.

DuckDB reads the extract's Parquet files itself (`read_parquet`, in parallel,
only the columns a query needs; an S3 lake through the lake's own filesystem),
and each row is known by its position in the extract (`file_index`,
`file_row_number`). `unique` checks first find their duplicated keys (an
aggregate over a hash of the key columns, then an exact one over the few
candidates), rules across rows (`sequence`) the keys of their broken rows. Then
one query evaluates every row check and returns only the rows that break one:
their positions and flags. Python counts them and copies the rows an error
check rejects to quarantine.parquet, in the extract's order and types, with
their position and the rules they break. Table-level rules (row_count,
freshness) are one aggregate query. DuckDB runs under a memory limit with a
private spill directory; peak memory is measured in bench/bench_validate.py.

Accepted rows are never copied: they are the extract's files less the
quarantined positions (`accepted_rows`, read by the load and transforms).
Copying them took 43 % of validating the 1M-row bench extract, and streaming
the extract through Arrow into DuckDB batch by batch as much again. Results
come back from DuckDB as Python values or Arrow, never through pyarrow's NumPy
conversions: those import pandas, 0.15-0.2 s of a fresh task process.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from itertools import accumulate

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from fsspec.implementations.arrow import ArrowFSWrapper
from pydantic import BaseModel, ConfigDict, computed_field

from mozart_etl.config.constants import Severity
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.calendar import production_day
from mozart_etl.core.errors import ConfigError, ValidationFailed
from mozart_etl.core.identifiers import quote_identifier
from mozart_etl.core.lake import ExtractManifest, Lake
from mozart_etl.core.parquet import ParquetRows
from mozart_etl.extract.types import arrow_schema
from mozart_etl.validate import evaluate
from mozart_etl.validate.drift import DriftChange, detect_drift
from mozart_etl.validate.rules.base import RuleContext
from mozart_etl.validate.rules.checks import (
    RowCheck,
    RowRuleResult,
    RuleResult,
    TableAggregate,
)
from mozart_etl.validate.rules.registry import compile_rules

log = logging.getLogger(__name__)

FAILED_RULES_COLUMN = "_mozart_failed_rules"
ROW_COLUMN = "_mozart_row"
"""Quarantine column: the row's position in the extract (0-based, across its
files in order); the accepted rows are the extract less these positions."""
MEMORY_LIMIT = os.environ.get("MOZART_VALIDATE_MEMORY_LIMIT", "128MB")
"""DuckDB's memory limit for one validation; beyond it, DuckDB spills to disk.

The only state that grows with the extract is the primary-key aggregate; capped
at 128MB it spills instead: peak RSS 399 MB for both 1M and 3M rows, in the same
time (512MB: 399 → 576 MB; 64MB: flat but twice as slow). An extract holding
a value near the limit raises it for that validation (`_memory_limit`)."""
CHUNKS_IN_MEMORY = 4
"""DuckDB holds a column chunk being read, its decoded vector and a copy in
the join's or sort's buffers: the limit must fit a few of the largest
(a 64 MB text value failed at 128MB: "failed to allocate 128.0 MiB")."""
COMPRESSION = "lz4"
"""quarantine.parquet is small and read rarely: lz4 writes fastest."""
QUARANTINE_BATCH_ROWS = 65_536
POSITION_COLUMNS = ("file_index", "file_row_number")
"""DuckDB's virtual columns that number the extract's rows; a real column of
the same name would hide them."""
_LAKE_PROTOCOL = "mozartlake"


class ValidationReport(BaseModel):
    """Per-rule counts, schema drift and where accepted and quarantined rows went."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    table: str
    production_day: date
    extract_id: str
    rows: int
    accepted: int
    quarantined: int
    rules: list[RuleResult]
    """Each rule's result in rule order, tagged by `scope` (`RowRuleResult`,
    `TableRuleResult`)."""
    drift: list[DriftChange] = []
    accepted_path: str
    """The extract's folder: its files less the quarantined rows are the
    accepted rows (`accepted_rows`); empty when validation failed (nothing may
    be loaded)."""
    accepted_files: list[str]
    """The Parquet files the load (or transform) reads, less the rows at the
    quarantine's `_mozart_row` positions."""
    quarantine_path: str

    @property
    def blocking(self) -> list[RuleResult]:
        return [
            r for r in self.rules if r.severity == Severity.ERROR and not r.tolerated
        ]

    @property
    def blocking_drift(self) -> list[DriftChange]:
        return [change for change in self.drift if change.blocking]

    @property
    def passed(self) -> bool:
        return not (self.blocking or self.blocking_drift)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failed_by_rule(self) -> dict[str, int]:
        """Each rule's count, for the XCom and the report (ignored when read back)."""
        return {rule.name: rule.failed for rule in self.rules}


def validate_extract(
    tenant: TenantConfig, table: TableConfig, manifest: ExtractManifest
) -> ValidationReport:
    """Check, quarantine and report; raise ValidationFailed on blocking drift or
    past an error rule's tolerance.

    The report and the quarantined rows are written before raising, so a failed
    run can be inspected; the raw table is untouched because the load never
    starts.
    """
    lake = Lake(tenant)
    extract = ParquetRows(lake.fs, [f.path for f in manifest.files])
    schema = extract.schema
    checks = [
        check
        for check in compile_rules(table, _context(tenant, table, manifest))
        if check.runs_on(schema)
    ]
    row_checks: list[RowCheck] = [
        c for c in checks if not isinstance(c, TableAggregate)
    ]
    table_checks = [c for c in checks if isinstance(c, TableAggregate)]
    rows = extract.count_rows()
    folder = f"{manifest.folder}/validated"
    lake.make_dirs(folder)
    quarantine_path = f"{folder}/quarantine.parquet"
    drift = detect_drift(lake, table, manifest, schema)
    _refuse_hidden_positions(tenant, table, schema)
    with _duckdb(lake, _memory_limit(extract)) as con:
        source = _read_parquet(lake, extract.paths)
        con.execute(f"CREATE TEMP VIEW extract_rows AS SELECT * FROM {source}")
        evaluate.probe(con, checks, tenant=tenant.tenant_id, table=table.name)
        flags = evaluate.row_flags(con, row_checks)
        evaluate.flag_rows(
            con,
            source,
            flags,
            position=_position(_file_offsets(extract)),
            position_columns=POSITION_COLUMNS,
        )
        evaluated = evaluate.count_rows(con, flags, rows)
        quarantined = evaluate.reject(
            con,
            flags,
            keep=(*POSITION_COLUMNS, quote_identifier(ROW_COLUMN)),
            rules_column=FAILED_RULES_COLUMN,
        )
        _write_quarantine(con, lake, source, schema, quarantine_path, rows=quarantined)
        evaluated += evaluate.aggregate(con, table_checks)
    report = ValidationReport(
        tenant_id=tenant.tenant_id,
        table=table.name,
        production_day=manifest.production_day,
        extract_id=manifest.extract_id,
        rows=rows,
        accepted=rows - quarantined,
        quarantined=quarantined,
        rules=evaluate.in_rule_order(checks, evaluated),
        drift=drift,
        accepted_path=manifest.folder,
        accepted_files=list(extract.paths),
        quarantine_path=quarantine_path,
    )
    if not report.passed:  # a failed validation loads nothing: no accepted rows
        report = report.model_copy(update={"accepted_path": "", "accepted_files": []})
    lake.write_json(f"{folder}/report.json", report.model_dump_json(indent=2))
    _log_report(report)
    if not report.passed:
        raise ValidationFailed(
            _failure_message(report, lake),
            tenant=tenant.tenant_id,
            table=table.name,
            column=_only(
                [c.column for c in report.blocking_drift]
                + [
                    r.column
                    for r in report.blocking
                    if isinstance(r, RowRuleResult) and r.column
                ]
            ),
            rule=_only([r.name for r in report.blocking]),
        )
    return report


def _context(
    tenant: TenantConfig, table: TableConfig, manifest: ExtractManifest
) -> RuleContext:
    window_end = manifest.window_end
    if window_end is None:
        schedule = tenant.schedule
        day = production_day(
            manifest.production_day, schedule.timezone, schedule.day_start_hour
        )
        window_end = day.end
    return RuleContext(table=table, window_end=window_end)


def _refuse_hidden_positions(
    tenant: TenantConfig, table: TableConfig, schema: pa.Schema
) -> None:
    for name in POSITION_COLUMNS:
        if name in schema.names:
            raise ConfigError(
                f"column {name!r} hides the row positions validation needs; "
                "rename it in the table's query (`AS`)",
                tenant=tenant.tenant_id,
                table=table.name,
                column=name,
            )


class _LakeFiles(ArrowFSWrapper):
    """The lake's pyarrow filesystem as fsspec, under a protocol of its own:
    DuckDB reads `s3://` itself only through its httpfs extension, which it
    downloads at first use (and these machines are offline)."""

    protocol = _LAKE_PROTOCOL

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        # fsspec's own drops an S3 path's bucket, taking it for a host name.
        return path.removeprefix(f"{_LAKE_PROTOCOL}://")


def _memory_limit(extract: ParquetRows) -> str:
    """MEMORY_LIMIT, or room for a few of the extract's largest column chunks
    when that is more: memory stays bounded by the largest value."""
    needed = CHUNKS_IN_MEMORY * extract.largest_column_chunk()
    if needed <= _bytes(MEMORY_LIMIT):
        return MEMORY_LIMIT
    log.info(
        "validation memory limit raised to %d MB: the extract holds a column "
        "chunk of %d MB",
        needed >> 20,
        extract.largest_column_chunk() >> 20,
    )
    return f"{needed >> 20}MB"


def _bytes(limit: str) -> int:
    """DuckDB's size text (`128MB`, `1GB`, `512KiB`) in bytes."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)I?B?\s*", limit.upper())
    if found is None:
        raise ConfigError(f"MOZART_VALIDATE_MEMORY_LIMIT {limit!r} is not a size")
    number, unit = found.groups()
    return int(float(number) * 1024 ** "_KMGT".index(unit or "_"))


@contextmanager
def _duckdb(
    lake: Lake, memory_limit: str = MEMORY_LIMIT
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A private DuckDB: memory-capped, spilling to a temp folder, order-free."""
    with tempfile.TemporaryDirectory(prefix="mozart-validate-") as spill:
        con = duckdb.connect(
            config={
                "memory_limit": memory_limit,
                "temp_directory": spill,
                "preserve_insertion_order": False,
            }
        )
        try:
            # UTC, so rules that mix naive and zoned times (casts, date parts in
            # expressions) read naive time as UTC wherever the worker runs.
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET enable_progress_bar = false")
            if not isinstance(lake.fs, pafs.LocalFileSystem):
                con.register_filesystem(_LakeFiles(lake.fs))
            yield con
        finally:
            con.close()


def _read_parquet(lake: Lake, paths: list[str]) -> str:
    """The `read_parquet(…)` of the extract's files (paths are the lake's own, so
    inlined as literals: views cannot take parameters)."""
    local = isinstance(lake.fs, pafs.LocalFileSystem)
    named = [path if local else f"{_LAKE_PROTOCOL}://{path}" for path in paths]
    files = ", ".join(_literal(path) for path in named)
    # Not hive partitioning: the lake's `day=…/extract=…` folders would add
    # columns (and hide real ones of the same name).
    return f"read_parquet([{files}], hive_partitioning = false)"


def _file_offsets(extract: ParquetRows) -> list[int]:
    """Each file's first row's position in the extract."""
    return list(accumulate(extract.file_rows()[:-1], initial=0))


def _position(offsets: list[int]) -> str:
    """A row's position in the extract: its file's first row's position (by
    DuckDB's file_index; SQL lists count from 1) plus its row number in the
    file."""
    first = f"CAST({offsets} AS BIGINT[])[CAST(file_index AS BIGINT) + 1]"
    return f"{first} + file_row_number AS {quote_identifier(ROW_COLUMN)}"


def _write_quarantine(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    source: str,
    schema: pa.Schema,
    path: str,
    *,
    rows: int,
) -> None:
    """The `rows` rejected rows in the extract's types, in its order, tagged
    with the rules they break and their position (an empty file when none,
    written without reading the extract again).

    DuckDB fetches them: its join on (file, row number) reads only the row
    groups, even vectors, that hold them (1 row of a 1M-row group: 0.03 s;
    pyarrow reads the whole group: 0.3 s)."""
    tagged = schema.append(pa.field(FAILED_RULES_COLUMN, pa.list_(pa.string()))).append(
        pa.field(ROW_COLUMN, pa.int64())
    )
    if not rows:
        with pq.ParquetWriter(
            path, tagged, filesystem=lake.fs, compression=COMPRESSION
        ):
            return
    on = " AND ".join(f"r.{name} = q.{name}" for name in POSITION_COLUMNS)
    columns = [f"r.{quote_identifier(name)}" for name in schema.names]
    tags = [
        f"q.{quote_identifier(FAILED_RULES_COLUMN)}",
        f"q.{quote_identifier(ROW_COLUMN)}",
    ]
    reader = con.sql(
        f"SELECT {', '.join([*columns, *tags])} FROM {source} AS r "
        f"JOIN _mozart_rejected AS q ON {on} ORDER BY q.{quote_identifier(ROW_COLUMN)}"
    ).to_arrow_reader(QUARANTINE_BATCH_ROWS)
    with pq.ParquetWriter(
        path, tagged, filesystem=lake.fs, compression=COMPRESSION
    ) as bad:
        for batch in reader:
            bad.write_batch(_conform(batch, tagged))


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """DuckDB's Arrow types as the extract's (they agree for every type the
    extract writes; a cast that would lose a value raises)."""
    if batch.schema.equals(schema):
        return batch
    columns = [
        column if column.type == field.type else column.cast(field.type)
        for column, field in zip(batch.columns, schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _failure_message(report: ValidationReport, lake: Lake) -> str:
    parts: list[str] = []
    if report.blocking_drift:
        changes = "; ".join(change.describe() for change in report.blocking_drift)
        parts.append(f"schema drift ({changes})")
    if report.blocking:
        summary = ", ".join(rule.summary() for rule in report.blocking)
        parts.append(
            f"{len(report.blocking)} rule(s) failed beyond tolerance ({summary}) "
            f"of {report.rows} rows"
        )
    return (
        f"{'; '.join(parts)}; nothing was loaded. "
        f"Rejected rows: {lake.uri(report.quarantine_path)}"
    )


def _only(names: list[str]) -> str | None:
    return names[0] if len(names) == 1 else None


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
                "  rule %s (%s, %s): %s%s",
                rule.name,
                rule.kind,
                rule.severity,
                rule.summary(),
                "" if rule.tolerated else " — beyond tolerance",
            )


def quarantined_rows(
    lake: Lake, report: ValidationReport, table: TableConfig
) -> pa.Table | None:
    """The rows this validation quarantined, with the extract's columns and
    types (None when it quarantined none)."""
    if not report.quarantined:
        return None
    rows = pq.read_table(
        report.quarantine_path, columns=table.column_names, filesystem=lake.fs
    )
    return rows.cast(arrow_schema(table))


def accepted_rows(lake: Lake, report: ValidationReport) -> ParquetRows:
    """The accepted rows, unread: the extract's files less the quarantined rows
    (the load takes them slice by slice)."""
    excluded = None
    if report.quarantined and report.accepted_files:
        quarantine = pq.read_table(
            report.quarantine_path, columns=[ROW_COLUMN], filesystem=lake.fs
        )
        excluded = quarantine.column(ROW_COLUMN).to_numpy()
    return ParquetRows(lake.fs, list(report.accepted_files), excluded)


def read_accepted(lake: Lake, report: ValidationReport) -> pa.Table:
    return accepted_rows(lake, report).to_table()
