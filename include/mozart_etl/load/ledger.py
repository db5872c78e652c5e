"""The run ledger: what each run did to each table, queryable next to the raw data.

One record per (tenant, table, production day, run id, extract id) in the
Iceberg table `<tid>_raw._mozart_ledger`: rows per stage (extracted,
quarantined, accepted, loaded), the raw table's snapshot id, timings and a
status. The load writes it after its commit (`loaded`) or after a failure
(`failed`); the validation writes it when it rejects the extract (`rejected`:
nothing was loaded, the counts say why); the reconciliation adds both sides'
figures (`reconciled` or `mismatch`). Where one process loads and reconciles
(a table's sync task), the load's record is written with the reconciliation's
figures, in one commit. A retry of the same run and extract replaces its
record, so the key stays unique.

An Iceberg table rather than Parquet files in the lake: the same catalog that
dbt and Trino already read serves it, with no extra layout to glob, and every
write is one atomic snapshot (concurrent table loads are retried by PyIceberg).
"""

from __future__ import annotations

import logging
import random
import time
import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NoSuchTableError,
    ValidationException,
)
from pyiceberg.expressions import And, EqualTo
from pyiceberg.table import Table

from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.errors import LoadError
from mozart_etl.core.lake import ExtractManifest, Lake
from mozart_etl.load.commit import ensure_namespace
from mozart_etl.load.iceberg import LoadResult, LoadRows, as_rows, load_partition

log = logging.getLogger(__name__)

LEDGER_TABLE = "_mozart_ledger"
KEY = ("table_name", "production_day", "run_id", "extract_id")
MAX_ERROR_CHARS = 500
LEDGER_SNAPSHOTS_KEPT = 16
"""Every record is a snapshot and PyIceberg copies the whole snapshot list on
each commit, so a ledger that kept them all would get slower with every run
(0.13 s per write at 50 records, 0.45 s at 200). Older ones are expired: the
ledger needs no time travel (each record carries `recorded_at`)."""
LEDGER_SNAPSHOT_MIN_AGE = timedelta(seconds=10)
"""...but never one younger than this: a writer that started from it (the
table tasks of a run write at once) would find its base gone and retry. A
write takes well under a second from reading its base to committing; a
10-minute age let a backfill's ledger grow to hundreds of snapshots, each
write copying them all (1.2-1.6 s per write in `bench/backfill.py`)."""
LEDGER_EXPIRE_BATCH = 8
"""...in batches: an expiry is a commit of its own, as costly as a record's,
so a write expires only once this many snapshots are past the kept ones."""
LEDGER_WRITE_ATTEMPTS = 8
LEDGER_COMPACT_AT_FILES = 32
"""...and a data file: past this many, the records are rewritten as one file."""
LEDGER_PROPERTIES = {
    # Each commit also logs the previous metadata file (100 kept by default),
    # copied on every commit too; the old files themselves are deleted.
    "write.metadata.previous-versions-max": "8",
    "write.metadata.delete-after-commit.enabled": "true",
}


class LedgerStatus(StrEnum):
    """How a table's run ended."""

    LOADED = "loaded"
    """Accepted rows are committed to the raw table (`snapshot_id`)."""
    REJECTED = "rejected"
    """Validation stopped the load; the raw table is as it was."""
    FAILED = "failed"
    """The load raised; the raw table is as it was (its previous snapshot)."""
    RECONCILED = "reconciled"
    """Loaded, and the source's figures over the window equal raw's."""
    MISMATCH = "mismatch"
    """Loaded, but the source's figures over the window differ from raw's."""


class LedgerRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str
    table_name: str
    production_day: date
    run_id: str
    extract_id: str
    mode: str
    status: LedgerStatus
    window_start: datetime | None
    window_end: datetime | None
    rows_extracted: int
    rows_quarantined: int | None
    rows_accepted: int | None
    rows_loaded: int | None
    rows_in_table: int | None
    snapshot_id: int | None
    extract_started_at: datetime
    extract_seconds: float
    load_seconds: float | None
    recorded_at: datetime
    error: str | None
    source_rows: int | None = None
    """Reconciliation: the source's count over the window, and raw's (+ quarantined)."""
    raw_rows: int | None = None
    source_sum: str | None = None
    raw_sum: str | None = None


LEDGER_SCHEMA = pa.schema(
    [
        pa.field("tenant_id", pa.string(), nullable=False),
        pa.field("table_name", pa.string(), nullable=False),
        pa.field("production_day", pa.date32(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("extract_id", pa.string(), nullable=False),
        pa.field("mode", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("window_start", pa.timestamp("us", tz="UTC")),
        pa.field("window_end", pa.timestamp("us", tz="UTC")),
        pa.field("rows_extracted", pa.int64(), nullable=False),
        pa.field("rows_quarantined", pa.int64()),
        pa.field("rows_accepted", pa.int64()),
        pa.field("rows_loaded", pa.int64()),
        pa.field("rows_in_table", pa.int64()),
        pa.field("snapshot_id", pa.int64()),
        pa.field("extract_started_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("extract_seconds", pa.float64(), nullable=False),
        pa.field("load_seconds", pa.float64()),
        pa.field("recorded_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("error", pa.string()),
        pa.field("source_rows", pa.int64()),
        pa.field("raw_rows", pa.int64()),
        pa.field("source_sum", pa.string()),
        pa.field("raw_sum", pa.string()),
    ]
)


def new_record(
    table: TableConfig,
    manifest: ExtractManifest,
    *,
    run_id: str,
    status: LedgerStatus,
    quarantined: int | None = None,
    accepted: int | None = None,
    result: LoadResult | None = None,
    error: BaseException | None = None,
) -> LedgerRecord:
    return LedgerRecord(
        tenant_id=manifest.tenant_id,
        table_name=table.name,
        production_day=manifest.production_day,
        run_id=run_id,
        extract_id=manifest.extract_id,
        mode=str(table.mode),
        status=status,
        window_start=manifest.window_start,
        window_end=manifest.window_end,
        rows_extracted=manifest.rows,
        rows_quarantined=quarantined,
        rows_accepted=accepted,
        rows_loaded=result.rows_loaded if result else None,
        rows_in_table=result.rows_in_table if result else None,
        snapshot_id=result.snapshot_id if result else None,
        extract_started_at=manifest.started_at,
        extract_seconds=round(
            (manifest.finished_at - manifest.started_at).total_seconds(), 3
        ),
        load_seconds=result.seconds if result else None,
        recorded_at=datetime.now(UTC),
        error=_error_text(error),
    )


def _error_text(error: BaseException | None) -> str | None:
    """The error's class and the start of its message (stage errors carry no
    secrets: extract errors are scrubbed, load and publish never see any)."""
    if error is None:
        return None
    return f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]


def append_record(catalog: Catalog, tenant: TenantConfig, record: LedgerRecord) -> int:
    """Write `record` in one snapshot; it supersedes an earlier record with its
    key (readers take each key's latest, `latest_records`). Returns the
    ledger's snapshot id.

    An append, not an overwrite by key: an overwrite scans and rewrites what
    it replaces and cost 1.2-1.6 s per record in a fast backfill
    (`bench/backfill.py`); compaction drops the superseded records. The
    tenant's table tasks write the ledger at the same time, and its
    housekeeping rewrites it: a write that PyIceberg refuses because another
    landed first is tried again on the new state (a repeat is harmless)."""
    ledger = _ledger_table(catalog, tenant)
    row = pa.Table.from_pylist([record.model_dump()], schema=LEDGER_SCHEMA)
    for attempt in range(1, LEDGER_WRITE_ATTEMPTS + 1):
        try:
            ledger.append(row)
            break
        except (CommitFailedException, ValidationException) as exc:
            if attempt == LEDGER_WRITE_ATTEMPTS:
                raise LoadError(
                    f"run ledger {tenant.raw_namespace}.{LEDGER_TABLE}: the "
                    f"{record.status} record of {record.table_name} conflicted with "
                    f"other writers {attempt} times ({exc})",
                    tenant=tenant.tenant_id,
                    table=record.table_name,
                ) from exc
            log.warning("run ledger write conflicted (%s); trying again", exc)
            time.sleep(random.uniform(0.05, 0.1) * attempt)
            ledger = ledger.refresh()
    # The table holds the state this append committed (another writer's
    # later commit is not this record's snapshot).
    snapshot = ledger.current_snapshot()
    assert snapshot is not None
    _keep_small(ledger)
    return snapshot.snapshot_id


def _keep_small(
    ledger: Table, compact_at: int | None = None, expire_at: int | None = None
) -> bool:
    """Compact the ledger's files (past `compact_at`, default
    LEDGER_COMPACT_AT_FILES) and expire its old snapshots (once `expire_at`,
    default LEDGER_EXPIRE_BATCH, can go; both read at call time), so a write
    costs the same after a year of runs as after one. Returns False when a
    concurrent write deferred it.

    Both are housekeeping after the record's own commit: a concurrent writer
    that wins makes this one give up (PyIceberg validates the rewrite against
    it), and the next write tries again.
    """
    snapshot = ledger.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    files = int(snapshot.summary["total-data-files"] or 0)
    limit = LEDGER_COMPACT_AT_FILES if compact_at is None else compact_at
    batch = LEDGER_EXPIRE_BATCH if expire_at is None else expire_at
    try:
        if files > limit:
            log.info("compacting the run ledger: %d files into one", files)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Delete operation did not match")
                ledger.overwrite(latest_records(ledger.scan().to_arrow()))
        snapshots = sorted(ledger.snapshots(), key=lambda s: s.timestamp_ms)
        settled = (datetime.now(UTC) - LEDGER_SNAPSHOT_MIN_AGE).timestamp() * 1000
        expired = [
            s.snapshot_id
            for s in snapshots[:-LEDGER_SNAPSHOTS_KEPT]
            if s.timestamp_ms < settled
        ]
        if expired and len(expired) >= batch:
            ledger.maintenance.expire_snapshots().by_ids(expired).commit()
    except (CommitFailedException, ValidationException) as exc:
        log.warning("run ledger housekeeping deferred (a concurrent write): %s", exc)
        return False
    return True


def compact_ledger(catalog: Catalog, tenant: TenantConfig) -> bool:
    """The maintenance DAG's ledger step: the same housekeeping as after each
    write, but into one file whatever the count (superseded records dropped).
    True when done (or no ledger yet), False when a concurrent write deferred it."""
    try:
        ledger = catalog.load_table((tenant.raw_namespace, LEDGER_TABLE))
    except NoSuchTableError:
        return True
    if ledger.current_snapshot() is None:
        return True
    return _keep_small(ledger, compact_at=1, expire_at=1)


def _key_value(record: LedgerRecord, name: str) -> str:
    value = getattr(record, name)
    return value.isoformat() if isinstance(value, date) else str(value)


def read_ledger(catalog: Catalog, tenant: TenantConfig) -> pa.Table:
    """The whole ledger (empty, with its schema, before the first record)."""
    try:
        ledger = catalog.load_table((tenant.raw_namespace, LEDGER_TABLE))
    except NoSuchTableError:
        return LEDGER_SCHEMA.empty_table()
    return latest_records(ledger.scan().to_arrow())


def latest_records(records: pa.Table) -> pa.Table:
    """Each key's latest record by `recorded_at` (the ledger appends; a later
    record of a key, e.g. `reconciled` after `loaded`, supersedes it)."""
    if not records.num_rows:
        return records
    numbered = records.append_column(
        "_order", pa.array(range(records.num_rows), pa.int64())
    )
    ranked = numbered.sort_by([("recorded_at", "ascending"), ("_order", "ascending")])
    latest = ranked.group_by(list(KEY), use_threads=False).aggregate(
        [("_order", "last")]
    )
    keep = pc.is_in(numbered.column("_order"), value_set=latest.column("_order_last"))
    return records.filter(keep)


def _ledger_table(catalog: Catalog, tenant: TenantConfig) -> Table:
    identifier = (tenant.raw_namespace, LEDGER_TABLE)
    ensure_namespace(catalog, tenant.raw_namespace)
    try:
        ledger = catalog.load_table(identifier)
    except NoSuchTableError:
        log.info("creating run ledger %s.%s", *identifier)
        return catalog.create_table_if_not_exists(
            identifier, schema=LEDGER_SCHEMA, properties=LEDGER_PROPERTIES
        )
    known = {field.name for field in ledger.schema().fields}
    if not set(LEDGER_SCHEMA.names) <= known:  # a ledger from an older release
        with ledger.update_schema() as update:
            update.union_by_name(LEDGER_SCHEMA)
        ledger = ledger.refresh()
    if any(ledger.properties.get(k) != v for k, v in LEDGER_PROPERTIES.items()):
        with ledger.transaction() as transaction:  # a ledger from an older release
            transaction.set_properties(LEDGER_PROPERTIES)
        ledger = ledger.refresh()
    return ledger


def log_record(record: LedgerRecord) -> None:
    """The task log's one-line summary of a table's run."""
    log.info(
        "ledger %s.%s day %s run %s extract %s: %s — extracted %d, quarantined %s, "
        "accepted %s, loaded %s, table %s rows, snapshot %s, extract %.2f s, "
        "load %s s%s",
        record.tenant_id,
        record.table_name,
        record.production_day,
        record.run_id,
        record.extract_id,
        record.status,
        record.rows_extracted,
        _or_dash(record.rows_quarantined),
        _or_dash(record.rows_accepted),
        _or_dash(record.rows_loaded),
        _or_dash(record.rows_in_table),
        _or_dash(record.snapshot_id),
        record.extract_seconds,
        _or_dash(record.load_seconds),
        f" — {record.error}" if record.error else "",
    )


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)


def record_safely(
    catalog_factory: Callable[[], Catalog],
    tenant: TenantConfig,
    record: LedgerRecord,
    *,
    logged: bool = False,
) -> None:
    """Ledger a failure without hiding it: a ledger error here is only logged.
    (`logged`: the record's line is already in the task log.)"""
    if not logged:
        log_record(record)
    try:
        append_record(catalog_factory(), tenant, record)
    except Exception:
        log.exception("could not write the %s ledger record", record.status)


def load_and_record(
    catalog: Catalog,
    tenant: TenantConfig,
    table: TableConfig,
    manifest: ExtractManifest,
    rows: LoadRows,
    *,
    run_id: str,
    quarantined: int,
    accepted: int | None = None,
    refused: pa.Table | None = None,
    write: bool = True,
) -> tuple[LoadResult, LedgerRecord]:
    """Load the accepted rows, then ledger the run (`loaded`, or `failed` and raise).

    `accepted` is validation's count (default: the rows given; a transform may
    turn the accepted rows into more or fewer rows to load).

    A ledger write that fails after the load fails the task: a retry reloads the
    same rows (idempotent) and writes the record then. With `write=False` the
    `loaded` record is only returned (and logged): the caller reconciles in the
    same process and writes one record for both (`record_reconciliation`'s
    `loaded`), since each ledger write is an Iceberg commit.
    """
    accepted = as_rows(rows).count_rows() if accepted is None else accepted
    try:
        result = load_partition(
            catalog, tenant, table, manifest, rows, run_id=run_id, quarantined=refused
        )
    except Exception as exc:
        failed = new_record(
            table,
            manifest,
            run_id=run_id,
            status=LedgerStatus.FAILED,
            error=exc,
            quarantined=quarantined,
            accepted=accepted,
        )
        record_safely(lambda: catalog, tenant, failed)
        raise
    record = new_record(
        table,
        manifest,
        run_id=run_id,
        status=LedgerStatus.LOADED,
        result=result,
        quarantined=quarantined,
        accepted=accepted,
    )
    if write:
        append_record(catalog, tenant, record)
    log_record(record)
    return result, record


def record_reconciliation(
    catalog: Catalog,
    tenant: TenantConfig,
    table: TableConfig,
    manifest: ExtractManifest,
    *,
    run_id: str,
    figures: dict[str, int | str | None],
    matched: bool,
    error: BaseException | None = None,
    loaded: LedgerRecord | None = None,
) -> LedgerRecord:
    """Add both sides' figures to the run's `loaded` record (status reconciled or
    mismatch), replacing it under the same key. `loaded` is that record when
    the caller holds it (it loaded in this process and deferred its write);
    otherwise it is read back from the ledger."""
    base = loaded or _loaded_record(catalog, tenant, table, manifest, run_id)
    status = LedgerStatus.RECONCILED if matched else LedgerStatus.MISMATCH
    record = base.model_copy(
        update={
            **figures,
            "status": status,
            "recorded_at": datetime.now(UTC),
            "error": _error_text(error) if error else base.error,
        }
    )
    append_record(catalog, tenant, record)
    log_record(record)
    return record


def _loaded_record(
    catalog: Catalog,
    tenant: TenantConfig,
    table: TableConfig,
    manifest: ExtractManifest,
    run_id: str,
) -> LedgerRecord:
    """The run's `loaded` record of this extract, from the ledger."""
    # mypy builds pyiceberg's predicate __init__ from the pydantic fields
    # and misses the (term, literal) one pyiceberg writes.
    key = And(
        *(
            EqualTo(name, value)  # type: ignore[misc, call-arg, arg-type]
            for name, value in (
                ("table_name", table.name),
                ("production_day", manifest.production_day.isoformat()),
                ("run_id", run_id),
                ("extract_id", manifest.extract_id),
            )
        )
    )
    found = latest_records(
        _ledger_table(catalog, tenant).scan(row_filter=key).to_arrow()
    ).to_pylist()
    if found:
        return LedgerRecord.model_validate(found[-1])
    # The load's record was lost: start from the extract.
    return new_record(table, manifest, run_id=run_id, status=LedgerStatus.LOADED)


def record_rejection(
    catalog_factory: Callable[[], Catalog],
    tenant: TenantConfig,
    table: TableConfig,
    manifest: ExtractManifest,
    *,
    run_id: str,
    error: BaseException,
) -> None:
    """Ledger an extract that validation rejected, with the report's counts."""
    lake = Lake(tenant)
    quarantined = accepted = None
    try:
        report = lake.read_json(f"{manifest.folder}/validated/report.json")
        quarantined, accepted = int(report["quarantined"]), int(report["accepted"])
    except (OSError, KeyError, ValueError):
        log.warning("no validation report for extract %s", manifest.extract_id)
    record = new_record(
        table,
        manifest,
        run_id=run_id,
        status=LedgerStatus.REJECTED,
        quarantined=quarantined,
        accepted=accepted,
        error=error,
    )
    record_safely(catalog_factory, tenant, record)


__all__ = [
    "LEDGER_TABLE",
    "LedgerRecord",
    "LedgerStatus",
    "append_record",
    "compact_ledger",
    "latest_records",
    "load_and_record",
    "read_ledger",
    "record_reconciliation",
    "record_rejection",
    "record_safely",
]
