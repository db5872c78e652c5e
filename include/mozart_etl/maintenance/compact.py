"""Compaction: a raw table's small files rewritten into few, with the same rows.

Every load appends at least one file per partition it touches (a dated table
is partitioned by the day its versions became valid, so a late row adds a file
to an older day; a full refresh appends its changed rows to one unpartitioned
table), so after a few months a table is hundreds of small files that every
dbt build and Trino query opens.

Why by hand: PyIceberg 0.12 (the pinned version) has no compaction: no
`rewrite_data_files`, and `table.maintenance` offers only `expire_snapshots`.
So each partition's small files are read from the current snapshot and
committed back as one overwrite that deletes exactly those files and adds their
rows rewritten. The rows are the stored rows, every version and audit column as
they are (nothing is deduplicated, filtered or re-stamped): the table's content
is the same multiset of rows before and after, and so is every as-of read and
every mart. The rows read are counted against the files' record counts before
anything is committed.

Beside a running load: the overwrite is based on the snapshot it read and keeps
PyIceberg's serializable conflict check (the default isolation level): if a load
committed in between, the commit is refused (`ValidationException`), the
rewritten files are deleted and the compaction starts again from the new
snapshot, up to COMPACT_ATTEMPTS times, then leaves the table for the next run.
If the compaction commits first, the load's own check (`load/commit.py`, which
refuses any other commit after its plan) lets it through: a snapshot marked as
a compaction changed no row, so the load's plan still holds and its append
lands on top of the compacted files, without costing the task a retry. Either
way no row is lost or doubled (tests/maintenance/test_concurrent.py). The
deleted files are named one by one, so even a commit that PyIceberg rebased
onto a concurrent append could not drop that append's files.

The snapshot is an `overwrite`, not Iceberg's `replace` (the operation meant
for compaction): PyIceberg 0.12 refuses to write a `replace` summary
(`update_snapshot_summaries`). The summary property `mozart.maintenance:
compaction` marks it instead.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Hashable
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
from pyiceberg.manifest import DataFile
from pyiceberg.table import FileScanTask, Table
from pyiceberg.table.snapshots import Snapshot

from mozart_etl.core.errors import MozartError
from mozart_etl.load.commit import COMPACTION, MAINTENANCE_PROPERTY

log = logging.getLogger(__name__)

COMPACT_ATTEMPTS = 3
"""A compaction that keeps losing to loads leaves the table for the next run:
the loads matter more, and a day's files more make no difference."""

Outcome = Literal["compacted", "nothing to do", "deferred"]


class CompactionMismatch(MozartError):
    """The rows read back are not the files' record counts: nothing is
    committed, and a retry would read the same files."""


class TableCompaction(BaseModel):
    """What compaction did to one table (XCom, the maintenance report)."""

    model_config = ConfigDict(frozen=True)

    table: str
    outcome: Outcome
    files_before: int
    files_after: int
    files_rewritten: int = 0
    files_written: int = 0
    rows_rewritten: int = 0
    snapshot_id: int | None = None
    attempts: int = 0
    seconds: float = 0.0
    note: str | None = None


def compact_table(
    table: Table, name: str, *, target_bytes: int, min_files: int = 2
) -> TableCompaction:
    """Rewrite each partition's small files (smaller than `target_bytes`) into
    files of about `target_bytes`, in one commit; retried from the table's new
    state when a concurrent commit refuses it."""
    started = time.perf_counter()
    note: str | None = None
    for attempt in range(1, COMPACT_ATTEMPTS + 1):
        table = table.refresh()
        snapshot = table.current_snapshot()
        before = data_files(snapshot)
        bins = _plan(table, snapshot, target_bytes, min_files)
        if not bins:
            return TableCompaction(
                table=name,
                outcome="nothing to do",
                files_before=before,
                files_after=before,
                attempts=attempt,
                seconds=round(time.perf_counter() - started, 3),
            )
        written: list[str] = []
        try:
            rows, new_files = _rewrite(table, bins, written)
            _commit(table, bins, new_files)
        except (CommitFailedException, ValidationException) as exc:
            # Both mean the commit did not land: the new files are ours alone.
            _discard(table, written)
            note = f"{type(exc).__name__}: {exc}"
            log.warning(
                "compaction of %s lost to a concurrent commit (attempt %d of %d): %s",
                name,
                attempt,
                COMPACT_ATTEMPTS,
                exc,
            )
            continue
        after = data_files(table.refresh().current_snapshot())
        result = TableCompaction(
            table=name,
            outcome="compacted",
            files_before=before,
            files_after=after,
            files_rewritten=sum(len(b) for b in bins),
            files_written=len(new_files),
            rows_rewritten=rows,
            snapshot_id=_snapshot_id(table.current_snapshot()),
            attempts=attempt,
            seconds=round(time.perf_counter() - started, 3),
        )
        log.info(
            "compacted %s: %d files rewritten into %d (%d rows), table %d -> %d "
            "data files, snapshot %s, %.2f s",
            name,
            result.files_rewritten,
            result.files_written,
            rows,
            before,
            after,
            result.snapshot_id,
            result.seconds,
        )
        return result
    files = data_files(table.refresh().current_snapshot())
    log.warning("compaction of %s deferred to the next run: %s", name, note)
    return TableCompaction(
        table=name,
        outcome="deferred",
        files_before=files,
        files_after=files,
        attempts=COMPACT_ATTEMPTS,
        seconds=round(time.perf_counter() - started, 3),
        note=note,
    )


def data_files(snapshot: Snapshot | None) -> int:
    """The snapshot's live data files, from its summary (0 for an empty table)."""
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.get("total-data-files") or 0)


def _snapshot_id(snapshot: Snapshot | None) -> int | None:
    return snapshot.snapshot_id if snapshot is not None else None


def _plan(
    table: Table, snapshot: Snapshot | None, target_bytes: int, min_files: int
) -> list[list[FileScanTask]]:
    """Groups of at least `min_files` small files of one partition, each group
    at most about `target_bytes` (largest first, so a group fills up)."""
    if snapshot is None:
        return []
    spec_id = table.spec().spec_id
    partitions: dict[Hashable, list[FileScanTask]] = defaultdict(list)
    for task in table.scan(snapshot_id=snapshot.snapshot_id).plan_files():
        data_file = task.file
        # Files of an older partition spec, files with delete files (PyIceberg
        # writes none; another engine might) and big files stay as they are.
        if data_file.spec_id != spec_id or task.delete_files:
            continue
        if data_file.file_size_in_bytes >= target_bytes:
            continue
        key = tuple(data_file.partition[i] for i in range(len(data_file.partition)))
        partitions[key].append(task)
    bins: list[list[FileScanTask]] = []
    for tasks in partitions.values():
        if len(tasks) < min_files:
            continue
        current: list[FileScanTask] = []
        size = 0
        for task in sorted(tasks, key=lambda t: -t.file.file_size_in_bytes):
            if current and size + task.file.file_size_in_bytes > target_bytes:
                bins.append(current)
                current, size = [], 0
            current.append(task)
            size += task.file.file_size_in_bytes
        bins.append(current)
    return [group for group in bins if len(group) >= min_files]


def _rewrite(
    table: Table, bins: list[list[FileScanTask]], written: list[str]
) -> tuple[int, list[DataFile]]:
    """Each group's rows, as stored, written as new data files (paths appended
    to `written` as they are made, so a refused commit can remove them)."""
    reader = ArrowScan(
        table_metadata=table.metadata,
        io=table.io,
        projected_schema=table.schema(),
        row_filter=AlwaysTrue(),
    )
    write_uuid = uuid.uuid4()
    counter = itertools.count(0)
    new_files: list[DataFile] = []
    rows = 0
    for group in bins:
        data = reader.to_table(group)
        expected = sum(task.file.record_count for task in group)
        if data.num_rows != expected:
            raise CompactionMismatch(
                f"compaction of {'.'.join(table.name())}: read {data.num_rows} "
                f"rows from {len(group)} files holding {expected}; nothing was "
                "committed"
            )
        for data_file in _dataframe_to_data_files(
            table_metadata=table.metadata,
            df=data,
            io=table.io,
            write_uuid=write_uuid,
            counter=counter,
        ):
            written.append(data_file.file_path)
            new_files.append(data_file)
        rows += data.num_rows
    return rows, new_files


def _commit(
    table: Table, bins: list[list[FileScanTask]], new_files: list[DataFile]
) -> None:
    """One overwrite based on the snapshot the groups were read from: delete
    exactly the rewritten files, add the new ones."""
    properties = {MAINTENANCE_PROPERTY: COMPACTION}
    with (
        table.transaction() as tx,
        tx.update_snapshot(snapshot_properties=properties).overwrite() as rewrite,
    ):
        # No row predicate: PyIceberg finds the manifests to rewrite by the
        # deleted files' partitions, and deletes exactly the files named.
        for group in bins:
            for task in group:
                rewrite.delete_data_file(task.file)
        for data_file in new_files:
            rewrite.append_data_file(data_file)


def _discard(table: Table, paths: list[str]) -> None:
    """Delete a refused compaction's new files (`mozart sweep` removes any left)."""
    for path in paths:
        try:
            table.io.delete(path)
        except OSError:
            log.warning("could not delete %s of a refused compaction", path)
    if paths:
        log.info("removed the %d file(s) of the refused compaction", len(paths))
