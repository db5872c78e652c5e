"""PostgreSQL fast path: `COPY (<the SELECT>) TO STDOUT` parsed by pyarrow.

The server formats rows as COPY text (tab-separated, NULL as `\\N`, control
characters backslash-escaped so no value spans lines); pyarrow's streaming CSV
reader converts every column to its declared Arrow type (nothing is guessed:
decimals are parsed exactly at their declared scale, instants arrive with a
`+00` offset because the session runs in UTC). Strings that contained an
escaped character are unescaped afterwards, only where a backslash occurs.

The COPY data comes from PostgreSQL's own client, `psql`, when it is installed
(the Docker image has it): a process of its own drains the server's
one-message-per-row stream in C and hands us a pipe read in 1 MiB blocks, so
this process only parses and writes. Measured on the 1M-row bench table
(bench/bench_extract.py, three runs each): streaming the COPY took 0.82 to
0.87 s through psql and 1.22 s with psycopg reading it in this process, whose
row iterator holds the interpreter the parser needs. Without `psql` (or with
MOZART_PG_COPY_CLIENT=psycopg) psycopg reads the COPY here. Both run the same
statement with the same session settings; the password reaches `psql` only
through its environment (PGPASSWORD), never its argv.

The SELECT is the generated one (query.py); COPY takes no parameters, so its
bound values are merged in by psycopg's client-side binding (`mogrify`), which
escapes them as literals: nothing is pasted.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import sqlalchemy as sa
from psycopg import sql
from psycopg.conninfo import make_conninfo

from mozart_etl.extract.connectors.base import ColumnConversionError

# One pyarrow block: ~9k rows of a 13-column table; batches are small, the
# extractor gathers them into large Parquet row groups. One parsing thread: on
# the bench table it parsed as fast as the thread pool with 25 % less CPU, which
# the server and psql need on a small machine.
BLOCK_BYTES = 1 << 20

_SETTINGS = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "extra_float_digits": "1",
    "client_encoding": "UTF8",
}
# One string, not a 31-line list literal.
_PSQL_KEYS = frozenset(
    "host hostaddr port dbname user passfile connect_timeout options "  # noqa: SIM905
    "application_name keepalives keepalives_idle keepalives_interval "
    "keepalives_count tcp_user_timeout sslmode sslcompression sslcert sslkey "
    "sslrootcert sslcrl sslcrldir sslsni requirepeer ssl_min_protocol_version "
    "ssl_max_protocol_version gssencmode krbsrvname gsslib service "
    "target_session_attrs channel_binding".split()
)
"""Connection settings psql 13 and later understand (libpq's)."""
DEBIAN_CLIENTS = "/usr/lib/postgresql"
"""Where Debian installs each PostgreSQL version's client (`<major>/bin/psql`)."""
CLIENT_SETTING = "MOZART_PG_COPY_CLIENT"
"""`psql` (the default when installed) or `psycopg`."""
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
# A backslash that does not start a NULL (`\\N`) is an escape; one ending a
# block may be either, so it counts as one (a needless unescape pass at worst).
_ESCAPE_IN_BLOCK = re.compile(rb"\\(?:[^N]|\Z)")
_PSQL_PREFIX = re.compile(r"^(psql: error: )?(ERROR|FATAL):\s+")
_CSV_COLUMN = re.compile(r"CSV column #(\d+)")


def copy_statement(conn: sa.Connection, select: sa.Select) -> sql.Composed:
    """`COPY (<select with its values bound client-side>) TO STDOUT`."""
    compiled = select.compile(dialect=conn.dialect)
    driver = _driver_connection(conn)
    text = psycopg.ClientCursor(driver).mogrify(str(compiled), compiled.params)
    return sql.SQL("COPY ({}) TO STDOUT").format(sql.SQL(text))  # type: ignore[arg-type]


def copy_batches(
    conn: sa.Connection, select: sa.Select, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """Record batches of `schema`, streamed from a COPY of `select`."""
    statement = copy_statement(conn, select)
    driver = _driver_connection(conn)
    psql = _psql()
    if psql is None:
        for name, value in _SETTINGS.items():
            driver.execute(
                sql.SQL("SELECT set_config({}, {}, true)").format(name, value)
            )
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            yield from _parse(_CopyStream(_gather(copy)), schema)
        return
    with _psql_copy(psql, driver, statement.as_string(driver)) as read:
        yield from _parse(_CopyStream(read), schema)


def _parse(stream: _CopyStream, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    try:
        reader = _open_reader(stream, schema)
    except pa.ArrowInvalid as exc:
        if stream.bytes_read == 0:
            return  # no rows: pyarrow refuses an empty input
        raise ColumnConversionError(str(exc), _column_of(exc, schema)) from exc
    strings = [i for i, field in enumerate(schema) if _is_string(field.type)]
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as exc:
            raise ColumnConversionError(str(exc), _column_of(exc, schema)) from exc
        # Only string values can hold a backslash, and the block a batch
        # came from is read before the batch is parsed.
        yield _unescape(batch, strings) if stream.saw_backslash else batch


def _psql() -> str | None:
    choice = os.environ.get(CLIENT_SETTING, "psql")
    if choice not in ("psql", "psycopg"):
        raise ValueError(f"{CLIENT_SETTING} must be psql or psycopg, not {choice!r}")
    found = shutil.which("psql") if choice == "psql" else None
    return None if found is None else _unwrapped(found)


@cache
def _unwrapped(psql: str) -> str:
    """The client itself rather than Debian's `pg_wrapper` (what `psql` is on
    Debian and in the Airflow image): a Perl script that picks a version and
    execs it, 20-60 ms before the first row. For a server given by host, as
    ours always is, it runs the newest installed client; so do we."""
    if Path(psql).resolve().name != "pg_wrapper":
        return psql
    clients = [
        client
        for client in Path(DEBIAN_CLIENTS).glob("*/bin/psql")
        if client.parts[-3].isdigit() and os.access(client, os.X_OK)
    ]
    if not clients:
        return psql
    return str(max(clients, key=lambda client: int(client.parts[-3])))


def psql_invocation(
    psql: str, driver: psycopg.Connection[Any], statement: str
) -> tuple[list[str], dict[str, str]]:
    """psql's argv and environment for `statement` on `driver`'s server, as
    `driver`'s user, in the extract's session settings. The password goes only
    into the environment (argv is visible to every user of the machine)."""
    info = driver.info
    # The settings this connection was opened with, not `info.dsn`: that lists
    # every option of psycopg's own libpq, which an older psql rejects
    # (`sslcertmode`, PostgreSQL 16).
    settings = info.get_parameters()
    conninfo = make_conninfo(
        **{key: value for key, value in settings.items() if key in _PSQL_KEYS}
    )
    options = " ".join(
        f"-c {name}={value.replace(' ', '')}" for name, value in _SETTINGS.items()
    )
    env = {**os.environ, "PGOPTIONS": options, "PGAPPNAME": "mozart-extract"}
    env.pop("PGPASSWORD", None)
    if info.password:
        env["PGPASSWORD"] = info.password
    argv = [psql, "--no-psqlrc", "--quiet", "--dbname", conninfo, "-c", statement]
    return argv, env


@contextmanager
def _psql_copy(
    psql: str, driver: psycopg.Connection[Any], statement: str
) -> Iterator[Callable[[int], bytes]]:
    """`psql` running one COPY; yields the `read` of its stdout, the data. A
    non-zero exit (the server's error, a lost connection) is raised as a psycopg
    error with psql's message, so it is reported like the in-process path's."""
    argv, env = psql_invocation(psql, driver, statement)
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    try:
        yield process.stdout.read
    except BaseException:  # we stopped reading: the data is not wanted
        process.kill()
        process.communicate()
        raise
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise psycopg.OperationalError(_psql_message(stderr))


def _open_reader(stream: _CopyStream, schema: pa.Schema) -> pcsv.CSVStreamingReader:
    return pcsv.open_csv(
        pa.PythonFile(stream, mode="r"),
        read_options=pcsv.ReadOptions(
            column_names=schema.names,
            block_size=BLOCK_BYTES,
            use_threads=False,
        ),
        parse_options=pcsv.ParseOptions(delimiter="\t", quote_char=False),
        convert_options=pcsv.ConvertOptions(
            column_types=schema,
            null_values=["\\N"],
            strings_can_be_null=True,
            true_values=["t"],
            false_values=["f"],
        ),
    )


def _psql_message(stderr: bytes) -> str:
    """psql's error as the server (or libpq) put it, like psycopg reports it."""
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    message = " ".join(line.strip() for line in lines) or "psql failed"
    return _PSQL_PREFIX.sub("", message)


def _gather(copy: psycopg.Copy) -> Callable[[int], bytes]:
    """A `read(size)` over COPY messages: psycopg gives one row per message,
    pyarrow asks for blocks, so rows are gathered up to the block size."""
    rows = iter(copy)

    def read(size: int = -1) -> bytes:
        buffer = bytearray()
        for data in rows:
            buffer += data
            if 0 <= size <= len(buffer):
                break
        return bytes(buffer)

    return read


class _CopyStream:
    """A read-only file over COPY data that notes whether any backslash (an
    escaped character) went by."""

    closed = False

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self.bytes_read = 0
        self.saw_backslash = False

    def read(self, size: int = -1) -> bytes:
        data = self._read(size)
        self.bytes_read += len(data)
        # Searched per block: cheap next to checking every string of every batch,
        # and a third of the CPU of counting backslashes and `\\N`s (0.05 vs
        # 0.15 s for the 108 MB of the 1M-row bench table, with a NULL in every
        # 17th row).
        if not self.saw_backslash and _ESCAPE_IN_BLOCK.search(data):
            self.saw_backslash = True
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


def _driver_connection(conn: sa.Connection) -> psycopg.Connection[Any]:
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver


def _is_string(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _unescape(batch: pa.RecordBatch, strings: list[int]) -> pa.RecordBatch:
    """Undo COPY text escapes (`\\\\`, `\\n`, `\\t`, …) in the few values with one."""
    columns = batch.columns
    changed = False
    for index in strings:
        column = columns[index]
        if not pc.any(pc.match_substring(column, "\\")).as_py():
            continue
        values = [
            None if value is None else _ESCAPED.sub(_unescape_one, value)
            for value in column.to_pylist()
        ]
        columns[index] = pa.array(values, column.type)
        changed = True
    if not changed:
        return batch
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def _unescape_one(match: re.Match[str]) -> str:
    char = match.group(1)
    return _ESCAPES.get(char, char)


def _column_of(exc: Exception, schema: pa.Schema) -> str | None:
    found = _CSV_COLUMN.search(str(exc))
    if found is None or int(found.group(1)) >= len(schema):
        return None
    return schema.names[int(found.group(1))]
