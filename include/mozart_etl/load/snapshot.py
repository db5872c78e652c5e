"""Snapshot load mode: immutable runs (e.g. APS plan runs), appended once per key.

A `snapshot` table names a `snapshot_key` (e.g. `plan_run_id`). A load appends
the runs it has not seen, in one commit; a run already in raw must come back
identical (then it is skipped: a rerun or backfill commits nothing and the
table keeps its snapshot id). A run that comes back different fails the load
before anything is written, naming the run and how many rows differ: a plan
run is never overwritten or deleted.

Runs are compared on the declared columns only (audit columns change on every
load). Comparison reads the loaded rows of the extract's runs, which are small
(a plan run is thousands of lines, not millions).
"""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import In
from pyiceberg.table import Table

from mozart_etl.config.models import TableConfig
from mozart_etl.core.errors import LoadError
from mozart_etl.load.commit import append_planned

log = logging.getLogger(__name__)

_RowsByKey = dict[tuple[Any, ...], tuple[Any, ...]]
"""A run's rows: primary key → declared values."""


class SnapshotConflict(LoadError):
    """A run already in raw came back with other content: never overwritten,
    so a retry cannot help."""

    terminal = True


def write_snapshots(
    iceberg_table: Table,
    table: TableConfig,
    data: pa.Table,
    properties: dict[str, str],
) -> list[Any]:
    """Append the runs of `data` that raw does not hold yet; returns their keys.

    Raises SnapshotConflict, before any commit, if a run already loaded differs.
    """
    key = table.snapshot_key
    assert key is not None
    keys = pc.unique(data.column(key).combine_chunks()).to_pylist()
    loaded = _loaded_runs(iceberg_table, table, keys)
    differing = {
        run: count
        for run in sorted(loaded, key=str)
        if (count := _rows_differing(table, loaded[run], _run_rows(data, key, run)))
    }
    if differing:
        runs = "; ".join(
            f"{table.name} run {key}={run!r}: {count} row(s) differ"
            for run, count in differing.items()
        )
        raise SnapshotConflict(
            f"{runs} from the run already loaded. A snapshot is immutable: nothing "
            "was written (fix the source, or load the changed run under a new "
            f"{key})",
            table=table.name,
            column=key,
        )
    new = [run for run in keys if run not in loaded]
    for run in sorted(loaded, key=str):
        log.info(
            "%s run %s=%r is already loaded, identical: skipped", table.name, key, run
        )
    if not new:
        return []
    rows = data.filter(
        pc.is_in(data.column(key), value_set=pa.array(new, data.schema.field(key).type))
    )
    # Planned against `iceberg_table`'s snapshot: refused if another attempt
    # appended meanwhile (its retry then finds the runs loaded, identical).
    append_planned(iceberg_table, [rows], snapshot_properties=properties)
    log.info(
        "%s: appended %d run(s) (%d rows): %s", table.name, len(new), rows.num_rows, new
    )
    return new


def _loaded_runs(
    iceberg_table: Table, table: TableConfig, keys: list[Any]
) -> dict[Any, _RowsByKey]:
    """Declared-column rows of the runs among `keys` that raw already holds."""
    key = table.snapshot_key
    assert key is not None
    if not keys or iceberg_table.current_snapshot() is None:
        return {}
    # mypy builds pyiceberg's predicate __init__ from the pydantic fields
    # and misses the (term, literal) one pyiceberg writes.
    existing = iceberg_table.scan(
        row_filter=In(key, keys),  # type: ignore[misc, call-arg, arg-type]
        selected_fields=tuple(table.column_names),
    ).to_arrow()
    return {
        run: _by_primary_key(table, _run_rows(existing, key, run))
        for run in pc.unique(existing.column(key).combine_chunks()).to_pylist()
    }


def _run_rows(rows: pa.Table, key: str, run: Any) -> pa.Table:
    return rows.filter(
        pc.equal(rows.column(key), pa.scalar(run, rows.schema.field(key).type))
    )


def _by_primary_key(table: TableConfig, rows: pa.Table) -> _RowsByKey:
    """primary key → the row's declared values (Python values compare across
    Arrow's string/large_string and chunking)."""
    records = rows.select(table.column_names).to_pylist()
    return {
        tuple(record[c] for c in table.primary_key): tuple(record.values())
        for record in records
    }


def _rows_differing(table: TableConfig, loaded: _RowsByKey, incoming: pa.Table) -> int:
    """Rows present on one side only, or present on both with other values."""
    new = _by_primary_key(table, incoming)
    return sum(1 for pk in loaded.keys() | new.keys() if loaded.get(pk) != new.get(pk))
