"""Snapshot expiry for raw tables: keep the retention window, never pull a
snapshot from under someone still using it.

Each load adds a snapshot and every commit copies the whole snapshot list into
the new metadata file, so a table that keeps them all gets slower to commit
and to plan every day (the run ledger measured it: `load/ledger.py`). Marts do
not need old snapshots: dbt reads each table's current snapshot, and raw keeps
every version of a row in its rows, not in its snapshots. Old snapshots serve
time travel and a person's rollback only, hence a retention window
(`MaintenanceSettings.retention`, 7 days by default).

A snapshot is expired only when all of these hold:

- it is older than the retention;
- it is no branch's or tag's head (the current snapshot always stays);
- it stopped being current at least `min_age` ago (the timestamp of the next
  snapshot): a dbt build reading it, or a load that planned its rows against
  it, started while it was current, and runs for minutes, not an hour. The
  run ledger's own rule is 10 s (its writes take under a second).

Expiry only edits metadata; the files of expired snapshots are removed by the
orphan sweep (`sweep.py`), which runs after it in the maintenance DAG.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata

from mozart_etl.maintenance.settings import MaintenanceSettings

log = logging.getLogger(__name__)

EXPIRE_ATTEMPTS = 3


class TableExpiry(BaseModel):
    """What expiry did to one table (XCom, the maintenance report)."""

    model_config = ConfigDict(frozen=True)

    table: str
    outcome: Literal["expired", "nothing to do", "deferred"]
    snapshots_before: int
    snapshots_after: int
    expired: int = 0
    oldest_kept_ms: int | None = None
    note: str | None = None


def expirable(
    metadata: TableMetadata, now: datetime, settings: MaintenanceSettings
) -> list[int]:
    """The ids of the snapshots the rules above let go, oldest first."""
    keep_after = _millis(now - settings.retention)
    settled_before = _millis(now - settings.min_age)
    protected = {ref.snapshot_id for ref in metadata.refs.values()}
    snapshots = sorted(metadata.snapshots, key=lambda s: s.timestamp_ms)
    expired: list[int] = []
    for index, snapshot in enumerate(snapshots):
        if snapshot.snapshot_id in protected or snapshot.timestamp_ms >= keep_after:
            continue
        later = snapshots[index + 1 :]
        superseded_at = later[0].timestamp_ms if later else None
        if superseded_at is not None and superseded_at < settled_before:
            expired.append(snapshot.snapshot_id)
    return expired


def expire_table(
    table: Table, name: str, *, settings: MaintenanceSettings, now: datetime
) -> TableExpiry:
    """Expire what `expirable` allows; a commit that races another writer is
    planned again on the new metadata (the rules only ever keep more)."""
    before = len(table.metadata.snapshots)
    note: str | None = None
    for attempt in range(1, EXPIRE_ATTEMPTS + 1):
        table = table.refresh()
        ids = expirable(table.metadata, now, settings)
        if not ids:
            return _result(table, name, "nothing to do", before, 0)
        try:
            table.maintenance.expire_snapshots().by_ids(ids).commit()
        except CommitFailedException as exc:
            note = f"{type(exc).__name__}: {exc}"
            log.warning(
                "snapshot expiry of %s raced a commit (attempt %d of %d): %s",
                name,
                attempt,
                EXPIRE_ATTEMPTS,
                exc,
            )
            continue
        result = _result(table.refresh(), name, "expired", before, len(ids))
        log.info(
            "expired %d snapshot(s) of %s older than %s: %d -> %d snapshots",
            len(ids),
            name,
            settings.retention,
            before,
            result.snapshots_after,
        )
        return result
    return _result(table.refresh(), name, "deferred", before, 0, note)


def _result(
    table: Table,
    name: str,
    outcome: Literal["expired", "nothing to do", "deferred"],
    before: int,
    expired: int,
    note: str | None = None,
) -> TableExpiry:
    snapshots = table.metadata.snapshots
    return TableExpiry(
        table=name,
        outcome=outcome,
        snapshots_before=before,
        snapshots_after=len(snapshots),
        expired=expired,
        oldest_kept_ms=min((s.timestamp_ms for s in snapshots), default=None),
        note=note,
    )


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
