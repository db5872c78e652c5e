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

from mozart_etl.calendar import production_day
from mozart_etl.config.constants import Severity
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.errors import ConfigError, ValidationFailed
from mozart_etl.extract.types import arrow_schema
from mozart_etl.lake import ExtractManifest, Lake
from mozart_etl.parquet import ParquetRows
from mozart_etl.validate.drift import DriftChange, detect_drift
from mozart_etl.validate.rules import Check, RuleContext, RuleScope, compile_rules
from mozart_etl.validate.rules.base import quote
from mozart_etl.validate.rules.decimal_fits import KIND as DECIMAL_FITS

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


class RuleResult(BaseModel):
    """One rule's outcome: failing rows (row rules) or 1/0 (table rules)."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: str
    severity: Severity
    failed: int
    tolerated: bool
    scope: RuleScope = RuleScope.ROW
    detail: str | None = None
    """TABLE scope: observed against expected; ROW scope: what a broken row
    holds, when the rule says (`decimal_fits`)."""
    column: str | None = None
    """The one column the rule is about, when it is about one."""

    def summary(self) -> str:
        if self.scope == RuleScope.TABLE:
            return f"{self.name}: {self.detail}"
        if self.detail:
            return f"{self.name}: {self.failed} row(s) with {self.detail}"
        return f"{self.name}: {self.failed} row(s)"


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
        if _runs_on(check, schema)
    ]
    row_checks = [c for c in checks if c.scope == RuleScope.ROW]
    table_checks = [c for c in checks if c.scope == RuleScope.TABLE]
    folder = f"{manifest.folder}/validated"
    lake.make_dirs(folder)
    quarantine_path = f"{folder}/quarantine.parquet"
    drift = detect_drift(lake, table, manifest, schema)
    _refuse_hidden_positions(tenant, table, schema)
    with _duckdb(lake, _memory_limit(extract)) as con:
        source = _read_parquet(lake, extract.paths)
        con.execute(f"CREATE TEMP VIEW extract_rows AS SELECT * FROM {source}")
        _check_sql(con, tenant, table, checks)
        _flag_rows(con, source, row_checks, _file_offsets(extract))
        split = _split(con, row_checks)
        _write_quarantine(
            con, lake, source, schema, quarantine_path, rows=split.quarantined
        )
        rows, observed = _table_checks(con, table_checks)
    report = ValidationReport(
        tenant_id=tenant.tenant_id,
        table=table.name,
        production_day=manifest.production_day,
        extract_id=manifest.extract_id,
        rows=rows,
        accepted=rows - split.quarantined,
        quarantined=split.quarantined,
        rules=_results(checks, split, rows, observed),
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
                + [r.column for r in report.blocking if r.column]
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


def _runs_on(check: Check, schema: pa.Schema) -> bool:
    """An implicit `decimal_fits` check needs its column as a decimal in the
    extract; a column dropped or retyped there is drift, which blocks and
    names it (a check that cannot bind would stop validation as a config
    error instead)."""
    if check.kind != DECIMAL_FITS or check.column is None:
        return True
    names = schema.names
    return check.column in names and pa.types.is_decimal(
        schema.field(check.column).type
    )


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


def _check_sql(
    con: duckdb.DuckDBPyConnection,
    tenant: TenantConfig,
    table: TableConfig,
    checks: list[Check],
) -> None:
    """Bind each rule alone, so a broken expression or pattern names its rule."""
    for check in checks:
        if not check.sql:
            continue
        try:
            con.execute(
                f"SELECT ({check.sql}) FROM extract_rows LIMIT 0", check.params
            ).fetchall()
        except duckdb.Error as exc:
            raise ConfigError(
                f"rule {check.name} ({check.kind}) does not run on the extract: {exc}",
                tenant=tenant.tenant_id,
                table=table.name,
                rule=check.name,
            ) from exc


class _Split(BaseModel):
    model_config = ConfigDict(frozen=True)

    failed: list[int]
    """Each row check's count of broken rows."""
    quarantined: int
    """Rows an error check breaks (temp table `_mozart_rejected`)."""


def _flag(index: int) -> str:
    return quote(f"_mozart_check_{index}")


def _keyed_checks(con: duckdb.DuckDBPyConnection, checks: list[Check]) -> set[int]:
    """For each check keyed on rows (`unique`, `sequence`), the keys of its
    broken rows as temp table `_mozart_dup_<i>`; the checks that have any.

    `unique`: two scans of the key columns only: an aggregate over a 64-bit
    hash of the key finds the candidate hashes (8 bytes per distinct key, not
    the key itself), then an exact aggregate over the few rows with those hashes
    keeps the keys that really repeat. NULLs hash and group alike (NULL = NULL).
    """
    found = set()
    for i, check in enumerate(checks):
        if check.flag_rows_sql:
            query = check.flag_rows_sql
        elif check.duplicate_key:
            keys = ", ".join(quote(column) for column in check.duplicate_key)
            con.execute(
                f"CREATE TEMP TABLE _mozart_hash_{i} AS SELECT hash({keys}) AS h "
                "FROM extract_rows GROUP BY h HAVING count(*) > 1"
            )
            query = (
                f"SELECT {keys} FROM extract_rows "
                f"WHERE hash({keys}) IN (SELECT h FROM _mozart_hash_{i}) "
                f"GROUP BY {keys} HAVING count(*) > 1"
            )
        else:
            continue
        con.execute(f"CREATE TEMP TABLE _mozart_dup_{i} AS {query}")
        ((count,),) = con.execute(f"SELECT count(*) FROM _mozart_dup_{i}").fetchall()
        if count:
            found.add(i)
    return found


def _flag_rows(
    con: duckdb.DuckDBPyConnection,
    source: str,
    checks: list[Check],
    offsets: list[int],
) -> None:
    """The rows that break any row check, as temp table `_mozart_flagged`: their
    position in the extract and a flag per check, from one scan of the extract."""
    duplicated = _keyed_checks(con, checks)
    flags: list[str] = []
    for i, check in enumerate(checks):
        keys = check.duplicate_key or check.flag_key
        if not keys:
            flags.append(f"coalesce(({check.sql}), FALSE) AS {_flag(i)}")
        elif i in duplicated:
            match = " AND ".join(
                f"d.{quote(c)} IS NOT DISTINCT FROM r.{quote(c)}" for c in keys
            )
            flags.append(
                f"EXISTS (SELECT 1 FROM _mozart_dup_{i} AS d WHERE {match}) "
                f"AS {_flag(i)}"
            )
        else:
            flags.append(f"FALSE AS {_flag(i)}")
    params = [
        value
        for check in checks
        if not (check.duplicate_key or check.flag_key)
        for value in check.params
    ]
    # A row's position: its file's first row's position (by DuckDB's file_index;
    # SQL lists count from 1) plus its row number in the file.
    first = f"CAST({offsets} AS BIGINT[])[CAST(file_index AS BIGINT) + 1]"
    position = f"{first} + file_row_number AS {quote(ROW_COLUMN)}"
    any_flag = " OR ".join(_flag(i) for i, _ in enumerate(checks)) or "FALSE"
    columns = [*POSITION_COLUMNS, position, *flags]
    inner = f"SELECT {', '.join(columns)} FROM {source} AS r"
    con.execute(
        f"CREATE TEMP TABLE _mozart_flagged AS SELECT * FROM ({inner}) "
        f"WHERE {any_flag}",
        params,
    )


def _file_offsets(extract: ParquetRows) -> list[int]:
    """Each file's first row's position in the extract."""
    return list(accumulate(extract.file_rows()[:-1], initial=0))


def _split(con: duckdb.DuckDBPyConnection, checks: list[Check]) -> _Split:
    """Each check's count of broken rows; the rows an error check breaks, with
    the names of those checks, as temp table `_mozart_rejected`."""
    counts = [f"count(*) FILTER (WHERE {_flag(i)})" for i, _ in enumerate(checks)]
    ((_, *failed),) = con.execute(
        f"SELECT {', '.join(['0', *counts])} FROM _mozart_flagged"
    ).fetchall()
    errors = [i for i, c in enumerate(checks) if c.severity == Severity.ERROR]
    names = ", ".join(f"CASE WHEN {_flag(i)} THEN ? END" for i in errors)
    rejecting = " OR ".join(_flag(i) for i in errors) or "FALSE"
    con.execute(
        "CREATE TEMP TABLE _mozart_rejected AS SELECT "
        f"{', '.join(POSITION_COLUMNS)}, {quote(ROW_COLUMN)}, "
        f"list_filter([{names}]::VARCHAR[], lambda name: name IS NOT NULL) "
        f"AS {quote(FAILED_RULES_COLUMN)} FROM _mozart_flagged WHERE {rejecting}",
        [checks[i].name for i in errors],
    )
    ((quarantined,),) = con.execute("SELECT count(*) FROM _mozart_rejected").fetchall()
    return _Split(failed=[int(count) for count in failed], quarantined=quarantined)


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
    columns = [f"r.{quote(name)}" for name in schema.names]
    tags = [f"q.{quote(FAILED_RULES_COLUMN)}", f"q.{quote(ROW_COLUMN)}"]
    reader = con.sql(
        f"SELECT {', '.join([*columns, *tags])} FROM {source} AS r "
        f"JOIN _mozart_rejected AS q ON {on} ORDER BY q.{quote(ROW_COLUMN)}"
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


def _table_checks(
    con: duckdb.DuckDBPyConnection, checks: list[Check]
) -> tuple[int, list[tuple[bool, object]]]:
    """The extract's row count and each table-level check's (broken, observed
    value), in one aggregate query."""
    columns = [
        "count(*)",
        *(
            part
            for check in checks
            for part in (f"coalesce(({check.sql}), TRUE)", check.observed or "NULL")
        ),
    ]
    params = [value for check in checks for value in check.params]
    ((rows, *row),) = con.execute(
        f"SELECT {', '.join(columns)} FROM extract_rows", params
    ).fetchall()
    return rows, [(bool(row[2 * i]), row[2 * i + 1]) for i, _ in enumerate(checks)]


def _results(
    checks: list[Check],
    split: _Split,
    rows: int,
    observed: list[tuple[bool, object]],
) -> list[RuleResult]:
    row_failed = iter(split.failed)
    table_outcomes = iter(observed)
    results = []
    for check in checks:
        detail = check.broken
        if check.scope == RuleScope.TABLE:
            broken, value = next(table_outcomes)
            failed = int(broken)
            shown = value.isoformat() if hasattr(value, "isoformat") else value
            detail = f"{check.observed} = {shown}, expected {check.expected}"
        else:
            failed = next(row_failed)
        results.append(
            RuleResult(
                name=check.name,
                kind=check.kind,
                severity=check.severity,
                failed=failed,
                tolerated=check.tolerated(failed, rows),
                scope=check.scope,
                detail=detail,
                column=check.column,
            )
        )
    return results


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
