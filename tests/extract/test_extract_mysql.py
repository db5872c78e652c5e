"""Extract from a real MariaDB/MySQL database (created and dropped per test).

Instants live in TIMESTAMP columns, written here from a session in +09:00 so a
reader that ignores the session time zone gets them wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pymysql
import pytest
import sqlalchemy as sa

from mozart_etl.config.constants import SourceType
from mozart_etl.config.models import TenantConfig
from mozart_etl.core.errors import SourceError
from mozart_etl.core.lake import Lake
from mozart_etl.extract.connectors import Connector, Credentials, connector_for
from mozart_etl.extract.extractor import extract_table
from mozart_etl.extract.query import Window
from tests.helpers import (
    KST,
    MYSQL_HOST,
    MYSQL_PORT,
    TYPED_ROWS,
    Row,
    assert_typed_roundtrip,
    day_window,
    expected_typed_schema,
    make_tenant,
    mysql_source,
    read_extract,
    seoul_day,
    table_dict,
    typed_table,
    utc,
)

DAY = date(2026, 11, 15)
START, END = utc(2026, 11, 14, 15), utc(2026, 11, 15, 15)
US = timedelta(microseconds=1)
PASSWORD = "S3cr3t-Pa55"

TYPED_DDL = """
CREATE TABLE typed (
    id BIGINT PRIMARY KEY, label VARCHAR(100), big BIGINT, small INT,
    ratio DOUBLE, flag BOOLEAN, day DATE, local_ts DATETIME(6),
    instant TIMESTAMP(6) NULL, amount DECIMAL(10, 2), `order` VARCHAR(20),
    `lot id` VARCHAR(20)
) CHARACTER SET utf8mb4"""

EVENT_COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "plant", "type": "string"},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]
EVENTS = {
    1: START - US,
    2: START,
    3: utc(2026, 11, 15, 3, 4, 5),
    4: END - US,
    5: END,
    6: utc(2026, 10, 1),
    7: utc(2026, 12, 1),
}


def _seoul_wall_time(value: Any) -> Any:
    """Aware datetimes as the +09:00 session writes them into TIMESTAMP."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(KST).replace(tzinfo=None)
    return value


def _run(database: str, sql: str, rows: Sequence[Sequence[Any]] = ()) -> None:
    conn = pymysql.connect(
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        user="root",
        password="",
        database=database,
        charset="utf8mb4",
        autocommit=True,
        init_command="SET time_zone = '+09:00'",
    )
    try:
        with conn.cursor() as cursor:
            if rows:
                cursor.executemany(sql, [list(row) for row in rows])
            else:
                cursor.execute(sql)
    finally:
        conn.close()


def _insert(database: str, table: str, rows: Sequence[Row]) -> None:
    names = list(rows[0])
    columns = ", ".join(f"`{name}`" for name in names)
    marks = ", ".join("%s" for _ in names)
    values = [[_seoul_wall_time(row[name]) for name in names] for row in rows]
    _run(database, f"INSERT INTO {table} ({columns}) VALUES ({marks})", values)


def _connector(database: str, user: str = "root", password: str = "") -> Connector:
    credentials = Credentials(
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        database=database,
        user=user,
        password=password or None,
    )
    return connector_for(SourceType.MYSQL, credentials)


def _tenant(
    tmp_path: Path,
    database: str,
    tables: list[dict[str, Any]],
    params: dict[str, str | int] | None = None,
) -> TenantConfig:
    params = params or {"plant": "P1"}
    return make_tenant(tmp_path, tables, source=mysql_source(database), params=params)


def _events(database: str) -> None:
    ddl = "CREATE TABLE events (id BIGINT, plant VARCHAR(40), updated_at TIMESTAMP(6))"
    _run(database, ddl)
    plants = {1: "P1", 2: "P1", 3: "P2", 4: "P1", 5: "P1", 6: "P1", 7: "P1"}
    rows = [
        {"id": key, "plant": plants[key], "updated_at": at}
        for key, at in EVENTS.items()
    ]
    _insert(database, "events", rows)


def _event_ids(
    tmp_path: Path,
    database: str,
    *,
    initial: bool = False,
    sync_from: datetime | None = None,
) -> list[int]:
    """The ids the extract reads: the day's window (or all history before its
    end: `initial`), or a sync's open-ended window from `sync_from`."""
    events = table_dict(
        "events", EVENT_COLUMNS, mode="incremental", cursor="updated_at"
    )
    tenant = _tenant(tmp_path, database, [events])
    manifest = extract_table(
        tenant,
        tenant.table("events"),
        seoul_day(DAY),
        _connector(database),
        window=(
            Window(start=sync_from)
            if sync_from is not None
            else day_window(tenant.table("events"), seoul_day(DAY), initial=initial)
        ),
    )
    return sorted(read_extract(manifest).column("id").to_pylist())


def test_every_declared_type_round_trips_exactly(tmp_path: Path, mysql_db: str) -> None:
    _run(mysql_db, TYPED_DDL)
    _insert(mysql_db, "typed", TYPED_ROWS)
    tenant = _tenant(tmp_path, mysql_db, [typed_table()])

    manifest = extract_table(
        tenant,
        tenant.table("typed"),
        seoul_day(DAY),
        _connector(mysql_db),
        window=day_window(tenant.table("typed"), seoul_day(DAY)),
    )

    assert manifest.rows == len(TYPED_ROWS)
    assert_typed_roundtrip(read_extract(manifest))


def test_connector_reads_in_utc_whatever_the_server_zone(mysql_db: str) -> None:
    engine = _connector(mysql_db).engine()
    try:
        with engine.connect() as conn:
            zone = conn.execute(sa.text("SELECT @@session.time_zone")).scalar_one()
    finally:
        engine.dispose()

    assert zone == "+00:00"


def test_window_includes_its_start_and_excludes_its_end(
    tmp_path: Path, mysql_db: str
) -> None:
    _events(mysql_db)

    assert _event_ids(tmp_path, mysql_db) == [2, 3, 4]


def test_initial_extract_reads_all_history_before_the_window_end(
    tmp_path: Path, mysql_db: str
) -> None:
    _events(mysql_db)

    assert _event_ids(tmp_path, mysql_db, initial=True) == [1, 2, 3, 4, 6]


def test_a_sync_window_has_no_upper_bound(tmp_path: Path, mysql_db: str) -> None:
    """A sync reads from raw's mark to the source's now: rows past the
    production day's end (5 on it, 7 weeks later) are read too."""
    _events(mysql_db)

    assert _event_ids(tmp_path, mysql_db, sync_from=START) == [2, 3, 4, 5, 7]


def test_empty_window_writes_one_empty_file_with_the_declared_schema(
    tmp_path: Path, mysql_db: str
) -> None:
    _run(mysql_db, TYPED_DDL)
    _insert(mysql_db, "typed", TYPED_ROWS)
    typed = typed_table(mode="incremental", cursor="instant")
    tenant = _tenant(tmp_path, mysql_db, [typed])

    manifest = extract_table(
        tenant,
        tenant.table("typed"),
        seoul_day(date(2026, 1, 1)),
        _connector(mysql_db),
        window=day_window(tenant.table("typed"), seoul_day(date(2026, 1, 1))),
    )

    assert (manifest.rows, [f.rows for f in manifest.files]) == (0, [0])
    data = pq.read_table(manifest.files[0].path)
    assert (data.num_rows, data.schema) == (0, expected_typed_schema())


def test_tenant_filter_value_is_bound_not_pasted(tmp_path: Path, mysql_db: str) -> None:
    sneaky = "P1' OR '1'='1"
    _run(mysql_db, "CREATE TABLE `shared lots` (id BIGINT, `plant code` VARCHAR(40))")
    rows = [
        {"id": 1, "plant code": sneaky},
        {"id": 2, "plant code": "P1"},
        {"id": 3, "plant code": "P2"},
    ]
    _insert(mysql_db, "`shared lots`", rows)
    columns = [
        {"name": "id", "type": "bigint"},
        {"name": "plant code", "type": "string"},
    ]
    lots = table_dict(
        "lots",
        columns,
        source={"table": "shared lots"},
        tenant_filter={"column": "plant code", "param": "plant"},
    )
    tenant = _tenant(tmp_path, mysql_db, [lots], params={"plant": sneaky})

    manifest = extract_table(
        tenant,
        tenant.table("lots"),
        seoul_day(DAY),
        _connector(mysql_db),
        window=day_window(tenant.table("lots"), seoul_day(DAY)),
    )

    assert read_extract(manifest).to_pylist() == [{"id": 1, "plant code": sneaky}]


def test_tenant_filter_and_window_together(tmp_path: Path, mysql_db: str) -> None:
    _events(mysql_db)
    events = table_dict(
        "events",
        EVENT_COLUMNS,
        mode="merge",
        cursor="updated_at",
        tenant_filter={"column": "plant", "param": "plant"},
    )
    tenant = _tenant(tmp_path, mysql_db, [events])

    manifest = extract_table(
        tenant,
        tenant.table("events"),
        seoul_day(DAY),
        _connector(mysql_db),
        window=day_window(tenant.table("events"), seoul_day(DAY)),
    )

    got = sorted(read_extract(manifest).to_pylist(), key=lambda row: row["id"])
    assert got == [
        {"id": 2, "plant": "P1", "updated_at": START},
        {"id": 4, "plant": "P1", "updated_at": END - US},
    ]


def test_query_source(tmp_path: Path, mysql_db: str) -> None:
    _events(mysql_db)
    query = (
        "SELECT plant, count(*) AS events, max(updated_at) AS last_at "
        "FROM events WHERE id <> 7 GROUP BY plant"
    )
    columns = [
        {"name": "plant", "type": "string"},
        {"name": "events", "type": "bigint"},
        {"name": "last_at", "type": "timestamptz"},
    ]
    summary = table_dict(
        "summary", columns, primary_key=["plant"], source={"query": query}
    )
    tenant = _tenant(tmp_path, mysql_db, [summary])

    manifest = extract_table(
        tenant,
        tenant.table("summary"),
        seoul_day(DAY),
        _connector(mysql_db),
        window=day_window(tenant.table("summary"), seoul_day(DAY)),
    )

    got = sorted(read_extract(manifest).to_pylist(), key=lambda row: row["plant"])
    assert got == [
        {"plant": "P1", "events": 5, "last_at": END},
        {"plant": "P2", "events": 1, "last_at": EVENTS[3]},
    ]
    assert manifest.rows == 2
    assert manifest.folder.startswith(
        Lake(tenant).day_folder("summary", DAY) + "/extract="
    )
    assert Path(manifest.files[0].path).is_file()


def test_wrong_credentials_do_not_leak_the_password(
    tmp_path: Path, mysql_db: str
) -> None:
    tenant = _tenant(tmp_path, mysql_db, [table_dict("events", EVENT_COLUMNS)])
    connector = _connector(mysql_db, user="mozart_nobody", password=PASSWORD)

    with pytest.raises(SourceError) as info:
        extract_table(
            tenant,
            tenant.table("events"),
            seoul_day(DAY),
            connector,
            window=day_window(tenant.table("events"), seoul_day(DAY)),
        )

    message = str(info.value)
    assert PASSWORD not in message
    assert message.startswith(
        f"[tenant=acme table=events] reading mysql "
        f"{MYSQL_HOST}:{MYSQL_PORT}/{mysql_db} failed: "
    )
    assert "Access denied for user 'mozart_nobody'" in message
    assert info.value.__cause__ is None


def test_missing_table_names_tenant_and_table(tmp_path: Path, mysql_db: str) -> None:
    tenant = _tenant(tmp_path, mysql_db, [table_dict("events", EVENT_COLUMNS)])

    with pytest.raises(SourceError) as info:
        extract_table(
            tenant,
            tenant.table("events"),
            seoul_day(DAY),
            _connector(mysql_db),
            window=day_window(tenant.table("events"), seoul_day(DAY)),
        )

    assert (info.value.tenant, info.value.table) == ("acme", "events")
    assert str(info.value).startswith("[tenant=acme table=events] ")
    assert str(info.value) == (
        "[tenant=acme table=events] source table 'events' does not exist in "
        f"mysql {MYSQL_HOST}:{MYSQL_PORT}/{mysql_db}"
    )
    assert info.value.terminal


def test_instants_are_utc_microseconds(tmp_path: Path, mysql_db: str) -> None:
    _events(mysql_db)
    tenant = _tenant(tmp_path, mysql_db, [table_dict("events", EVENT_COLUMNS)])

    manifest = extract_table(
        tenant,
        tenant.table("events"),
        seoul_day(DAY),
        _connector(mysql_db),
        window=day_window(tenant.table("events"), seoul_day(DAY)),
    )

    data = read_extract(manifest)
    got = dict(zip(data["id"].to_pylist(), data["updated_at"].to_pylist(), strict=True))
    assert got == EVENTS
    assert all(value.tzinfo is not None for value in got.values())
    assert got[1] == datetime(2026, 11, 14, 14, 59, 59, 999999, tzinfo=UTC)


def test_manifest_records_the_source_catalog(tmp_path: Path, mysql_db: str) -> None:
    _run(mysql_db, TYPED_DDL)
    _run(mysql_db, "ALTER TABLE typed ADD COLUMN payload BLOB")
    tenant = _tenant(tmp_path, mysql_db, [typed_table()])

    manifest = extract_table(
        tenant,
        tenant.table("typed"),
        seoul_day(DAY),
        _connector(mysql_db),
        window=day_window(tenant.table("typed"), seoul_day(DAY)),
    )

    assert manifest.source_columns == {
        "id": "bigint",
        "label": "string",
        "big": "bigint",
        "small": "int",
        "ratio": "double",
        "flag": "boolean",
        "day": "date",
        "local_ts": "timestamp",
        "instant": "timestamptz",
        "amount": "decimal(10,2)",
        "order": "string",
        "lot id": "string",
        "payload": "blob",
    }


def test_declared_type_the_source_cannot_fill_names_the_column(
    tmp_path: Path, mysql_db: str
) -> None:
    _run(mysql_db, "CREATE TABLE lots (id BIGINT, qty VARCHAR(10))")
    columns = [{"name": "id", "type": "bigint"}, {"name": "qty", "type": "bigint"}]
    tenant = _tenant(tmp_path, mysql_db, [table_dict("lots", columns)])

    with pytest.raises(SourceError) as info:
        extract_table(
            tenant,
            tenant.table("lots"),
            seoul_day(DAY),
            _connector(mysql_db),
            window=day_window(tenant.table("lots"), seoul_day(DAY)),
        )

    assert str(info.value) == (
        "[tenant=acme table=lots column=qty] "
        "declared bigint but the source column is string"
    )


def test_rows_stream_through_an_unbuffered_server_side_cursor(mysql_db: str) -> None:
    """What the extractor asks for (stream_results) is PyMySQL's SSCursor: rows
    come off the socket as they are fetched, so memory does not grow with the
    table."""
    engine = _connector(mysql_db).engine()
    try:
        with engine.connect() as conn:
            streaming = conn.execution_options(stream_results=True, yield_per=2)
            result = streaming.execute(sa.text("SELECT 1 UNION ALL SELECT 2"))
            cursor = result.cursor
            assert [row[0] for row in result] == [1, 2]
    finally:
        engine.dispose()

    assert isinstance(cursor, pymysql.cursors.SSCursor)


def test_column_names_match_whatever_their_case_as_mariadb_finds_them(
    tmp_path: Path, mysql_db: str
) -> None:
    """A legacy MES names its columns in upper case (`LOT_NO`); declared as
    `lot_no`, MariaDB finds them (its column names ignore case, quoted or not):
    the declaration check and the drift report compare names the same way."""
    _run(
        mysql_db,
        "CREATE TABLE TB_LOT (LOT_NO VARCHAR(20) PRIMARY KEY, QTY INT, "
        "UPD_DT TIMESTAMP(6) NULL)",
    )
    _run(
        mysql_db,
        "INSERT INTO TB_LOT VALUES (%s, %s, %s)",
        [("L1", 5, "2026-11-15 01:00:00"), ("L2", 7, "2026-11-15 02:00:00")],
    )
    columns = [
        {"name": "lot_no", "type": "string", "nullable": False},
        {"name": "qty", "type": "int"},
        {"name": "upd_dt", "type": "timestamptz"},
    ]
    table = table_dict(
        "lots", columns, primary_key=["lot_no"], source={"table": "TB_LOT"}
    )
    tenant = _tenant(tmp_path, mysql_db, [table])

    manifest = extract_table(
        tenant, tenant.table("lots"), seoul_day(DAY), _connector(mysql_db), window=None
    )

    assert manifest.source_columns == {
        "lot_no": "string",
        "qty": "int",
        "upd_dt": "timestamptz",
    }
    data = read_extract(manifest)
    assert data.select(["lot_no", "qty"]).to_pylist() == [
        {"lot_no": "L1", "qty": 5},
        {"lot_no": "L2", "qty": 7},
    ]
