"""Extract from a real PostgreSQL database (created and dropped per test)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
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
    POSTGRES_HOST,
    POSTGRES_PORT,
    TYPED_ROWS,
    Row,
    assert_typed_roundtrip,
    day_window,
    expected_typed_schema,
    make_tenant,
    postgres_source,
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
CREATE TABLE {table} (
    id bigint PRIMARY KEY, label text, big bigint, small integer,
    ratio double precision, flag boolean, day date, local_ts timestamp,
    instant timestamptz, amount numeric(10, 2), "order" text, "lot id" text
)"""

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


def _run(database: str, sql: str, rows: Sequence[Sequence[Any]] = ()) -> None:
    conninfo = (
        f"host={POSTGRES_HOST} port={POSTGRES_PORT} user=postgres dbname={database}"
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if rows:
            with conn.cursor() as cursor:
                cursor.executemany(sql, rows)
        else:
            conn.execute(sql)


def _insert(database: str, table: str, rows: Sequence[Row]) -> None:
    names = list(rows[0])
    columns = ", ".join(f'"{name}"' for name in names)
    marks = ", ".join("%s" for _ in names)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
    _run(database, sql, [[row[name] for name in names] for row in rows])


def _connector(database: str, **options: str) -> Connector:
    credentials = Credentials(
        host=POSTGRES_HOST,
        port=POSTGRES_PORT,
        database=database,
        user="postgres",
        options=options,
    )
    return connector_for(SourceType.POSTGRESQL, credentials)


def _session_time_zone(connector: Connector) -> str:
    """The session setting the connector's options produced (so tests that rely
    on a non-UTC session know they got one)."""
    engine = connector.engine()
    try:
        with engine.connect() as conn:
            return str(conn.execute(sa.text("SHOW TimeZone")).scalar_one())
    finally:
        engine.dispose()


def _tenant(
    tmp_path: Path,
    database: str,
    tables: list[dict[str, Any]],
    params: dict[str, str | int] | None = None,
) -> TenantConfig:
    params = params or {"plant": "P1"}
    return make_tenant(
        tmp_path, tables, source=postgres_source(database), params=params
    )


def _events(database: str) -> None:
    _run(
        database, "CREATE TABLE events (id bigint, plant text, updated_at timestamptz)"
    )
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
    **options: str,
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
        _connector(database, **options),
        window=(
            Window(start=sync_from)
            if sync_from is not None
            else day_window(tenant.table("events"), seoul_day(DAY), initial=initial)
        ),
    )
    return sorted(read_extract(manifest).column("id").to_pylist())


def test_every_declared_type_round_trips_exactly(
    tmp_path: Path, postgres_db: str
) -> None:
    # A schema and table that only work quoted: a space and mixed case.
    _run(postgres_db, 'CREATE SCHEMA "mes data"')
    _run(postgres_db, TYPED_DDL.format(table='"mes data"."Typed Rows"'))
    _insert(postgres_db, '"mes data"."Typed Rows"', TYPED_ROWS)
    source = {"schema": "mes data", "table": "Typed Rows"}
    tenant = _tenant(tmp_path, postgres_db, [typed_table(source=source)])

    manifest = extract_table(
        tenant,
        tenant.table("typed"),
        seoul_day(DAY),
        _connector(postgres_db),
        window=day_window(tenant.table("typed"), seoul_day(DAY)),
    )

    assert manifest.rows == len(TYPED_ROWS)
    assert_typed_roundtrip(read_extract(manifest))


def test_instants_do_not_depend_on_the_session_time_zone(
    tmp_path: Path, postgres_db: str
) -> None:
    _run(postgres_db, TYPED_DDL.format(table="typed"))
    _insert(postgres_db, "typed", TYPED_ROWS)
    tenant = _tenant(tmp_path, postgres_db, [typed_table()])
    connector = _connector(postgres_db, options="-c TimeZone=America/New_York")

    manifest = extract_table(
        tenant,
        tenant.table("typed"),
        seoul_day(DAY),
        connector,
        window=day_window(tenant.table("typed"), seoul_day(DAY)),
    )

    assert_typed_roundtrip(read_extract(manifest))
    assert _session_time_zone(connector) == "America/New_York"


def test_window_includes_its_start_and_excludes_its_end(
    tmp_path: Path, postgres_db: str
) -> None:
    _events(postgres_db)

    assert _event_ids(tmp_path, postgres_db) == [2, 3, 4]


def test_window_bounds_hold_in_any_session_time_zone(
    tmp_path: Path, postgres_db: str
) -> None:
    _events(postgres_db)

    kiritimati = "-c TimeZone=Pacific/Kiritimati"
    ids = _event_ids(tmp_path, postgres_db, options=kiritimati)

    assert ids == [2, 3, 4]
    connector = _connector(postgres_db, options=kiritimati)
    assert _session_time_zone(connector) == "Pacific/Kiritimati"


@pytest.mark.parametrize("kind", ["timestamp", "date"])
def test_naive_and_date_cursors_ignore_the_session_time_zone(
    tmp_path: Path, postgres_db: str, kind: str
) -> None:
    _run(postgres_db, f"CREATE TABLE marks (id bigint, at {kind})")
    if kind == "timestamp":  # UTC wall time
        cursors = {key: at.replace(tzinfo=None) for key, at in EVENTS.items()}
        expected = [2, 3, 4]
    else:  # the dates whose UTC midnight is in [11-14 15:00, 11-15 15:00)
        cursors = {1: date(2026, 11, 14), 2: date(2026, 11, 15), 3: date(2026, 11, 16)}
        expected = [2]
    _insert(postgres_db, "marks", [{"id": k, "at": at} for k, at in cursors.items()])
    columns = [{"name": "id", "type": "bigint"}, {"name": "at", "type": kind}]
    marks = table_dict("marks", columns, mode="incremental", cursor="at")
    tenant = _tenant(tmp_path, postgres_db, [marks])
    connector = _connector(postgres_db, options="-c TimeZone=Pacific/Kiritimati")

    manifest = extract_table(
        tenant,
        tenant.table("marks"),
        seoul_day(DAY),
        connector,
        window=day_window(tenant.table("marks"), seoul_day(DAY)),
    )

    assert sorted(read_extract(manifest).column("id").to_pylist()) == expected
    assert _session_time_zone(connector) == "Pacific/Kiritimati"


def test_initial_extract_reads_all_history_before_the_window_end(
    tmp_path: Path, postgres_db: str
) -> None:
    _events(postgres_db)

    assert _event_ids(tmp_path, postgres_db, initial=True) == [1, 2, 3, 4, 6]


def test_a_sync_window_has_no_upper_bound(tmp_path: Path, postgres_db: str) -> None:
    """A sync reads from raw's mark to the source's now: rows past the
    production day's end (5 on it, 7 weeks later) are read too."""
    _events(postgres_db)

    assert _event_ids(tmp_path, postgres_db, sync_from=START) == [2, 3, 4, 5, 7]


def test_empty_window_writes_one_empty_file_with_the_declared_schema(
    tmp_path: Path, postgres_db: str
) -> None:
    _run(postgres_db, TYPED_DDL.format(table="typed"))
    _insert(postgres_db, "typed", TYPED_ROWS)
    typed = typed_table(mode="incremental", cursor="instant")
    tenant = _tenant(tmp_path, postgres_db, [typed])

    manifest = extract_table(
        tenant,
        tenant.table("typed"),
        seoul_day(date(2026, 1, 1)),
        _connector(postgres_db),
        window=day_window(tenant.table("typed"), seoul_day(date(2026, 1, 1))),
    )

    assert (manifest.rows, [f.rows for f in manifest.files]) == (0, [0])
    data = pq.read_table(manifest.files[0].path)
    assert (data.num_rows, data.schema) == (0, expected_typed_schema())


def test_tenant_filter_and_window_together(tmp_path: Path, postgres_db: str) -> None:
    _events(postgres_db)
    events = table_dict(
        "events",
        EVENT_COLUMNS,
        mode="merge",
        cursor="updated_at",
        tenant_filter={"column": "plant", "param": "plant"},
    )
    tenant = _tenant(tmp_path, postgres_db, [events])

    manifest = extract_table(
        tenant,
        tenant.table("events"),
        seoul_day(DAY),
        _connector(postgres_db),
        window=day_window(tenant.table("events"), seoul_day(DAY)),
    )

    # Row 3 is in the window but belongs to plant P2.
    got = sorted(read_extract(manifest).to_pylist(), key=lambda row: row["id"])
    assert got == [
        {"id": 2, "plant": "P1", "updated_at": START},
        {"id": 4, "plant": "P1", "updated_at": END - US},
    ]


def test_tenant_filter_value_is_bound_not_pasted(
    tmp_path: Path, postgres_db: str
) -> None:
    sneaky = "P1' OR '1'='1"
    _run(postgres_db, 'CREATE TABLE "shared lots" (id bigint, "plant code" text)')
    rows = [
        {"id": 1, "plant code": sneaky},
        {"id": 2, "plant code": "P1"},
        {"id": 3, "plant code": "P2"},
    ]
    _insert(postgres_db, '"shared lots"', rows)
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
    tenant = _tenant(tmp_path, postgres_db, [lots], params={"plant": sneaky})

    manifest = extract_table(
        tenant,
        tenant.table("lots"),
        seoul_day(DAY),
        _connector(postgres_db),
        window=day_window(tenant.table("lots"), seoul_day(DAY)),
    )

    assert read_extract(manifest).to_pylist() == [{"id": 1, "plant code": sneaky}]


def test_query_source(tmp_path: Path, postgres_db: str) -> None:
    _events(postgres_db)
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
    tenant = _tenant(tmp_path, postgres_db, [summary])

    manifest = extract_table(
        tenant,
        tenant.table("summary"),
        seoul_day(DAY),
        _connector(postgres_db),
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
    tmp_path: Path, postgres_db: str
) -> None:
    _events(postgres_db)
    tenant = _tenant(tmp_path, postgres_db, [table_dict("events", EVENT_COLUMNS)])
    credentials = Credentials(
        host=POSTGRES_HOST,
        port=POSTGRES_PORT,
        database=postgres_db,
        user="mozart_nobody",
        password=PASSWORD,
    )
    connector = connector_for(SourceType.POSTGRESQL, credentials)

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
        f"[tenant=acme table=events] reading postgresql "
        f"{POSTGRES_HOST}:{POSTGRES_PORT}/{postgres_db} failed: "
    )
    assert 'role "mozart_nobody" does not exist' in message
    # The driver's exception is not chained into the traceback.
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_missing_table_names_tenant_and_table(tmp_path: Path, postgres_db: str) -> None:
    tenant = _tenant(tmp_path, postgres_db, [table_dict("events", EVENT_COLUMNS)])

    with pytest.raises(SourceError) as info:
        extract_table(
            tenant,
            tenant.table("events"),
            seoul_day(DAY),
            _connector(postgres_db),
            window=day_window(tenant.table("events"), seoul_day(DAY)),
        )

    assert (info.value.tenant, info.value.table) == ("acme", "events")
    assert str(info.value).startswith("[tenant=acme table=events] ")
    assert str(info.value) == (
        "[tenant=acme table=events] source table 'events' does not exist in "
        f"postgresql {POSTGRES_HOST}:{POSTGRES_PORT}/{postgres_db}"
    )
    assert info.value.terminal


def test_declared_columns_missing_from_the_table_is_a_source_error(
    tmp_path: Path, postgres_db: str
) -> None:
    _events(postgres_db)
    columns = [*EVENT_COLUMNS, {"name": "qty", "type": "bigint"}]
    tenant = _tenant(tmp_path, postgres_db, [table_dict("events", columns)])

    with pytest.raises(SourceError) as info:
        extract_table(
            tenant,
            tenant.table("events"),
            seoul_day(DAY),
            _connector(postgres_db),
            window=day_window(tenant.table("events"), seoul_day(DAY)),
        )

    assert str(info.value) == (
        "[tenant=acme table=events column=qty] declared column events.qty does "
        f"not exist in events (postgresql {POSTGRES_HOST}:{POSTGRES_PORT}/"
        f"{postgres_db}); source columns: ['id', 'plant', 'updated_at']"
    )
    assert info.value.column == "qty"
