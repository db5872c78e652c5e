"""Load accepted rows into `<tid>_raw.<table>`: every write is one atomic snapshot.

A failed load leaves the previous snapshot current (Iceberg commits are
atomic), and a rerun gives the same table. Every mode but `snapshot` appends
the versions raw lacks (`load/versions.py`): a dated table's new
`(key, cursor)` versions, a full refresh's changed rows, and a deletion for
each live key the source no longer holds (full refresh, `deletes: key_scan`).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Protocol, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pydantic import BaseModel, ConfigDict
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NoSuchTableError,
    ValidationException,
)
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot, ancestors_of
from pyiceberg.table.update.spec import UpdateSpec
from pyiceberg.transforms import DayTransform

from mozart_etl.config.constants import LoadMode
from mozart_etl.config.models import KEY_SCAN, TableConfig, TenantConfig
from mozart_etl.core.errors import LoadError, LoadRejected, RefreshRefused
from mozart_etl.core.lake import ExtractManifest, Lake
from mozart_etl.core.parquet import ParquetRows
from mozart_etl.load.commit import (
    append_planned,
    create_table_once,
    ensure_namespace,
)
from mozart_etl.load.schema import evolve_schema
from mozart_etl.load.snapshot import write_snapshots
from mozart_etl.load.versions import (
    DELETED,
    VALID_FROM,
    closed_rows,
    is_dated,
    is_versioned,
    live_rows,
    new_versions,
    with_version_columns,
)

log = logging.getLogger(__name__)

AUDIT_COLUMNS = ("_mozart_run_id", "_mozart_loaded_at", "_mozart_partition")
EXTRACT_PROPERTY = "mozart.extract-id"
"""Snapshot summary property naming the extract a commit wrote: a retry whose
commit already landed (its response lost, or a stale attempt) finds it and
commits nothing."""
CAPTURED_PROPERTY = "mozart.captured-at"
"""Table property: the latest instant a sync loaded into the table read the
source (where the next sync's undated changes begin)."""
ANCESTORS_CHECKED = 200
SLICE_ROWS = 262_144
"""Rows written to Iceberg at a time: a load holds one slice, not the partition
(loading 1M `lot_history` rows alone: peak +464 MB as one table, +327 MB in
slices)."""

LoadRows: TypeAlias = pa.Table | ParquetRows
"""What a load reads: a table in memory, or Parquet files read slice by slice."""


class RowSource(Protocol):
    """How the load reads LoadRows: `ParquetRows`, or a pyarrow dataset over a
    table in memory (both read the same way)."""

    @property
    def schema(self) -> pa.Schema: ...

    def count_rows(self) -> int: ...

    def to_table(self, columns: list[str] | None = None) -> pa.Table: ...

    def to_batches(
        self, batch_size: int = ..., columns: list[str] | None = None
    ) -> Iterator[pa.RecordBatch]: ...


Stamp = Callable[[pa.Table], pa.Table]


class LoadResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant_id: str
    table: str
    identifier: str
    mode: LoadMode
    production_day: date
    rows_loaded: int
    rows_in_table: int
    snapshot_id: int | None
    seconds: float


def raw_table_exists(
    catalog: Catalog, tenant: TenantConfig, table: TableConfig
) -> bool:
    return catalog.table_exists((tenant.raw_namespace, table.name))


def load_partition(
    catalog: Catalog,
    tenant: TenantConfig,
    table: TableConfig,
    manifest: ExtractManifest,
    rows: LoadRows,
    *,
    run_id: str,
    quarantined: pa.Table | None = None,
) -> LoadResult:
    """Load the accepted `rows`; `quarantined` (the rows validation refused)
    close their keys from their cursor on: a broken row counts in no mart,
    and the version before it stops being current."""
    started = time.perf_counter()
    source = as_rows(rows)
    audit = partial(
        with_audit_columns,
        run_id=run_id,
        partition=manifest.production_day,
        loaded_at=datetime.now(UTC),
    )
    captured = _captured(manifest)
    zone = tenant.source_zone(table)

    def versioned(since: datetime) -> Stamp:
        def stamp(data: pa.Table) -> pa.Table:
            return audit(with_version_columns(data, table, zone, since))

        return stamp

    stamp: Stamp = versioned(captured) if is_versioned(table) else audit
    count = source.count_rows()
    schema = stamp(source.schema.empty_table()).schema
    iceberg_table = _ensure_table(catalog, tenant, table, schema)
    since = _changes_since(iceberg_table, captured)
    if is_versioned(table):
        stamp = versioned(since)
    landed = _committed_snapshot(iceberg_table, manifest.extract_id)
    if landed is not None:
        log.warning(
            "extract %s is already in %s.%s (snapshot %s, an earlier attempt's "
            "commit): nothing to write",
            manifest.extract_id,
            tenant.raw_namespace,
            table.name,
            landed.snapshot_id,
        )
    try:
        if landed is None:
            _write(
                iceberg_table,
                tenant,
                table,
                manifest,
                source,
                stamp,
                audit,
                quarantined,
                since,
            )
    except (CommitFailedException, ValidationException) as exc:
        # PyIceberg already retried with backoff (`commit.retry.*` properties) and
        # refuses a retry whose rows a concurrent writer changed (serializable).
        raise LoadError(
            f"commit to {tenant.raw_namespace}.{table.name} kept conflicting with "
            f"another writer after PyIceberg's retries ({exc}); nothing was "
            "committed, the previous snapshot stays current",
            tenant=tenant.tenant_id,
            table=table.name,
        ) from exc
    iceberg_table = iceberg_table.refresh()
    snapshot = iceberg_table.current_snapshot()
    result = LoadResult(
        tenant_id=tenant.tenant_id,
        table=table.name,
        identifier=f"{tenant.raw_namespace}.{table.name}",
        mode=table.mode,
        production_day=manifest.production_day,
        rows_loaded=count,
        rows_in_table=_row_count(iceberg_table),
        snapshot_id=snapshot.snapshot_id if snapshot else None,
        seconds=round(time.perf_counter() - started, 3),
    )
    log.info(
        "loaded %s (%s): %d rows, table now %d row versions, snapshot %s, %.2f s",
        result.identifier,
        result.mode,
        result.rows_loaded,
        result.rows_in_table,
        result.snapshot_id,
        result.seconds,
    )
    return result


def _committed_snapshot(iceberg_table: Table, extract_id: str) -> Snapshot | None:
    """The snapshot (current or an ancestor) that already holds this extract."""
    metadata = iceberg_table.metadata
    for index, snapshot in enumerate(
        ancestors_of(iceberg_table.current_snapshot(), metadata)
    ):
        if index >= ANCESTORS_CHECKED:
            return None
        summary = snapshot.summary
        if summary is not None and summary.get(EXTRACT_PROPERTY) == extract_id:
            return snapshot
    return None


def _check_refresh_size(
    tenant: TenantConfig, table: TableConfig, rows: int, previous: int
) -> None:
    """A full refresh that would empty or shrink raw's live rows past the table's
    threshold is refused: a source that suddenly returns nothing is a fault,
    not a fact."""
    if previous == 0:
        return
    empty = rows == 0 and not table.allow_empty_refresh
    shrunk = rows < table.refresh_min_fraction * previous
    if empty or shrunk:
        setting = "allow_empty_refresh: true" if empty else "refresh_min_fraction"
        raise RefreshRefused(
            f"full refresh refused: {rows} row(s) would replace the {previous} in "
            f"{tenant.raw_namespace}.{table.name} (refresh_min_fraction "
            f"{table.refresh_min_fraction}); raw is untouched. If the source really "
            f"shrank, set `{setting}` for this table and rerun",
            tenant=tenant.tenant_id,
            table=table.name,
        )


def _write(
    iceberg_table: Table,
    tenant: TenantConfig,
    table: TableConfig,
    manifest: ExtractManifest,
    rows: RowSource,
    stamp: Stamp,
    audit: Stamp,
    quarantined: pa.Table | None,
    since: datetime,
) -> None:
    """One atomic commit tagged with the extract id: the plan runs of a snapshot
    table, or the versions raw lacks (with the capture instant, the next sync's
    `since`)."""
    tag = {EXTRACT_PROPERTY: manifest.extract_id}
    seen = _last_capture(iceberg_table)
    captured = _captured(manifest)
    capture = {CAPTURED_PROPERTY: max(captured, seen or captured).isoformat()}
    if table.mode == LoadMode.SNAPSHOT:  # plan runs: small, compared whole
        write_snapshots(iceberg_table, table, stamp(rows.to_table()), tag)
        return
    keys = list(table.primary_key)
    _refuse_duplicate_keys(iceberg_table, rows.to_table(columns=keys), keys)
    refused = _refused_versions(table, quarantined, stamp)
    if iceberg_table.current_snapshot() is None:
        # A first load (or one whose earlier attempt never committed): every row
        # is a new version, streamed slice by slice.
        append_planned(
            iceberg_table,
            itertools.chain(
                _slices(rows, stamp), [refused] if refused is not None else []
            ),
            snapshot_properties=tag,
            table_properties=capture,
        )
        return
    incoming = stamp(rows.to_table())
    if refused is not None:
        incoming = pa.concat_tables([incoming, refused.cast(incoming.schema)])
    live = None
    closed = None
    if not is_dated(table):  # a full refresh: the extract is every live row
        live = live_rows(iceberg_table, table)
        _check_refresh_size(tenant, table, incoming.num_rows, live.num_rows)
        closed = _closing(live, incoming, table, since, audit)
    elif table.deletes == KEY_SCAN:
        closed = _closed_by_key_scan(
            iceberg_table, tenant, table, manifest, since, audit
        )
    fresh = new_versions(iceberg_table, table, incoming, live=live)
    if not fresh.num_rows and closed is None:
        log.info(
            "%s: raw already holds every version this extract read: nothing to "
            "commit but the capture instant",
            table.name,
        )
        with iceberg_table.transaction() as tx:  # metadata only, no snapshot
            tx.set_properties(capture)
        return
    append_planned(
        iceberg_table,
        itertools.chain(
            _slices(ds.dataset(fresh)), [closed] if closed is not None else []
        ),
        snapshot_properties=tag,
        table_properties=capture,
    )


def _refused_versions(
    table: TableConfig, quarantined: pa.Table | None, stamp: Stamp
) -> pa.Table | None:
    """Closing versions for a dated table's quarantined rows (an undated table
    closes every key its accepted rows lack anyway)."""
    if quarantined is None or not quarantined.num_rows or not is_dated(table):
        return None
    stamped = stamp(quarantined)
    index = stamped.schema.get_field_index(DELETED)
    return stamped.set_column(
        index, DELETED, pa.repeat(pa.scalar(True), stamped.num_rows)
    )


def _closed_by_key_scan(
    iceberg_table: Table,
    tenant: TenantConfig,
    table: TableConfig,
    manifest: ExtractManifest,
    since: datetime,
    audit: Stamp,
) -> pa.Table | None:
    """Deletions for the live keys missing from the extract's key scan (whole
    rows read only when some key is gone)."""
    keys = list(table.primary_key)
    present = ParquetRows(
        Lake(tenant).fs, [f.path for f in manifest.key_files]
    ).to_table()
    live_keys = live_rows(iceberg_table, table, columns=keys)
    gone = closed_rows(live_keys, present, keys, since)
    if not gone.num_rows:
        return None
    return _closing(live_rows(iceberg_table, table), present, table, since, audit)


def _closing(
    live: pa.Table,
    present: pa.Table,
    table: TableConfig,
    since: datetime,
    audit: Stamp,
) -> pa.Table | None:
    """Deletion versions (this load's audit columns) for live rows not in `present`."""
    keys = list(table.primary_key)
    gone = closed_rows(live, present.select(keys), keys, since)
    if not gone.num_rows:
        return None
    return audit(gone.drop_columns(list(AUDIT_COLUMNS)))


def _captured(manifest: ExtractManifest) -> datetime:
    return manifest.captured_at or manifest.started_at


def _last_capture(iceberg_table: Table) -> datetime | None:
    """The instant the latest sync loaded into this table read the source."""
    text = iceberg_table.properties.get(CAPTURED_PROPERTY)
    return datetime.fromisoformat(text) if text else None


def _changes_since(iceberg_table: Table, captured: datetime) -> datetime:
    """Where an undated change (a full-refresh row that changed, a deletion
    found by comparing keys) begins: just after the previous sync, which still
    saw the old state; the change happened between the two reads. A run's
    scheduled sync minutes after the day's end thus dates a change made during
    the day within that day, not after its end. The first sync, and an older
    extract loaded late, date their changes at their own capture."""
    previous = _last_capture(iceberg_table)
    if previous is None or previous >= captured:
        return captured
    return previous + timedelta(microseconds=1)


def _slices(rows: RowSource, stamp: Stamp | None = None) -> Iterator[pa.Table]:
    """`rows` in tables of about SLICE_ROWS (stamped, if `stamp` is given)."""
    stamp = stamp or _same
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in rows.to_batches(batch_size=SLICE_ROWS):
        pending.append(batch)
        pending_rows += batch.num_rows
        if pending_rows >= SLICE_ROWS:
            yield stamp(pa.Table.from_batches(pending))
            pending, pending_rows = [], 0
    if pending_rows:
        yield stamp(pa.Table.from_batches(pending))


def _same(data: pa.Table) -> pa.Table:
    return data


def as_rows(rows: LoadRows) -> RowSource:
    return rows if isinstance(rows, ParquetRows) else ds.dataset(rows)


def with_audit_columns(
    rows: pa.Table, *, run_id: str, partition: date, loaded_at: datetime
) -> pa.Table:
    # `pa.repeat` of a scalar, not an array from a Python list: 1M rows took
    # 1 to 2 s through a list of a million datetimes, 0.1 s this way.
    count = rows.num_rows
    loaded = pa.scalar(loaded_at, pa.timestamp("us", tz="UTC"))
    return (
        rows.append_column("_mozart_run_id", pa.repeat(pa.scalar(run_id), count))
        .append_column("_mozart_loaded_at", pa.repeat(loaded, count))
        .append_column(
            "_mozart_partition", pa.repeat(pa.scalar(partition.isoformat()), count)
        )
    )


def _ensure_table(
    catalog: Catalog, tenant: TenantConfig, table: TableConfig, schema: pa.Schema
) -> Table:
    identifier = (tenant.raw_namespace, table.name)
    ensure_namespace(catalog, tenant.raw_namespace)
    try:
        iceberg_table = catalog.load_table(identifier)
    except NoSuchTableError:
        return create_table_once(
            catalog, identifier, schema, partition=partial(_partition, table)
        )
    if is_versioned(table) and VALID_FROM not in _field_names(iceberg_table):
        raise LoadError(
            f"{identifier[0]}.{identifier[1]} holds only current rows (a layout "
            "before raw kept every version): drop it and the next run syncs the "
            "whole table again",
            tenant=tenant.tenant_id,
            table=table.name,
        )
    return evolve_schema(iceberg_table, tenant, table, schema)


def _partition(table: TableConfig, spec: UpdateSpec) -> None:
    if table.snapshot_key is not None:  # one partition per immutable run
        spec.add_identity(table.snapshot_key)
    elif is_dated(table):  # versions by the day they became valid
        spec.add_field(VALID_FROM, DayTransform(), f"{VALID_FROM}_day")


def _field_names(iceberg_table: Table) -> set[str]:
    return {field.name for field in iceberg_table.schema().fields}


def _refuse_duplicate_keys(
    iceberg_table: Table, data: pa.Table, keys: list[str]
) -> None:
    """A batch holding a key twice cannot be upserted: both rows would land."""
    counts = data.group_by(keys, use_threads=False).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts.column("count_all"), 1))
    if repeated.num_rows:
        sample = repeated.slice(0, 3).select(keys).to_pylist()
        namespace, name = iceberg_table.name()[-2:]
        raise LoadRejected(
            f"cannot merge into {namespace}.{name}: {repeated.num_rows} key(s) of "
            f"{keys} occur more than once in the batch (e.g. {sample}); nothing "
            "was committed",
            table=name,
        )


def _row_count(iceberg_table: Table) -> int:
    return summary_rows(iceberg_table) or 0


def summary_rows(iceberg_table: Table) -> int | None:
    """The rows of the table's current snapshot (every version a raw table
    holds, deletions included) as its summary records them: no data file is
    read. None when there is no snapshot or the summary does not say."""
    snapshot = iceberg_table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return None
    total = snapshot.summary.get("total-records")
    return int(total) if total is not None else None


__all__ = [
    "AUDIT_COLUMNS",
    "LoadResult",
    "LoadRows",
    "as_rows",
    "load_partition",
    "raw_table_exists",
    "summary_rows",
]
