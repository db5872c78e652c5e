"""How a load's rows land in raw: one atomic append, refused when another
writer committed after the load planned it.

Airflow runs a task at least once: a zombie attempt and its retry, two runs of
one day, a backfill beside a scheduled run can load one table at the same
instant. Every load plans against the snapshot it read (the versions raw
lacks, the plan runs it does not hold) and appends exactly those rows. A
concurrent commit makes that plan stale, and PyIceberg's own retry of a
conflicting fast append re-applies the same files onto the newer snapshot:
both attempts' rows would land. Here the retry is refused instead
(`ValidationException`; the load reports a retryable `LoadError`) and the
task's next attempt plans again against the new snapshot, where it finds its
rows already loaded. One writer wins; the table equals a single attempt's.
A compaction (the maintenance DAG) is the exception: it rewrites files and
changes no row, so a plan made before it still holds and the append lands on
top of it instead of costing the task a retry.

A table's creation is atomic too: schema and partition spec in one
create-table commit, so two first loads racing cannot both add the partition
field (the second found the table and failed on a duplicate field).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    TableAlreadyExistsError,
    ValidationException,
)
from pyiceberg.io.pyarrow import (
    _check_pyarrow_schema_compatible,
    _dataframe_to_data_files,
)
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot, ancestors_between_ids
from pyiceberg.table.update.spec import UpdateSpec

log = logging.getLogger(__name__)

MAINTENANCE_PROPERTY = "mozart.maintenance"
"""Snapshot summary property of a commit that rewrites files, not rows."""
COMPACTION = "compaction"


def append_planned(
    iceberg_table: Table,
    slices: Iterable[pa.Table],
    *,
    snapshot_properties: dict[str, str],
    table_properties: dict[str, str] | None = None,
) -> None:
    """Every slice in one fast append (and the table properties in the same
    commit), based on `iceberg_table`'s snapshot: the one the caller planned
    against. Raises ValidationException if another writer committed since.

    Written by hand because PyIceberg writes a stream only to unpartitioned
    tables (apache/iceberg-python#2152): its file writer runs once per slice,
    and the data files of all slices go into one snapshot."""
    written: list[str] = []
    try:
        with iceberg_table.transaction() as tx:
            if table_properties:
                tx.set_properties(table_properties)
            counter = itertools.count(0)  # file names stay unique across slices
            update = tx.update_snapshot(snapshot_properties=snapshot_properties)
            with update.fast_append() as append:
                _refuse_concurrent_commits(append)
                for data in slices:
                    if not data.num_rows:
                        continue
                    _check_pyarrow_schema_compatible(
                        tx.table_metadata.schema(),
                        provided_schema=data.schema,
                        format_version=tx.table_metadata.format_version,
                    )
                    for data_file in _dataframe_to_data_files(
                        table_metadata=tx.table_metadata,
                        df=data,
                        io=iceberg_table.io,
                        write_uuid=append.commit_uuid,
                        counter=counter,
                    ):
                        written.append(data_file.file_path)
                        append.append_data_file(data_file)
    except (CommitFailedException, ValidationException):
        # Both guarantee the commit did not land: the data files are this
        # attempt's alone. PyIceberg removes its manifests, not data files.
        _discard(iceberg_table, written)
        raise


def _discard(iceberg_table: Table, paths: list[str]) -> None:
    """Delete a refused commit's data files (`mozart sweep` removes any left)."""
    for path in paths:
        try:
            iceberg_table.io.delete(path)
        except OSError:
            log.warning("could not delete %s of a refused commit", path, exc_info=True)
    if paths:
        log.info("removed the %d data file(s) of the refused commit", len(paths))


def _refuse_concurrent_commits(append: Any) -> None:
    """Fail the append's commit retry when another writer committed meanwhile.

    PyIceberg 0.12 validates a retried commit through the producer's
    `_validate_concurrency` over its `_commit_window` (the snapshots between
    the one the transaction started from and the branch's head); a fast append
    checks nothing. Private API, by hand: a fast append has no public conflict
    check, and an overwrite's (which has one) would rewrite files instead of
    appending versions."""

    def validate() -> None:
        window = append._commit_window
        if window is None or window.is_empty():
            return
        landed = list(
            ancestors_between_ids(
                window.base.snapshot_id if window.base is not None else None,
                window.head.snapshot_id,
                append._transaction._table.metadata,
            )
        )
        if landed and all(_rewrites_no_rows(snapshot) for snapshot in landed):
            log.info(
                "a compaction committed after this load planned its rows: "
                "the rows are unchanged, the append goes on top of it"
            )
            return
        raise ValidationException(
            "another writer committed to this table after this load planned its rows"
        )

    append._validate_concurrency = validate


def _rewrites_no_rows(snapshot: Snapshot) -> bool:
    summary = snapshot.summary
    return summary is not None and summary.get(MAINTENANCE_PROPERTY) == COMPACTION


def ensure_namespace(catalog: Catalog, namespace: str) -> None:
    """Create `namespace` unless it exists, also when another attempt creates
    it at the same instant: the SQL catalog checks, then inserts, and its
    unique key refuses the second insert with a bare IntegrityError (found by
    the barrier tests), not the NamespaceAlreadyExistsError it handles."""
    try:
        catalog.create_namespace_if_not_exists(namespace)
    except Exception:
        if not catalog.namespace_exists(namespace):
            raise
        log.info("namespace %s was created by another attempt meanwhile", namespace)


def create_table_once(
    catalog: Catalog,
    identifier: tuple[str, str],
    schema: pa.Schema,
    partition: Callable[[UpdateSpec], None] | None = None,
) -> Table:
    """The table, created with its partition spec (`partition` adds its fields)
    in one commit; if another attempt created it first, that one: both derive
    schema and spec from the same config."""
    tx = catalog.create_table_transaction(identifier, schema=schema)
    if partition is not None:
        with tx.update_spec() as spec:
            partition(spec)
    try:
        tx.commit_transaction()
    except (TableAlreadyExistsError, CommitFailedException) as exc:
        # The SQL catalog says "already exists" either way: by its requirement
        # check (CommitFailedException) or its unique key (TableAlreadyExists).
        log.info(
            "%s.%s was created by another attempt meanwhile (%s)", *identifier, exc
        )
    else:
        log.info("created raw table %s.%s", *identifier)
    return catalog.load_table(identifier)


__all__ = [
    "COMPACTION",
    "MAINTENANCE_PROPERTY",
    "append_planned",
    "create_table_once",
    "ensure_namespace",
]
