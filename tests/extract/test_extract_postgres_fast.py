"""PostgreSQL COPY fast path, catalog introspection, lookback and bad input."""

from __future__ import annotations

import logging
import shutil
import subprocess
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from mozart_etl.config.constants import SourceType
from mozart_etl.core.errors import SourceError
from mozart_etl.extract.connectors import Credentials, connector_for, pg_copy
from mozart_etl.extract.connectors.pg_copy import (
    CLIENT_SETTING,
    CopyStream,
    copy_statement,
    psql_invocation,
)
from mozart_etl.extract.extractor import extract_table
from mozart_etl.extract.introspect import SourceSchemaError
from mozart_etl.extract.query import build_select
from tests.extract.test_extract_postgres import (
    DAY,
    END,
    EVENT_COLUMNS,
    PASSWORD,
    START,
    TYPED_DDL,
    US,
    _connector,
    _insert,
    _run,
    _tenant,
)
from tests.helpers import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    TYPED_ROWS,
    day_window,
    read_extract,
    seoul_day,
    table_dict,
    typed_table,
)

# Values COPY text escapes or could confuse with NULL.
TRICKY = [
    "line one\nline two",
    "tab\there",
    "carriage\rreturn",
    "back\\slash",
    "\\N",
    "",
    "\\",
    '"quoted", comma; 세미콜론',
    "a\\nb",
    "\b\f\v",
]
TYPED_SOURCE_COLUMNS = {
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
}


def _typed(database: str) -> None:
    _run(database, TYPED_DDL.format(table="typed"))
    _insert(database, "typed", TYPED_ROWS)


@pytest.mark.parametrize("client", ["psql", "psycopg"])
def test_fast_path_and_generic_path_write_identical_data(
    tmp_path: Path, postgres_db: str, monkeypatch: pytest.MonkeyPatch, client: str
) -> None:
    """The COPY is read by psql in a process of its own, or by psycopg here."""
    monkeypatch.setenv(CLIENT_SETTING, client)
    _typed(postgres_db)
    tricky = [
        {"id": 100 + i, "label": text, "order": text[::-1], "lot id": None}
        for i, text in enumerate(TRICKY)
    ]
    _insert(postgres_db, "typed", tricky)
    tenant = _tenant(tmp_path, postgres_db, [typed_table()])
    table, day = tenant.table("typed"), seoul_day(DAY)

    fast = extract_table(
        tenant, table, day, _connector(postgres_db), window=day_window(table, day)
    )
    generic = extract_table(
        tenant,
        table,
        day,
        _connector(postgres_db),
        fast_path=False,
        window=day_window(table, day),
    )

    fast_data, generic_data = read_extract(fast), read_extract(generic)
    assert fast_data.equals(generic_data)
    ids, texts = fast_data["id"].to_pylist(), fast_data["label"].to_pylist()
    labels = dict(zip(ids, texts, strict=True))
    assert [labels[100 + i] for i in range(len(TRICKY))] == TRICKY
    assert labels[4] is None  # NULL stays apart from "" and from the text \N
    assert fast.rows == len(TYPED_ROWS) + len(TRICKY)


@pytest.mark.parametrize(
    ("blocks", "escaped"),
    [
        ([b"1\t\\N\n2\t\\N\n"], False),  # NULLs only
        ([b"1\ta\\", b"nb\n"], True),  # an escape split across blocks; so a
        ([b"1\t\\", b"N\n"], True),  # NULL split so counts as one (harmless)
        ([b"1\t\\\\N\n"], True),  # the text \N, not a NULL
        ([b"1\tplain\n", b"2\tback\\\\slash\n"], True),
    ],
)
def test_copy_stream_notices_any_escape_in_any_block(
    blocks: list[bytes], escaped: bool
) -> None:
    """Only a stream with an escape pays for unescaping; one that has an escape
    must never be missed, even when a block ends between its two characters."""
    chunks = iter([*blocks, b""])
    stream = CopyStream(lambda size: next(chunks))
    while stream.read(1 << 20):
        pass
    assert stream.saw_backslash is escaped
    assert stream.bytes_read == sum(map(len, blocks))


def test_copy_binds_values_as_escaped_literals(
    tmp_path: Path, postgres_db: str
) -> None:
    sneaky = "P1' OR '1'='1"
    events = table_dict(
        "events",
        EVENT_COLUMNS,
        source={"schema": "mes", "table": "lot events"},
        mode="incremental",
        cursor="updated_at",
        tenant_filter={"column": "plant", "param": "plant"},
    )
    tenant = _tenant(tmp_path, postgres_db, [events], params={"plant": sneaky})
    table = tenant.table("events")
    connector = _connector(postgres_db)
    window = day_window(table, seoul_day(DAY))
    select = build_select(table, connector, window=window, params=tenant.params)
    engine = connector.engine()
    try:
        with engine.connect() as conn:
            statement = copy_statement(conn, select).as_string(
                conn.connection.driver_connection
            )
    finally:
        engine.dispose()

    # psycopg escapes the values; SQLAlchemy adds its bind casts.
    t = '"mes"."lot events"'
    tz = "::timestamptz::TIMESTAMP WITH TIME ZONE"
    assert statement == (
        f'COPY (SELECT {t}."id", {t}."plant", {t}."updated_at" \nFROM {t} \n'
        f"WHERE {t}.\"plant\" = 'P1'' OR ''1''=''1'::VARCHAR "
        f"AND {t}.\"updated_at\" >= '2026-11-14 15:00:00+00:00'{tz} "
        f"AND {t}.\"updated_at\" < '2026-11-15 15:00:00+00:00'{tz}) TO STDOUT"
    )


def test_manifest_records_the_source_catalog(tmp_path: Path, postgres_db: str) -> None:
    _typed(postgres_db)
    _run(postgres_db, "ALTER TABLE typed ADD COLUMN payload bytea, ADD note varchar(9)")
    tenant = _tenant(tmp_path, postgres_db, [typed_table()])

    manifest = extract_table(
        tenant,
        tenant.table("typed"),
        seoul_day(DAY),
        _connector(postgres_db),
        window=day_window(tenant.table("typed"), seoul_day(DAY)),
    )

    # Undeclared columns are recorded too; unsupported ones by their own name.
    assert manifest.source_columns == TYPED_SOURCE_COLUMNS | {
        "payload": "bytea",
        "note": "string",
    }


def test_query_source_records_its_result_types(
    tmp_path: Path, postgres_db: str
) -> None:
    _typed(postgres_db)
    query = "SELECT id, amount, instant, id::int2 AS tiny, 1.5::numeric AS x FROM typed"
    columns = [
        {"name": "id", "type": "bigint"},
        {"name": "amount", "type": "decimal", "precision": 12, "scale": 2},
        {"name": "instant", "type": "timestamptz"},
        {"name": "tiny", "type": "int"},
        {"name": "x", "type": "decimal", "precision": 5, "scale": 1},
    ]
    summary = table_dict("summary", columns, source={"query": query})
    tenant = _tenant(tmp_path, postgres_db, [summary])

    manifest = extract_table(
        tenant,
        tenant.table("summary"),
        seoul_day(DAY),
        _connector(postgres_db),
        window=day_window(tenant.table("summary"), seoul_day(DAY)),
    )

    assert manifest.source_columns == {
        "id": "bigint",
        "amount": "decimal(10,2)",
        "instant": "timestamptz",
        "tiny": "int",
        "x": "decimal",
    }
    assert read_extract(manifest).column("x").to_pylist() == [Decimal("1.5")] * 4


@pytest.mark.parametrize(
    ("ddl", "declared", "message"),
    [
        (
            "qty text",
            {"name": "qty", "type": "bigint"},
            "declared bigint but the source column is string",
        ),
        (
            "qty timestamp",
            {"name": "qty", "type": "timestamptz"},
            "declared timestamptz but the source column is timestamp",
        ),
        (
            "qty bytea",
            {"name": "qty", "type": "string"},
            "source column 'qty' has type 'bytea', which the extractor does not "
            "support",
        ),
    ],
)
def test_incompatible_source_type_fails_before_reading(
    tmp_path: Path, postgres_db: str, ddl: str, declared: dict, message: str
) -> None:
    _run(postgres_db, f"CREATE TABLE lots (id bigint, {ddl})")
    columns = [{"name": "id", "type": "bigint"}, declared]
    tenant = _tenant(tmp_path, postgres_db, [table_dict("lots", columns)])

    with pytest.raises(SourceSchemaError) as info:
        extract_table(
            tenant,
            tenant.table("lots"),
            seoul_day(DAY),
            _connector(postgres_db),
            window=day_window(tenant.table("lots"), seoul_day(DAY)),
        )

    assert str(info.value) == f"[tenant=acme table=lots column=qty] {message}"
    assert info.value.terminal


def test_value_that_does_not_fit_names_the_column(
    tmp_path: Path, postgres_db: str
) -> None:
    _run(postgres_db, "CREATE TABLE lots (id bigint, price numeric(12, 4))")
    _insert(postgres_db, "lots", [{"id": 1, "price": Decimal("1.25")}])
    _insert(postgres_db, "lots", [{"id": 2, "price": Decimal("1.2345")}])
    columns = [
        {"name": "id", "type": "bigint"},
        {"name": "price", "type": "decimal", "precision": 10, "scale": 2},
    ]
    tenant = _tenant(tmp_path, postgres_db, [table_dict("lots", columns)])

    with pytest.raises(SourceError) as info:
        extract_table(
            tenant,
            tenant.table("lots"),
            seoul_day(DAY),
            _connector(postgres_db),
            window=day_window(tenant.table("lots"), seoul_day(DAY)),
        )

    assert str(info.value) == (
        "[tenant=acme table=lots column=price] value does not fit the declared "
        "type decimal128(10, 2): In CSV column #1: Row #2: Rescaling Decimal "
        "value would cause data loss"
    )
    assert info.value.column == "price"


def test_lookback_widens_the_window_and_the_manifest_records_it(
    tmp_path: Path, postgres_db: str
) -> None:
    _run(
        postgres_db,
        "CREATE TABLE events (id bigint, plant text, updated_at timestamptz)",
    )
    at = {
        1: START - timedelta(hours=2) - US,
        2: START - timedelta(hours=2),
        3: START - US,
        4: END - US,
        5: END,
    }
    _insert(
        postgres_db,
        "events",
        [{"id": k, "plant": "P1", "updated_at": v} for k, v in at.items()],
    )
    events = table_dict(
        "events",
        EVENT_COLUMNS,
        mode="incremental",
        cursor="updated_at",
        lookback_hours=2,
    )
    tenant = _tenant(tmp_path, postgres_db, [events])

    manifest = extract_table(
        tenant,
        tenant.table("events"),
        seoul_day(DAY),
        _connector(postgres_db),
        window=day_window(tenant.table("events"), seoul_day(DAY)),
    )

    assert sorted(read_extract(manifest).column("id").to_pylist()) == [2, 3, 4]
    # The load's window overwrite reads these bounds from the manifest.
    assert (manifest.window_start, manifest.window_end) == (
        START - timedelta(hours=2),
        END,
    )


def test_unreachable_host_is_a_source_error_without_the_password(
    tmp_path: Path, postgres_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = _tenant(tmp_path, postgres_db, [table_dict("events", EVENT_COLUMNS)])
    credentials = Credentials(
        host="127.0.0.1", port=1, database=postgres_db, user="mozart", password=PASSWORD
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
    assert message.startswith(
        f"[tenant=acme table=events] reading postgresql 127.0.0.1:1/{postgres_db} "
        'failed: connection failed: connection to server at "127.0.0.1", port 1 '
        "failed: Connection refused"
    )
    assert not info.value.terminal  # a retry may find the server up
    assert PASSWORD not in message and PASSWORD not in repr(info.value)
    assert PASSWORD not in caplog.text


def test_wrong_password_never_reaches_logs(
    tmp_path: Path, postgres_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The local server trusts every login, so a role that does not exist stands
    # in for a wrong password: the connection is refused with the password sent.
    caplog.set_level(logging.DEBUG)
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

    assert 'role "mozart_nobody" does not exist' in str(info.value)
    assert PASSWORD not in caplog.text
    assert PASSWORD not in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is not None
    assert PASSWORD not in str(info.value.__context__)


def test_psql_gets_the_password_from_its_environment_only(postgres_db: str) -> None:
    """argv is visible to every user of the machine; the environment is not."""
    psql = shutil.which("psql")
    assert psql is not None, "the PostgreSQL client (psql) is part of the image"
    credentials = Credentials(
        host=POSTGRES_HOST,
        port=POSTGRES_PORT,
        database=postgres_db,
        user="postgres",
        password=PASSWORD,  # the local server trusts its users: accepted
    )
    engine = connector_for(SourceType.POSTGRESQL, credentials).engine()
    try:
        with engine.connect() as conn:
            driver = conn.connection.driver_connection
            argv, env = psql_invocation(
                psql, driver, "COPY (SELECT 1, 'a\tb', current_user) TO STDOUT"
            )
    finally:
        engine.dispose()

    assert not any(PASSWORD in arg for arg in argv)
    assert env["PGPASSWORD"] == PASSWORD
    copied = subprocess.run(argv, env=env, capture_output=True, check=True)
    assert copied.stdout == b"1\ta\\tb\tpostgres\n"


def test_debians_psql_wrapper_is_skipped_for_the_newest_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian's `psql` is a Perl script that execs a version's client; the extract
    runs the client itself (the one the script picks for a remote server)."""
    wrapper = tmp_path / "share" / "pg_wrapper"
    wrapper.parent.mkdir()
    wrapper.write_text("#!/usr/bin/perl\n")
    on_path = tmp_path / "bin" / "psql"
    on_path.parent.mkdir()
    on_path.symlink_to(wrapper)
    for version in ("9", "13", "15"):
        client = tmp_path / "lib" / version / "bin" / "psql"
        client.parent.mkdir(parents=True)
        client.write_text("")
        client.chmod(0o755 if version != "15" else 0o644)  # 15: not executable
    monkeypatch.setattr(pg_copy, "DEBIAN_CLIENTS", str(tmp_path / "lib"))
    unwrapped = pg_copy._unwrapped.__wrapped__

    assert unwrapped(str(on_path)) == str(tmp_path / "lib" / "13" / "bin" / "psql")
    direct = tmp_path / "lib" / "9" / "bin" / "psql"
    assert unwrapped(str(direct)) == str(direct)  # not the wrapper: as found
    monkeypatch.setattr(pg_copy, "DEBIAN_CLIENTS", str(tmp_path / "none"))
    assert unwrapped(str(on_path)) == str(on_path)  # no client found: the wrapper


def test_session_settings_do_not_outlive_the_extract(postgres_db: str) -> None:
    """The fast path sets its session options with SET LOCAL (transaction only)."""
    engine = _connector(postgres_db, options="-c TimeZone=Asia/Seoul").engine()
    try:
        with engine.connect() as conn:
            driver = conn.connection.driver_connection
            driver.execute("SET LOCAL TimeZone TO 'UTC'")
            driver.rollback()
            zone = conn.execute(sa.text("SHOW TimeZone")).scalar_one()
    finally:
        engine.dispose()

    assert zone == "Asia/Seoul"


def test_error_in_the_middle_of_a_copy_is_a_source_error(
    tmp_path: Path, postgres_db: str
) -> None:
    query = "SELECT g AS id, 10 / (g - 15000) AS x FROM generate_series(1, 20000) g"
    columns = [{"name": "id", "type": "bigint"}, {"name": "x", "type": "int"}]
    tenant = _tenant(
        tmp_path, postgres_db, [table_dict("q", columns, source={"query": query})]
    )

    with pytest.raises(SourceError) as info:
        extract_table(
            tenant,
            tenant.table("q"),
            seoul_day(DAY),
            _connector(postgres_db),
            extract_id="x1",
            window=day_window(tenant.table("q"), seoul_day(DAY)),
        )

    assert str(info.value) == (
        f"[tenant=acme table=q] reading postgresql {POSTGRES_HOST}:{POSTGRES_PORT}/"
        f"{postgres_db} failed: division by zero (the source's data fails the "
        "read; a retry reads the same rows: fix the row, the query or the "
        "column's declaration, then clear the day)"
    )
    assert info.value.terminal  # SQLSTATE class 22, a data exception
    assert not (
        tmp_path
        / "lake"
        / "acme"
        / "q"
        / f"day={DAY}"
        / "extract=x1"
        / "_manifest.json"
    ).exists()
