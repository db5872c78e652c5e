"""Raw keeps every captured version of a row: which rows a sync appends.

A raw table (every mode but `snapshot`) is a log of versions: the source's
columns, then `_mozart_valid_from` (the UTC instant the version became valid:
the row's cursor, or the capture instant for a table the source does not
date, such as a full-refresh master) and `_mozart_deleted` (the version that
closes a row deleted in the source). A version stays valid until the next
version of its key; nothing is ever rewritten, so

- the same data extracted twice adds nothing (a version is known by its key
  and `_mozart_valid_from`; an undated row also by its content),
- an older extract loaded late (a cleared old day) adds only the versions it
  alone saw, and never becomes current over newer ones,
- any day can be computed as of its end (`dbt/mozart_core/macros/as_of.sql`).

The comparisons run in DuckDB over Arrow (by row position, so the appended
rows keep the extract's exact Arrow types): they are set operations on keys,
which pyarrow's joins cannot express with `IS NOT DISTINCT FROM`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import GreaterThanOrEqual
from pyiceberg.table import Table

from mozart_etl.config.constants import ColumnType, LoadMode
from mozart_etl.config.models import SoftDelete, TableConfig
from mozart_etl.core.duck import duckdb_cursor
from mozart_etl.core.identifiers import quote_identifier

log = logging.getLogger(__name__)

VALID_FROM = "_mozart_valid_from"
DELETED = "_mozart_deleted"
VERSION_COLUMNS = (VALID_FROM, DELETED)
_POSITION = "_mozart_position"
_UTC_MICROS = pa.timestamp("us", tz="UTC")


def is_versioned(table: TableConfig) -> bool:
    """Plan runs (`snapshot`) are immutable whole runs; other tables keep versions."""
    return table.mode != LoadMode.SNAPSHOT


def is_dated(table: TableConfig) -> bool:
    """Whether the source dates each version (its cursor); else the capture does."""
    return table.cursor is not None and table.mode != LoadMode.FULL_REFRESH


def with_version_columns(
    rows: pa.Table, table: TableConfig, zone: str, captured_at: datetime
) -> pa.Table:
    """`rows` with `_mozart_valid_from` and `_mozart_deleted`."""
    captured = pa.scalar(captured_at, _UTC_MICROS)
    if is_dated(table):
        assert table.cursor is not None
        kind = table.column(table.cursor).type
        valid = instants(rows.column(table.cursor), kind, zone).fill_null(captured)
    else:
        valid = pa.repeat(captured, rows.num_rows)
    deleted = _soft_deleted(rows, table.deletes)
    return rows.append_column(VALID_FROM, valid).append_column(DELETED, deleted)


def instants(column: pa.ChunkedArray, kind: ColumnType, zone: str) -> pa.ChunkedArray:
    """A cursor column as UTC instants: naive wall times and dates are read in
    the source's zone (`calendar.instant_of` for one value); an ambiguous wall
    time as its first occurrence, a nonexistent one (spring forward) as the
    instant the clock jumped to."""
    if kind == ColumnType.TIMESTAMPTZ:
        return column.cast(_UTC_MICROS)
    naive = column.cast(pa.timestamp("us"))
    local = pc.assume_timezone(
        naive, zone, ambiguous="earliest", nonexistent="earliest"
    )
    return local.cast(_UTC_MICROS)


def _soft_deleted(rows: pa.Table, deletes: object) -> pa.Array:
    if not isinstance(deletes, SoftDelete):
        return pa.repeat(pa.scalar(False), rows.num_rows)
    column = rows.column(deletes.column)
    marks = pa.array(deletes.values).cast(column.type)
    return pc.is_in(column, value_set=marks).fill_null(False).combine_chunks()


def new_versions(
    raw: Table, table: TableConfig, incoming: pa.Table, *, live: pa.Table | None
) -> pa.Table:
    """The rows of `incoming` (stamped with version columns) that raw lacks.

    A dated table compares `(key, _mozart_valid_from)` with raw's versions from
    the earliest incoming instant on (partition pruning keeps this small); an
    undated one compares each row's content with its key's `live` version."""
    if not incoming.num_rows:
        return incoming
    keys = list(table.primary_key)
    with duckdb_cursor() as con:
        con.register("incoming", _positioned(incoming))
        if is_dated(table):
            earliest = pc.min(incoming.column(VALID_FROM)).as_py()
            # mypy builds pyiceberg's predicate __init__ from the pydantic fields
            # and misses the (term, literal) one pyiceberg writes.
            known = raw.scan(
                row_filter=GreaterThanOrEqual(VALID_FROM, earliest.isoformat()),  # type: ignore[misc, call-arg, arg-type]
                selected_fields=(*keys, VALID_FROM),
            ).to_arrow()
            con.register("known", known)
            match = _equal(["i", "k"], [*keys, VALID_FROM])
        else:
            assert live is not None
            con.register("known", live)
            match = _equal(["i", "k"], [*keys, *table.column_names, DELETED])
        positions = con.sql(
            f"select i.{_POSITION} from incoming as i "
            f"where not exists (select 1 from known as k where {match}) "
            f"order by i.{_POSITION}"
        ).to_arrow_table()
    fresh = incoming.take(positions.column(0))
    log.info(
        "%s: %d of %d extracted row(s) are new versions",
        table.name,
        fresh.num_rows,
        incoming.num_rows,
    )
    return fresh


def live_rows(
    raw: Table, table: TableConfig, *, columns: Iterable[str] = ()
) -> pa.Table:
    """Raw's current state: each key's latest version, unless it is a deletion.

    `columns` narrows what is read besides the key and version columns (all
    columns when empty)."""
    keys = list(table.primary_key)
    wanted = (
        list(dict.fromkeys([*keys, *columns, *VERSION_COLUMNS])) if columns else None
    )
    data = (
        raw.scan(selected_fields=tuple(wanted)).to_arrow()
        if wanted
        else raw.scan().to_arrow()
    )
    return latest_per_key(data, keys)


def latest_per_key(versions: pa.Table, keys: list[str]) -> pa.Table:
    """Each key's latest version (ties: the later load), deletions dropped."""
    if not versions.num_rows:
        return versions
    order = f"{quote_identifier(VALID_FROM)} desc"
    if "_mozart_loaded_at" in versions.column_names:
        order += f", {quote_identifier('_mozart_loaded_at')} desc"
    partition = ", ".join(quote_identifier(key) for key in keys)
    with duckdb_cursor() as con:
        con.register("versions", _positioned(versions))
        positions = con.sql(
            f"select {_POSITION} from ("
            f"  select {_POSITION}, {quote_identifier(DELETED)} as deleted, "
            f"  row_number() over "
            f"  (partition by {partition} order by {order}) as latest from versions"
            f") where latest = 1 and not deleted order by {_POSITION}"
        ).to_arrow_table()
    return versions.take(positions.column(0))


def closed_rows(
    live: pa.Table, present_keys: pa.Table, keys: list[str], captured_at: datetime
) -> pa.Table:
    """Deletion versions for the live rows whose key the source no longer has:
    each a copy of its last version, deleted from `captured_at` on."""
    if not live.num_rows:
        return live
    with duckdb_cursor() as con:
        con.register("live", _positioned(live))
        con.register("present", present_keys.select(keys))
        match = _equal(["l", "p"], keys)
        positions = con.sql(
            f"select l.{_POSITION} from live as l where not exists "
            f"(select 1 from present as p where {match}) order by l.{_POSITION}"
        ).to_arrow_table()
    gone = live.take(positions.column(0))
    if not gone.num_rows:
        return gone
    log.info("%d row(s) are gone from the source: closing them", gone.num_rows)
    captured = pa.repeat(pa.scalar(captured_at, _UTC_MICROS), gone.num_rows)
    gone = gone.set_column(
        gone.schema.get_field_index(VALID_FROM),
        VALID_FROM,
        captured.cast(gone.schema.field(VALID_FROM).type),
    )
    return gone.set_column(
        gone.schema.get_field_index(DELETED),
        DELETED,
        pa.repeat(pa.scalar(True), gone.num_rows),
    )


def _positioned(data: pa.Table) -> pa.Table:
    return data.append_column(_POSITION, pa.array(range(data.num_rows), pa.int64()))


def _equal(aliases: list[str], columns: Iterable[str]) -> str:
    left, right = aliases
    return " and ".join(
        f"{left}.{quote_identifier(name)} is not distinct from "
        f"{right}.{quote_identifier(name)}"
        for name in columns
    )


__all__ = [
    "DELETED",
    "VALID_FROM",
    "VERSION_COLUMNS",
    "closed_rows",
    "instants",
    "is_dated",
    "is_versioned",
    "latest_per_key",
    "live_rows",
    "new_versions",
    "with_version_columns",
]
