"""Run a table's checks over one extract with DuckDB; split accepted / quarantined.

The extract's Parquet files are read one row group at a time through the lake's
pyarrow filesystem (one code path for a local lake and S3); DuckDB sees only
streams of the columns a query needs. `unique` checks first find their
duplicated keys (an aggregate over a hash of the key columns, then an exact one
over the few candidates). Then one pass, a batch of rows at a time: DuckDB
evaluates every row check on the batch and returns only the rows that break
one (row number and flags); Python counts them and writes the rejected rows to
quarantine.parquet, in the extract's order and types. Table-level rules
(row_count, freshness) are one aggregate query. DuckDB runs under a memory
limit with a private spill directory; peak memory is measured in
bench/bench_validate.py.

The accepted rows are copied only when they differ from the extract: when rows
were quarantined and the run may still load (within the rules' tolerances), a
second pass writes accepted.parquet; with nothing quarantined the extract's own
files are the accepted rows, and a failed validation loads nothing. Copying
every row took 43 % of validating the 1M-row bench extract.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, computed_field

from mozart_etl.calendar import production_day
from mozart_etl.config.constants import Severity
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.errors import ConfigError, ValidationFailed
from mozart_etl.lake import ExtractManifest, Lake
from mozart_etl.parquet import row_group_batches
from mozart_etl.validate.drift import DriftChange, detect_drift
from mozart_etl.validate.rules import Check, RuleContext, RuleScope, compile_rules
from mozart_etl.validate.rules.base import Param, quote

log = logging.getLogger(__name__)

FAILED_RULES_COLUMN = "_mozart_failed_rules"
MEMORY_LIMIT = os.environ.get("MOZART_VALIDATE_MEMORY_LIMIT", "128MB")
"""DuckDB's memory limit for one validation; beyond it, DuckDB spills to disk.

The only state that grows with the extract is the primary-key aggregate; capped
at 128MB it spills instead: peak RSS 399 MB for both 1M and 3M rows, in the same
time (512MB: 399 → 576 MB; 64MB: flat but twice as slow)."""
BATCH_ROWS = 100_000
COMPRESSION = "lz4"
"""accepted/quarantine are read once by the load: lz4 writes in half zstd's time."""
_ROW = "_mozart_row"


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

    def summary(self) -> str:
        if self.scope == RuleScope.TABLE:
            return f"{self.name}: {self.detail}"
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
    """Where the accepted rows are: `validated/accepted.parquet` when rows were
    quarantined, else the extract's folder (its files are the accepted rows);
    empty when validation failed (nothing may be loaded)."""
    accepted_files: list[str]
    """The Parquet files the load (or transform) reads."""
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
    """Check, split and report; raise ValidationFailed on blocking drift or past
    an error rule's tolerance.

    The report and the quarantined rows are written before raising, so a failed
    run can be inspected; the raw table is untouched because the load never
    starts.
    """
    lake = Lake(tenant)
    checks = compile_rules(table, _context(tenant, table, manifest))
    row_checks = [c for c in checks if c.scope == RuleScope.ROW]
    table_checks = [c for c in checks if c.scope == RuleScope.TABLE]
    folder = f"{manifest.folder}/validated"
    lake.make_dirs(folder)
    accepted_path = f"{folder}/accepted.parquet"
    quarantine_path = f"{folder}/quarantine.parquet"
    dataset = ds.dataset([f.path for f in manifest.files], filesystem=lake.fs)
    drift = detect_drift(lake, table, manifest, dataset.schema)
    with _duckdb() as con:
        # Rules bind against the extract's schema; data reaches DuckDB only as
        # streams of the columns a query needs, one row group at a time.
        con.register("extract_rows", dataset.schema.empty_table())
        _check_sql(con, tenant, table, checks)
        con.unregister("extract_rows")
        split = _split(con, lake, dataset, row_checks, quarantine_path)
        observed = _table_checks(con, lake, dataset, table_checks)
    report = ValidationReport(
        tenant_id=tenant.tenant_id,
        table=table.name,
        production_day=manifest.production_day,
        extract_id=manifest.extract_id,
        rows=split.rows,
        accepted=split.accepted,
        quarantined=split.quarantined,
        rules=_results(checks, split, observed),
        drift=drift,
        accepted_path="",
        accepted_files=[],
        quarantine_path=quarantine_path,
    )
    if report.passed:  # a failed validation loads nothing: no accepted rows
        if split.quarantined:
            _write_accepted(lake, dataset, split.rejected, accepted_path)
            files = [accepted_path]
        else:
            accepted_path, files = manifest.folder, list(dataset.files)
        report = report.model_copy(
            update={"accepted_path": accepted_path, "accepted_files": files}
        )
    lake.write_json(f"{folder}/report.json", report.model_dump_json(indent=2))
    _log_report(report)
    if not report.passed:
        raise ValidationFailed(
            _failure_message(report, lake),
            tenant=tenant.tenant_id,
            table=table.name,
            column=_only([c.column for c in report.blocking_drift]),
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


@contextmanager
def _duckdb() -> Iterator[duckdb.DuckDBPyConnection]:
    """A private DuckDB: memory-capped, spilling to a temp folder, order-free."""
    with tempfile.TemporaryDirectory(prefix="mozart-validate-") as spill:
        con = duckdb.connect(
            config={
                "memory_limit": MEMORY_LIMIT,
                "temp_directory": spill,
                "preserve_insertion_order": False,
            }
        )
        try:
            # UTC, so rules that mix naive and zoned times (casts, date parts in
            # expressions) read naive time as UTC wherever the worker runs.
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET enable_progress_bar = false")
            yield con
        finally:
            con.close()


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
    model_config = ConfigDict(arbitrary_types_allowed=True)

    rows: int
    failed: list[int]
    rejected: np.ndarray
    """The quarantined rows' positions in the extract, ascending."""

    @property
    def quarantined(self) -> int:
        return len(self.rejected)

    @property
    def accepted(self) -> int:
        return self.rows - self.quarantined


def _flag(index: int) -> str:
    return quote(f"_mozart_check_{index}")


def _duplicate_keys(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    dataset: ds.Dataset,
    checks: list[Check],
) -> set[int]:
    """For each unique check, its duplicated keys as temp table `_mozart_dup_<i>`;
    the checks that have any.

    Two scans of the key columns only: an aggregate over a 64-bit hash of the
    key finds the candidate hashes (8 bytes per distinct key, not the key
    itself), then an exact aggregate over the few rows with those hashes keeps
    the keys that really repeat. NULLs hash and group alike (NULL = NULL here).
    """
    found = set()
    for i, check in enumerate(checks):
        if check.flag_rows_sql and _flag_rows(con, lake, dataset, check, i):
            found.add(i)
        if not check.duplicate_key:
            continue
        keys = ", ".join(quote(column) for column in check.duplicate_key)
        con.register("_mozart_keys", _reader(lake, dataset, check.duplicate_key))
        con.execute(
            f"CREATE TEMP TABLE _mozart_hash_{i} AS SELECT hash({keys}) AS h "
            "FROM _mozart_keys GROUP BY h HAVING count(*) > 1"
        ).fetchall()
        con.register("_mozart_keys", _reader(lake, dataset, check.duplicate_key))
        con.execute(
            f"CREATE TEMP TABLE _mozart_dup_{i} AS SELECT {keys} FROM _mozart_keys "
            f"WHERE hash({keys}) IN (SELECT h FROM _mozart_hash_{i}) "
            f"GROUP BY {keys} HAVING count(*) > 1"
        ).fetchall()
        con.unregister("_mozart_keys")
        ((count,),) = con.execute(f"SELECT count(*) FROM _mozart_dup_{i}").fetchall()
        if count:
            found.add(i)
    return found


def _flag_rows(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    dataset: ds.Dataset,
    check: Check,
    index: int,
) -> bool:
    """A rule across rows: its broken rows' keys as temp table `_mozart_dup_<i>`
    (one streamed query over the columns it reads); whether there are any."""
    con.register("_mozart_keys", _reader(lake, dataset, check.columns))
    con.execute(
        f"CREATE TEMP TABLE _mozart_dup_{index} AS {check.flag_rows_sql}"
    ).fetchall()
    con.unregister("_mozart_keys")
    ((count,),) = con.execute(f"SELECT count(*) FROM _mozart_dup_{index}").fetchall()
    return bool(count)


def _flag_query(checks: list[Check], duplicated: set[int]) -> tuple[str, list[Param]]:
    """The rows of `batch_rows` that break any check: their row number and flags."""
    flags: list[str] = []
    for i, check in enumerate(checks):
        keys = check.duplicate_key or check.flag_key
        if not keys:
            flags.append(f"coalesce(({check.sql}), FALSE) AS {_flag(i)}")
        elif i in duplicated:
            match = " AND ".join(
                f"d.{quote(c)} IS NOT DISTINCT FROM batch_rows.{quote(c)}" for c in keys
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
    any_flag = " OR ".join(_flag(i) for i, _ in enumerate(checks)) or "FALSE"
    inner = f"SELECT {', '.join([_ROW, *flags])} FROM batch_rows"
    return f"SELECT * FROM ({inner}) WHERE {any_flag}", params


def _split(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    dataset: ds.Dataset,
    checks: list[Check],
    quarantine_path: str,
) -> _Split:
    """Stream the extract once, a batch at a time: DuckDB returns only the rows
    that break a check (by row number), Python counts them and writes the rows an
    error check rejects to quarantine.parquet, in the extract's order."""
    query, params = _flag_query(checks, _duplicate_keys(con, lake, dataset, checks))
    errors = [i for i, c in enumerate(checks) if c.severity == Severity.ERROR]
    tagged = dataset.schema.append(pa.field(FAILED_RULES_COLUMN, pa.list_(pa.string())))
    failed = [0] * len(checks)
    rejected: list[np.ndarray] = []
    rows = 0
    with pq.ParquetWriter(
        quarantine_path, tagged, filesystem=lake.fs, compression=COMPRESSION
    ) as bad:
        for batch in _batches(lake, dataset):
            numbered = pa.Table.from_batches([batch]).append_column(
                _ROW, pa.array(np.arange(batch.num_rows, dtype=np.int64))
            )
            con.register("batch_rows", numbered)
            flagged = con.sql(query, params=params).to_arrow_table()
            con.unregister("batch_rows")
            flags = [flagged.column(f"_mozart_check_{i}") for i in range(len(checks))]
            for i, column in enumerate(flags):
                failed[i] += pc.sum(column).as_py() or 0
            broken = _rejected(flagged, flags, errors)
            if broken:
                positions = sorted(broken)
                names = [[checks[i].name for i in broken[row]] for row in positions]
                bad_rows = batch.take(pa.array(positions, pa.int64()))
                bad.write_batch(
                    pa.RecordBatch.from_arrays(
                        [*bad_rows.columns, pa.array(names, pa.list_(pa.string()))],
                        schema=tagged,
                    )
                )
                rejected.append(np.array(positions, dtype=np.int64) + rows)
            rows += batch.num_rows
    positions = np.concatenate(rejected) if rejected else np.empty(0, np.int64)
    return _Split(rows=rows, failed=failed, rejected=positions)


def _write_accepted(
    lake: Lake, dataset: ds.Dataset, rejected: np.ndarray, path: str
) -> None:
    """The extract without its `rejected` rows (positions, ascending), in order."""
    offset = 0
    with pq.ParquetWriter(
        path, dataset.schema, filesystem=lake.fs, compression=COMPRESSION
    ) as good:
        for batch in _batches(lake, dataset):
            end = offset + batch.num_rows
            low, high = np.searchsorted(rejected, [offset, end])
            if low == high:
                good.write_batch(batch)
            else:
                keep = np.ones(batch.num_rows, dtype=bool)
                keep[rejected[low:high] - offset] = False
                good.write_batch(batch.filter(pa.array(keep)))
            offset = end


def _batches(
    lake: Lake, dataset: ds.Dataset, columns: list[str] | None = None
) -> Iterator[pa.RecordBatch]:
    return row_group_batches(lake.fs, dataset.files, BATCH_ROWS, columns)


def _reader(
    lake: Lake, dataset: ds.Dataset, columns: list[str]
) -> pa.RecordBatchReader:
    """A one-shot stream of some columns, for one DuckDB query."""
    schema = pa.schema([dataset.schema.field(name) for name in columns])
    return pa.RecordBatchReader.from_batches(schema, _batches(lake, dataset, columns))


def _rejected(
    flagged: pa.Table, flags: list[pa.ChunkedArray], errors: list[int]
) -> dict[int, list[int]]:
    """Row number → the error checks it breaks, for rows that break any."""
    if not errors or flagged.num_rows == 0:
        return {}
    values = [flags[i].to_pylist() for i in errors]
    out: dict[int, list[int]] = {}
    for index, row in enumerate(flagged.column(_ROW).to_pylist()):
        broken = [i for i, column in zip(errors, values, strict=True) if column[index]]
        if broken:
            out[row] = broken
    return out


def _table_checks(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    dataset: ds.Dataset,
    checks: list[Check],
) -> list[tuple[bool, object]]:
    """Each table-level check: (broken, observed value), in one aggregate query."""
    if not checks:
        return []
    needed = sorted({column for check in checks for column in check.columns})
    con.register(
        "extract_rows", _reader(lake, dataset, needed or dataset.schema.names[:1])
    )
    columns = [
        part
        for check in checks
        for part in (f"coalesce(({check.sql}), TRUE)", check.observed or "NULL")
    ]
    params = [value for check in checks for value in check.params]
    (row,) = con.execute(
        f"SELECT {', '.join(columns)} FROM extract_rows", params
    ).fetchall()
    return [(bool(row[2 * i]), row[2 * i + 1]) for i, _ in enumerate(checks)]


def _results(
    checks: list[Check], split: _Split, observed: list[tuple[bool, object]]
) -> list[RuleResult]:
    row_failed = iter(split.failed)
    table_outcomes = iter(observed)
    results = []
    for check in checks:
        detail = None
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
                tolerated=check.tolerated(failed, split.rows),
                scope=check.scope,
                detail=detail,
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


def accepted_rows(lake: Lake, report: ValidationReport) -> ds.Dataset:
    """The accepted rows, unread: the load takes them slice by slice."""
    return ds.dataset(report.accepted_files, filesystem=lake.fs, format="parquet")


def read_accepted(lake: Lake, report: ValidationReport) -> pa.Table:
    return accepted_rows(lake, report).to_table()
