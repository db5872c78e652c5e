"""Values of any size the server sends are extracted, with memory bounded by the
largest one; a value over the configured maximum fails at once, naming its
column, its size and the limit.

Before: a 2.2 MB text value could never be extracted from PostgreSQL (pyarrow's
CSV reader, 1 MiB blocks: "straddling object straddles two block boundaries",
reported as "value does not fit the declared type" and retried forever).

Each large value is built here in Python and compared with what the extract
wrote by length and SHA-256, so a truncated, reordered or badly unescaped value
cannot pass.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pymysql
import pytest
import sqlalchemy as sa

from mozart_etl.config.constants import SourceType
from mozart_etl.config.models import TenantConfig
from mozart_etl.core.errors import SourceValueTooLarge
from mozart_etl.extract.connectors import Connector, Credentials, connector_for
from mozart_etl.extract.connectors.base import MAX_VALUE_SETTING, ValueTooLargeError
from mozart_etl.extract.connectors.pg_copy import CLIENT_SETTING, CopyStream
from mozart_etl.extract.extractor import extract_table
from tests.helpers import (
    MYSQL_HOST,
    MYSQL_PORT,
    POSTGRES_HOST,
    POSTGRES_PORT,
    make_tenant,
    mysql_source,
    postgres_source,
    read_extract,
    seoul_day,
    sqlite_source,
    table_dict,
)

DAY = date(2026, 11, 15)
MB = 1 << 20
BIG = 64 * MB
COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "note", "type": "string"},
    {"name": "tail", "type": "string"},
]
ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)


def big_text(size: int, *, escapes: bool) -> str:
    """`size` bytes of UTF-8, not one repeated byte: Korean text (3 bytes a
    character) and, with `escapes`, a tab, a newline and a backslash in every
    unit, the characters COPY text escapes, so a row boundary inside a value
    would show."""
    unit = "가공 라인 LOT-0001 품질 검사 " * 16
    if escapes:
        unit = unit[:-3] + "\t\n\\"
    encoded = unit.encode()
    whole = (encoded * (size // len(encoded))).decode()
    return whole + "x" * (size - len(whole.encode()))


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def small_rows() -> list[tuple[int, str, str]]:
    return [(i, f"note {i}", f"tail\t{i}") for i in range(1, 2001)]


def check_extracted(
    tenant: TenantConfig, connector: Connector, big: dict[int, str]
) -> None:
    """The extract holds the 2,000 small rows and every big one, exactly."""
    manifest = extract_table(
        tenant, tenant.table("notes"), seoul_day(DAY), connector, window=None
    )
    data = read_extract(manifest)
    assert manifest.rows == 2000 + len(big)
    ids = data.column("id").to_pylist()
    notes = data.column("note")
    tails = data.column("tail").to_pylist()
    by_id = dict(zip(ids, range(len(ids)), strict=True))
    for key, value in big.items():
        got = notes[by_id[key]].as_py()
        assert (len(got), digest(got)) == (len(value), digest(value)), key
        assert tails[by_id[key]] == f"after {key}"
    for key, note, tail in small_rows():
        assert notes[by_id[key]].as_py() == note
        assert tails[by_id[key]] == tail


# --- PostgreSQL: the COPY fast path -------------------------------------------


def _pg_seed(database: str, big: dict[int, str]) -> None:
    conninfo = f"host={POSTGRES_HOST} port={POSTGRES_PORT} user=postgres"
    with psycopg.connect(f"{conninfo} dbname={database}", autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (id bigint, note text, tail text)")
        with conn.cursor() as cursor:
            cursor.executemany("INSERT INTO notes VALUES (%s, %s, %s)", small_rows())
            cursor.executemany(
                "INSERT INTO notes VALUES (%s, %s, %s)",
                [(key, value, f"after {key}") for key, value in big.items()],
            )


def _pg_connector(database: str) -> Connector:
    credentials = Credentials(
        host=POSTGRES_HOST, port=POSTGRES_PORT, database=database, user="postgres"
    )
    return connector_for(SourceType.POSTGRESQL, credentials)


def _pg_tenant(tmp_path: Path, database: str) -> TenantConfig:
    return make_tenant(
        tmp_path, [table_dict("notes", COLUMNS)], source=postgres_source(database)
    )


def test_a_64_mb_value_extracts_from_postgresql(
    tmp_path: Path, postgres_db: str
) -> None:
    """Through psql (the default client): 64 MB with escapes, 2.2 MB (the
    measured failure) and one just over a block."""
    big = {
        5001: big_text(BIG, escapes=True),
        5002: big_text(2_200_000, escapes=False),
        5003: big_text(MB + 1, escapes=True),
    }
    _pg_seed(postgres_db, big)

    check_extracted(_pg_tenant(tmp_path, postgres_db), _pg_connector(postgres_db), big)


def test_large_values_extract_through_psycopg_too(
    tmp_path: Path, postgres_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without psql, psycopg reads the COPY in this process (whole rows)."""
    monkeypatch.setenv(CLIENT_SETTING, "psycopg")
    big = {5001: big_text(3 * MB, escapes=True), 5002: big_text(2 * MB, escapes=False)}
    _pg_seed(postgres_db, big)

    check_extracted(_pg_tenant(tmp_path, postgres_db), _pg_connector(postgres_db), big)


def test_a_value_over_the_maximum_names_column_size_and_limit(
    tmp_path: Path, postgres_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 4 * MB
    monkeypatch.setenv(MAX_VALUE_SETTING, str(limit))
    _pg_seed(postgres_db, {5001: big_text(limit + 2 * MB, escapes=False)})
    tenant = _pg_tenant(tmp_path, postgres_db)

    with pytest.raises(SourceValueTooLarge) as caught:
        extract_table(
            tenant,
            tenant.table("notes"),
            seoul_day(DAY),
            _pg_connector(postgres_db),
            window=None,
        )

    error = caught.value
    assert error.terminal  # the same row hits the same limit on a retry
    assert (error.tenant, error.table, error.column) == ("acme", "notes", "note")
    message = str(error)
    assert message.startswith("[tenant=acme table=notes column=note] a value of ")
    assert f"over the extract's maximum ({MAX_VALUE_SETTING}) of {limit}" in message
    size = int(message.split("at least ")[1].split(" bytes")[0])
    assert limit < size <= limit + MB + 1  # stopped within one read of the limit
    assert "declared type" not in message


def test_peak_memory_of_a_64_mb_value_is_bounded(
    tmp_path: Path, postgres_db: str
) -> None:
    """The extract runs in a child process so its peak RSS is its own (VmHWM:
    getrusage's ru_maxrss would carry this process's peak across fork and
    exec); the rise over its peak before extracting is what the value costs."""
    _pg_seed(postgres_db, {5001: big_text(BIG, escapes=True)})
    script = textwrap.dedent(
        f"""
        import json
        from datetime import date
        from pathlib import Path
        from mozart_etl.config.constants import SourceType
        from mozart_etl.extract.connectors import Credentials, connector_for
        from mozart_etl.extract.extractor import extract_table
        from tests.helpers import make_tenant, postgres_source, seoul_day, table_dict
        def hwm():
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        database = {postgres_db!r}
        tenant = make_tenant(
            Path({str(tmp_path)!r}),
            [table_dict("notes", {COLUMNS!r})],
            source=postgres_source(database),
        )
        connector = connector_for(
            SourceType.POSTGRESQL,
            Credentials(host={POSTGRES_HOST!r}, port={POSTGRES_PORT},
                        database=database, user="postgres"),
        )
        day = seoul_day(date.fromisoformat({DAY.isoformat()!r}))
        before = hwm()
        manifest = extract_table(
            tenant, tenant.table("notes"), day, connector, window=None
        )
        peak = hwm()
        figures = {{"before_kb": before, "peak_kb": peak, "rows": manifest.rows}}
        print(json.dumps(figures))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    rise = (figures["peak_kb"] - figures["before_kb"]) * 1024
    peak = figures["peak_kb"] // 1024
    log.warning("64 MB value: peak RSS %d MB, %d MB over its start", peak, rise // MB)
    assert figures["rows"] == 2001
    # The row as read, parsed, as an Arrow string and in the Parquet writer:
    # a few copies of the value, never an unbounded buffer.
    assert rise < 8 * BIG


# --- MariaDB / MySQL ------------------------------------------------------------


@pytest.fixture
def big_packets() -> Iterator[None]:
    """A 64 MB value is one INSERT packet: MariaDB refuses packets over its
    global max_allowed_packet (16 MB here), so it is raised for the insert and
    restored afterwards (reading it back needs no raise)."""
    conn = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root")
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT @@global.max_allowed_packet")
            (before,) = cursor.fetchone()
            cursor.execute(
                "SET GLOBAL max_allowed_packet = %s", (max(before, 4 * BIG),)
            )
        yield
    finally:
        with conn.cursor() as cursor:
            cursor.execute("SET GLOBAL max_allowed_packet = %s", (before,))
        conn.close()


def test_a_64_mb_value_extracts_from_mariadb(
    tmp_path: Path, mysql_db: str, big_packets: None
) -> None:
    big = {5001: big_text(BIG, escapes=True), 5002: big_text(2_200_000, escapes=False)}
    conn = pymysql.connect(
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        user="root",
        database=mysql_db,
        charset="utf8mb4",
        autocommit=True,
        max_allowed_packet=4 * BIG,  # PyMySQL's own cap on what it sends
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE notes (id BIGINT, note LONGTEXT, tail VARCHAR(40)) "
                "CHARACTER SET utf8mb4"
            )
            cursor.executemany("INSERT INTO notes VALUES (%s, %s, %s)", small_rows())
            for key, value in big.items():
                cursor.execute(
                    "INSERT INTO notes VALUES (%s, %s, %s)",
                    (key, value, f"after {key}"),
                )
    finally:
        conn.close()
    tenant = make_tenant(
        tmp_path, [table_dict("notes", COLUMNS)], source=mysql_source(mysql_db)
    )
    credentials = Credentials(
        host=MYSQL_HOST, port=MYSQL_PORT, database=mysql_db, user="root"
    )

    check_extracted(tenant, connector_for(SourceType.MYSQL, credentials), big)


# --- SQLite: the generic path ----------------------------------------------------


def _sqlite_seed(path: Path, big: dict[int, str]) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER, note TEXT, tail TEXT)")
        conn.executemany("INSERT INTO notes VALUES (?, ?, ?)", small_rows())
        conn.executemany(
            "INSERT INTO notes VALUES (?, ?, ?)",
            [(key, value, f"after {key}") for key, value in big.items()],
        )
    conn.close()


def _sqlite_tenant(tmp_path: Path) -> tuple[TenantConfig, Connector]:
    path = tmp_path / "source.sqlite"
    tenant = make_tenant(
        tmp_path, [table_dict("notes", COLUMNS)], source=sqlite_source(path)
    )
    connector = connector_for(SourceType.SQLITE, Credentials(database=str(path)))
    return tenant, connector


def test_a_64_mb_value_extracts_from_sqlite(tmp_path: Path) -> None:
    big = {5001: big_text(BIG, escapes=True)}
    _sqlite_seed(tmp_path / "source.sqlite", big)

    check_extracted(*_sqlite_tenant(tmp_path), big)


def test_sqlite_value_over_the_maximum_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 2 * MB
    monkeypatch.setenv(MAX_VALUE_SETTING, str(limit))
    value = big_text(limit + MB, escapes=False)
    _sqlite_seed(tmp_path / "source.sqlite", {5001: value})
    tenant, connector = _sqlite_tenant(tmp_path)

    with pytest.raises(SourceValueTooLarge) as caught:
        extract_table(
            tenant, tenant.table("notes"), seoul_day(DAY), connector, window=None
        )

    assert caught.value.terminal and caught.value.column == "note"
    size = len(value.encode())
    assert str(caught.value) == (
        f"[tenant=acme table=notes column=note] a value of at least {size} bytes, "
        f"over the extract's maximum ({MAX_VALUE_SETTING}) of {limit}; raise "
        f"{MAX_VALUE_SETTING} (bytes) to extract it"
    )


# --- The stream pyarrow reads -------------------------------------------------------


def _reads(chunks: list[bytes]) -> list[bytes]:
    """What pyarrow gets from `CopyStream` over these pipe reads."""
    pending = iter([*chunks, b""])
    stream = CopyStream(lambda size: next(pending), ["id", "note", "tail"], 10 * MB)
    out = []
    while block := stream.read(MB):
        out.append(bytes(block))
    assert stream.bytes_read == sum(map(len, chunks))
    return out


def test_every_block_ends_at_a_row_end() -> None:
    rows = [b"1\ta\tb\n", b"2\t" + b"x" * (3 * MB) + b"\tc\n", b"3\td\te\n"]
    data = b"".join(rows)
    # Pipe reads cut anywhere: inside a row, inside the long value, at its end.
    cuts = [3, 9, MB, 2 * MB + 5, len(data) - 4]
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]

    blocks = _reads(chunks)

    assert b"".join(blocks) == data
    assert all(block.endswith(b"\n") for block in blocks)
    assert rows[1] in blocks  # the long row is a block of its own


def test_a_stream_of_whole_rows_passes_unchanged() -> None:
    chunks = [b"1\ta\tb\n2\tc\td\n", b"3\te\tf\n"]
    assert _reads(chunks) == chunks


def test_the_limit_names_the_column_of_the_long_value() -> None:
    row = b"7\tshort\t" + b"y" * (3 * MB) + b"\n"
    pending = iter([row[i : i + MB] for i in range(0, len(row), MB)] + [b""])
    stream = CopyStream(lambda size: next(pending), ["id", "note", "tail"], 2 * MB)

    with pytest.raises(ValueTooLargeError) as caught:
        while stream.read(MB):
            pass

    assert caught.value.column == "tail"
    assert caught.value.limit == 2 * MB
    assert 2 * MB < caught.value.size <= 3 * MB


def test_rows_of_large_values_come_a_few_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The generic path (MariaDB, SQLite) sizes its batches by bytes: 12 rows
    of 3 MB with an 8 MB budget come in batches of at most 8 MB plus one row,
    not all at once (50 000 rows a batch before: memory grew with their count)."""
    from mozart_etl.extract import extractor

    monkeypatch.setattr(extractor, "BATCH_BYTES", 8 * MB)
    big = {6000 + i: big_text(3 * MB, escapes=False) + str(i) for i in range(12)}
    path = tmp_path / "source.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER, note TEXT, tail TEXT)")
        conn.executemany(
            "INSERT INTO notes VALUES (?, ?, ?)",
            [(key, value, "t") for key, value in big.items()],
        )
    conn.close()
    tenant, connector = _sqlite_tenant(tmp_path)
    table = tenant.table("notes")
    select = sa.select(sa.text("id, note, tail")).select_from(sa.text("notes"))

    with connector.engine().connect() as source:
        batches = list(
            extractor._generic_batches(tenant, table, source, select, 50_000)
        )

    assert [b.num_rows for b in batches] == [1, 2, 2, 2, 2, 2, 1]
    assert max(b.nbytes for b in batches) <= 8 * MB + 3 * MB + 1024
    notes = [n for b in batches for n in b.column("note").to_pylist()]
    assert [digest(n) for n in notes] == [digest(v) for v in big.values()]
