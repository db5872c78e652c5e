"""Extract from a real SQLite file into Parquet: types, windows, filters, manifest.

SQLite sources follow the project convention: instants as fixed-width UTC text,
decimals as text, booleans as 0/1, dates as ISO text.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mozart_etl.config.constants import SourceType
from mozart_etl.config.models import TenantConfig
from mozart_etl.core.calendar import ProductionDay, production_day
from mozart_etl.core.errors import SourceError
from mozart_etl.core.lake import MANIFEST, ExtractManifest, Lake, latest_manifest
from mozart_etl.extract.connectors import Connector, Credentials, connector_for
from mozart_etl.extract.extractor import extract_table
from mozart_etl.extract.query import Window
from tests.helpers import (
    TYPED_ROWS,
    assert_typed_roundtrip,
    day_window,
    make_tenant,
    read_extract,
    seoul_day,
    sqlite_source,
    table_dict,
    typed_table,
    utc,
    write_sqlite,
)

DAY = date(2026, 11, 15)
# Production day 2026-11-15 in Asia/Seoul is [11-14 15:00, 11-15 15:00) UTC.
START, END = utc(2026, 11, 14, 15), utc(2026, 11, 15, 15)
US = timedelta(microseconds=1)

TYPED_DDL = """
CREATE TABLE typed (
    id INTEGER PRIMARY KEY, label TEXT, big INTEGER, small INTEGER, ratio REAL,
    flag INTEGER, day TEXT, local_ts TEXT, instant TEXT, amount TEXT,
    "order" TEXT, "lot id" TEXT
)"""

EVENT_COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]
EVENT_DDL = "CREATE TABLE events (id INTEGER, updated_at TEXT)"
# id → cursor: just outside, on and inside both window edges, and far away.
EVENTS = {
    1: START - US,
    2: START,
    3: utc(2026, 11, 15, 3, 4, 5),
    4: END - US,
    5: END,
    6: utc(2026, 10, 1),
    7: utc(2026, 12, 1),
}


def _connector(path: Path) -> Connector:
    return connector_for(SourceType.SQLITE, Credentials(database=str(path)))


def _tenant(tmp_path: Path, tables: list[dict[str, Any]], **kw: Any) -> TenantConfig:
    source = sqlite_source(tmp_path / "source.sqlite")
    return make_tenant(tmp_path, tables, source=source, **kw)


def _events_source(tmp_path: Path) -> Path:
    path = tmp_path / "source.sqlite"
    rows = [{"id": key, "updated_at": at} for key, at in EVENTS.items()]
    write_sqlite(path, EVENT_DDL, "events", rows)
    return path


def _extract_ids(
    tmp_path: Path, mode: str, *, initial: bool = False, day: date = DAY
) -> list[int]:
    path = _events_source(tmp_path)
    events = table_dict("events", EVENT_COLUMNS, mode=mode, cursor="updated_at")
    tenant = _tenant(tmp_path, [events])
    manifest = extract_table(
        tenant,
        tenant.table("events"),
        seoul_day(day),
        _connector(path),
        window=day_window(tenant.table("events"), seoul_day(day), initial=initial),
    )
    return sorted(read_extract(manifest).column("id").to_pylist())


def test_every_declared_type_round_trips_exactly(tmp_path: Path) -> None:
    path = tmp_path / "source.sqlite"
    write_sqlite(path, TYPED_DDL, "typed", TYPED_ROWS)
    tenant = _tenant(tmp_path, [typed_table()])

    manifest = extract_table(
        tenant,
        tenant.table("typed"),
        seoul_day(DAY),
        _connector(path),
        window=day_window(tenant.table("typed"), seoul_day(DAY)),
    )

    assert_typed_roundtrip(read_extract(manifest))


def test_full_refresh_reads_every_row_whatever_the_day(tmp_path: Path) -> None:
    assert _extract_ids(tmp_path, "full_refresh") == [1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize("mode", ["incremental", "merge"])
def test_window_includes_its_start_and_excludes_its_end(
    tmp_path: Path, mode: str
) -> None:
    assert _extract_ids(tmp_path, mode) == [2, 3, 4]


def test_initial_extract_reads_all_history_before_the_window_end(
    tmp_path: Path,
) -> None:
    assert _extract_ids(tmp_path, "incremental", initial=True) == [1, 2, 3, 4, 6]


def _events_in(tmp_path: Path, window: Window | None) -> ExtractManifest:
    path = _events_source(tmp_path)
    events = table_dict("events", EVENT_COLUMNS, mode="merge", cursor="updated_at")
    tenant = _tenant(tmp_path, [events])
    table = tenant.table("events")
    return extract_table(tenant, table, seoul_day(DAY), _connector(path), window=window)


def test_a_sync_window_reads_from_its_start_with_no_upper_bound(
    tmp_path: Path,
) -> None:
    """A sync reads from raw's mark on, to the source's now: rows whose cursor
    lies past the production day's end (5 on it, 7 weeks later) are read too."""
    manifest = _events_in(tmp_path, Window(start=START))

    assert sorted(read_extract(manifest).column("id").to_pylist()) == [2, 3, 4, 5, 7]
    assert (manifest.window_start, manifest.window_end) == (START, None)


def test_no_window_reads_the_whole_table(tmp_path: Path) -> None:
    """A table raw does not hold yet is read whole, whatever the cursors."""
    manifest = _events_in(tmp_path, None)

    assert sorted(read_extract(manifest).column("id").to_pylist()) == list(EVENTS)
    assert (manifest.window_start, manifest.window_end) == (None, None)


def test_next_day_starts_exactly_where_the_previous_ended(tmp_path: Path) -> None:
    assert _extract_ids(tmp_path, "incremental", day=DAY + timedelta(days=1)) == [5]


def _cursor_ids(
    tmp_path: Path, kind: str, cursors: dict[int, Any], day: ProductionDay
) -> list[int]:
    path = tmp_path / "source.sqlite"
    rows = [{"id": key, "at": at} for key, at in cursors.items()]
    write_sqlite(path, "CREATE TABLE marks (id INTEGER, at TEXT)", "marks", rows)
    columns = [{"name": "id", "type": "bigint"}, {"name": "at", "type": kind}]
    marks = table_dict("marks", columns, mode="incremental", cursor="at")
    tenant = _tenant(tmp_path, [marks])
    manifest = extract_table(
        tenant,
        tenant.table("marks"),
        day,
        _connector(path),
        window=day_window(tenant.table("marks"), day),
    )
    return sorted(read_extract(manifest).column("id").to_pylist())


def test_naive_timestamp_cursor_is_compared_as_utc_wall_time(tmp_path: Path) -> None:
    wall = {key: at.replace(tzinfo=None) for key, at in EVENTS.items()}

    assert _cursor_ids(tmp_path, "timestamp", wall, seoul_day(DAY)) == [2, 3, 4]


@pytest.mark.parametrize("timezone", ["Asia/Seoul", "UTC"])
def test_date_cursor_reads_the_days_whose_utc_midnight_is_in_the_window(
    tmp_path: Path, timezone: str
) -> None:
    days = {1: DAY - timedelta(days=1), 2: DAY, 3: DAY + timedelta(days=1)}

    # Seoul: [11-14 15:00, 11-15 15:00) UTC; UTC: [11-15 00:00, 11-16 00:00).
    assert _cursor_ids(tmp_path, "date", days, production_day(DAY, timezone)) == [2]


def test_empty_window_writes_one_file_with_the_declared_schema(
    tmp_path: Path,
) -> None:
    path = tmp_path / "source.sqlite"
    write_sqlite(path, TYPED_DDL, "typed", TYPED_ROWS)
    tenant = _tenant(tmp_path, [typed_table(mode="incremental", cursor="instant")])

    manifest = extract_table(
        tenant,
        tenant.table("typed"),
        seoul_day(date(2026, 1, 1)),
        _connector(path),
        window=day_window(tenant.table("typed"), seoul_day(date(2026, 1, 1))),
    )

    assert manifest.rows == 0
    assert len(manifest.files) == 1
    assert manifest.files[0].rows == 0
    data = pq.read_table(manifest.files[0].path)
    assert data.num_rows == 0
    assert data.schema.names == list(TYPED_ROWS[0])
    assert data.schema.field("amount").type == pa.decimal128(10, 2)
    assert data.schema.field("instant").type == pa.timestamp("us", tz="UTC")


def test_tenant_filter_binds_the_param_value(tmp_path: Path) -> None:
    path = tmp_path / "source.sqlite"
    sneaky = "P1' OR '1'='1"
    rows = [
        {"id": 1, "plant": sneaky},
        {"id": 2, "plant": "P1"},
        {"id": 3, "plant": "P2"},
        {"id": 4, "plant": None},
    ]
    write_sqlite(path, "CREATE TABLE lots (id INTEGER, plant TEXT)", "lots", rows)
    columns = [{"name": "id", "type": "bigint"}, {"name": "plant", "type": "string"}]
    lots = table_dict(
        "lots", columns, tenant_filter={"column": "plant", "param": "plant_code"}
    )

    def ids(value: str) -> list[int]:
        tenant = _tenant(tmp_path, [lots], params={"plant_code": value})
        manifest = extract_table(
            tenant,
            tenant.table("lots"),
            seoul_day(DAY),
            _connector(path),
            window=day_window(tenant.table("lots"), seoul_day(DAY)),
        )
        return sorted(read_extract(manifest).column("id").to_pylist())

    assert ids(sneaky) == [1]
    assert ids("P1") == [2]
    assert ids("P9") == []


def test_query_source_with_cursor_window(tmp_path: Path) -> None:
    path = tmp_path / "source.sqlite"
    rows = [
        {"id": 1, "qty": 5, "at": START - US},
        {"id": 2, "qty": 7, "at": START},
        {"id": 3, "qty": 9, "at": END - US},
        {"id": 4, "qty": 11, "at": END},
    ]
    ddl = "CREATE TABLE results (id INTEGER, qty INTEGER, at TEXT)"
    write_sqlite(path, ddl, "results", rows)
    query = "SELECT id, qty * 10 AS qty_x10, at AS measured_at FROM results"
    columns = [
        {"name": "id", "type": "bigint"},
        {"name": "qty_x10", "type": "bigint"},
        {"name": "measured_at", "type": "timestamptz"},
    ]
    results = table_dict(
        "results",
        columns,
        source={"query": query},
        mode="incremental",
        cursor="measured_at",
    )
    tenant = _tenant(tmp_path, [results])

    manifest = extract_table(
        tenant,
        tenant.table("results"),
        seoul_day(DAY),
        _connector(path),
        window=day_window(tenant.table("results"), seoul_day(DAY)),
    )

    assert read_extract(manifest).sort_by("id").to_pylist() == [
        {"id": 2, "qty_x10": 70, "measured_at": START},
        {"id": 3, "qty_x10": 90, "measured_at": END - US},
    ]


def test_manifest_describes_the_extract(tmp_path: Path) -> None:
    path = _events_source(tmp_path)
    events = table_dict("events", EVENT_COLUMNS, mode="merge", cursor="updated_at")
    tenant = _tenant(tmp_path, [events])
    extract_id = "20261115T150000000000Z-abcdef01"

    manifest = extract_table(
        tenant,
        tenant.table("events"),
        seoul_day(DAY),
        _connector(path),
        extract_id=extract_id,
        batch_rows=2,
        window=day_window(tenant.table("events"), seoul_day(DAY)),
    )

    folder = (
        tmp_path / "lake" / "acme" / "events" / f"day={DAY}" / f"extract={extract_id}"
    )
    assert manifest.folder == str(folder)
    assert manifest.tenant_id == "acme"
    assert manifest.table == "events"
    assert manifest.production_day == DAY
    assert manifest.extract_id == extract_id
    assert (manifest.window_start, manifest.window_end) == (START, END)
    assert manifest.columns == {"id": "bigint", "updated_at": "timestamptz"}
    assert manifest.rows == 3
    assert [f.path for f in manifest.files] == [str(folder / "part-00000.parquet")]
    assert [f.rows for f in manifest.files] == [3]
    part = folder / "part-00000.parquet"
    assert manifest.files[0].bytes == part.stat().st_size
    # Batches of two rows, gathered into one row group.
    assert pq.ParquetFile(part).metadata.num_row_groups == 1
    assert manifest.started_at <= manifest.finished_at
    lake = Lake(tenant)
    assert lake.read_manifest(str(folder / MANIFEST)) == manifest
    assert latest_manifest(lake, "events", DAY) == manifest


def test_latest_manifest_is_the_newest_complete_extract(tmp_path: Path) -> None:
    path = _events_source(tmp_path)
    events = table_dict("events", EVENT_COLUMNS)
    tenant = _tenant(tmp_path, [events])
    table, day, connector = tenant.table("events"), seoul_day(DAY), _connector(path)

    extract_table(
        tenant,
        table,
        day,
        connector,
        extract_id="20261115T01-a",
        window=day_window(table, day),
    )
    newest = extract_table(
        tenant,
        table,
        day,
        connector,
        extract_id="20261115T02-b",
        window=day_window(table, day),
    )
    # An aborted attempt (no manifest) sorts last but is not read.
    Lake(tenant).make_dirs(Lake(tenant).extract_folder("events", DAY, "20261115T03-c"))

    assert latest_manifest(Lake(tenant), "events", DAY) == newest


def test_missing_table_is_a_source_error_naming_tenant_and_table(
    tmp_path: Path,
) -> None:
    path = _events_source(tmp_path)
    lots = table_dict("lots", EVENT_COLUMNS)
    tenant = _tenant(tmp_path, [lots])

    with pytest.raises(SourceError) as info:
        extract_table(
            tenant,
            tenant.table("lots"),
            seoul_day(DAY),
            _connector(path),
            extract_id="x1",
            window=day_window(tenant.table("lots"), seoul_day(DAY)),
        )

    assert (info.value.tenant, info.value.table) == ("acme", "lots")
    assert str(info.value) == (
        f"[tenant=acme table=lots] source table 'lots' does not exist in "
        f"sqlite local/{path}"
    )
    assert info.value.terminal  # a retry cannot create the table
    # The aborted attempt left no manifest, so no later stage can pick it up.
    folder = Path(Lake(tenant).extract_folder("lots", DAY, "x1"))
    assert not (folder / MANIFEST).exists()
    with pytest.raises(FileNotFoundError):
        latest_manifest(Lake(tenant), "lots", DAY)


def test_value_that_does_not_fit_its_type_names_the_column(tmp_path: Path) -> None:
    path = tmp_path / "source.sqlite"
    rows = [{"id": 1, "qty": "12"}, {"id": 2, "qty": "twelve"}]
    write_sqlite(path, "CREATE TABLE lots (id INTEGER, qty TEXT)", "lots", rows)
    columns = [{"name": "id", "type": "bigint"}, {"name": "qty", "type": "bigint"}]
    tenant = _tenant(tmp_path, [table_dict("lots", columns)])

    with pytest.raises(SourceError) as info:
        extract_table(
            tenant,
            tenant.table("lots"),
            seoul_day(DAY),
            _connector(path),
            window=day_window(tenant.table("lots"), seoul_day(DAY)),
        )

    assert (info.value.table, info.value.column) == ("lots", "qty")
    assert "does not fit the declared type int64" in str(info.value)


def test_manifest_records_the_source_catalog(tmp_path: Path) -> None:
    path = tmp_path / "source.sqlite"
    write_sqlite(path, TYPED_DDL, "typed", TYPED_ROWS)
    tenant = _tenant(tmp_path, [typed_table()])

    manifest = extract_table(
        tenant,
        tenant.table("typed"),
        seoul_day(DAY),
        _connector(path),
        window=day_window(tenant.table("typed"), seoul_day(DAY)),
    )

    # SQLite's declared types; its text columns hold dates, instants, decimals.
    assert manifest.source_columns == {
        "id": "int",
        "label": "string",
        "big": "int",
        "small": "int",
        "ratio": "double",
        "flag": "int",
        "day": "string",
        "local_ts": "string",
        "instant": "string",
        "amount": "string",
        "order": "string",
        "lot id": "string",
    }
