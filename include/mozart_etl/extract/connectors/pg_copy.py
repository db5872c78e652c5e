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

Values of any size: pyarrow cuts its input into blocks and cannot parse a row
longer than one block ("straddling object straddles two block boundaries"), so
`CopyStream` hands it whole rows only; see there. A value over the extract's
maximum (`MOZART_MAX_VALUE_BYTES`) stops the read with `ValueTooLargeError`,
naming its column, before it is held whole.

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

from mozart_etl.extract.connectors.base import (
    MAX_VALUE_SETTING,
    ColumnConversionError,
    ValueTooLargeError,
    max_value_bytes,
)

# One pyarrow block: ~9k rows of a 13-column table; batches are small, the
# extractor gathers them into large Parquet row groups. One parsing thread: on
# the bench table it parsed as fast as the thread pool with 25 % less CPU, which
# the server and psql need on a small machine. A row longer than a block makes
# a block of its own, as long as the row (`CopyStream`).
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
# psql runs with VERBOSITY=verbose so the server's error names its SQLSTATE
# (`ERROR:  42501: permission denied for table t`): the error is then raised as
# psycopg's class for that state, classified like the in-process path's.
_PSQL_STATE = re.compile(r"^(?:psql: error: )?(?:ERROR|FATAL):\s+([0-9A-Z]{5}): ")
# pyarrow errors that are about the data's shape, not a value's type.
_NOT_PARSED = re.compile(r"CSV parse error|straddl")
_CSV_COLUMN = re.compile(r"CSV column #(\d+)")


def copy_statement(
    conn: sa.Connection, select: sa.Select[*tuple[Any, ...]]
) -> sql.Composed:
    """`COPY (<select with its values bound client-side>) TO STDOUT`."""
    compiled = select.compile(dialect=conn.dialect)
    driver = _driver_connection(conn)
    text = psycopg.ClientCursor(driver).mogrify(str(compiled), compiled.params)
    return sql.SQL("COPY ({}) TO STDOUT").format(sql.SQL(text))


def copy_batches(
    conn: sa.Connection, select: sa.Select[*tuple[Any, ...]], schema: pa.Schema
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
            yield from _parse(CopyStream(_gather(copy), schema.names), schema)
        return
    with _psql_copy(psql, driver, statement.as_string(driver)) as read:
        yield from _parse(CopyStream(read, schema.names), schema)


def _parse(stream: CopyStream, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    try:
        reader = _open_reader(stream, schema)
    except pa.ArrowInvalid as exc:
        if stream.bytes_read == 0:
            return  # no rows: pyarrow refuses an empty input
        raise _conversion_error(exc, schema) from exc
    strings = [i for i, field in enumerate(schema) if _is_string(field.type)]
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as exc:
            raise _conversion_error(exc, schema) from exc
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
    argv = [psql, "--no-psqlrc", "--quiet", "--set=VERBOSITY=verbose"]
    argv += ["--dbname", conninfo, "-c", statement]
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
        raise _psql_error(stderr)


def _open_reader(stream: CopyStream, schema: pa.Schema) -> pcsv.CSVStreamingReader:
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


def _psql_error(stderr: bytes) -> psycopg.Error:
    """psql's error as psycopg would raise it: the class of the server's
    SQLSTATE (so it is classified like the in-process path's), the message
    as the server (or libpq) put it."""
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    state = _PSQL_STATE.match(lines[0]) if lines else None
    if state is not None:
        lines[0] = lines[0][: state.start(1)] + lines[0][state.end() :]
    lines = [line for line in lines if not line.startswith("LOCATION:")]
    message = " ".join(line.strip() for line in lines) or "psql failed"
    message = _PSQL_PREFIX.sub("", message)
    if state is None:
        return psycopg.OperationalError(message)
    try:
        kind = psycopg.errors.lookup(state.group(1))
    except KeyError:
        return psycopg.OperationalError(message)
    return kind(message)


def _gather(copy: psycopg.Copy) -> Callable[[int], bytes]:
    """A `read(size)` over COPY messages: psycopg gives one row per message,
    pyarrow asks for blocks, so rows are gathered up to the block size."""
    rows = iter(copy)

    def read(size: int = -1) -> bytearray:
        buffer = bytearray()  # pyarrow takes any buffer: no copy into bytes
        for data in rows:
            buffer += data
            if 0 <= size <= len(buffer):
                break
        return buffer

    return read


class CopyStream:
    """A read-only file over COPY data that hands pyarrow whole rows only, and
    notes whether any backslash (an escaped character) went by.

    pyarrow's CSV reader parses a block of any size but fails on a row that
    does not end in the block after the one it starts in ("straddling object
    straddles two block boundaries"): before this, a 2.2 MB text value could
    never be extracted. A block that ends at a row's end never straddles. So
    each read returns the data up to its last newline (COPY text escapes
    newlines in values: every newline ends a row) and keeps the rest for the
    next read; a row longer than one read is gathered whole and returned as a
    block of its own. The block grows to the largest row only when such a row
    comes by: memory is bounded by the largest row (plus one read), and a
    table of normal rows is read in 1 MiB blocks exactly as before (one copy
    of each pipe read to move its partial row; psycopg's reads are whole rows
    already and pass as they are). Chosen over sizing the block up front, which
    needs the largest value first (a scan of the table), and over reopening
    the reader with a larger block on the error: the rows it had read are gone
    from the pipe.

    A value over `limit` bytes (as COPY text, escapes included) stops the read
    with ValueTooLargeError naming its column, before it is held whole."""

    closed = False

    def __init__(
        self,
        read: Callable[[int], bytes | bytearray],
        names: list[str] | None = None,
        limit: int | None = None,
    ) -> None:
        self._read = read
        self._names = names or []
        self._limit = max_value_bytes() if limit is None else limit
        self._rest: bytes = b""
        self.bytes_read = 0
        self.saw_backslash = False

    def read(self, size: int = -1) -> bytes | bytearray:
        data = self._pull(size)
        if not data:
            rest, self._rest = self._rest, b""
            return rest  # a last row without its newline: pyarrow judges it
        end = data.rfind(b"\n") + 1
        if end == 0:
            return self._long_row(data, size)
        if not self._rest and end == len(data):
            return data
        rows = b"".join((self._rest, memoryview(data)[:end]))
        self._rest = bytes(data[end:])
        return rows

    def _pull(self, size: int) -> bytes | bytearray:
        data = self._read(size)
        self.bytes_read += len(data)
        # Searched per read: cheap next to checking every string of every batch,
        # and a third of the CPU of counting backslashes and `\\N`s (0.05 vs
        # 0.15 s for the 108 MB of the 1M-row bench table, with a NULL in every
        # 17th row).
        if not self.saw_backslash and _ESCAPE_IN_BLOCK.search(data):
            self.saw_backslash = True
        return data

    def _long_row(self, start: bytes | bytearray, size: int) -> bytearray:
        """The row `start` begins (after the kept partial row), read to its end;
        bytearray grows in place (mremap), so it is not copied as it grows."""
        values = _ValueSizes(self._names, self._limit)
        row = bytearray()
        for piece in (self._rest, start):
            values.add(piece, len(piece))
            row += piece
        self._rest = b""
        while True:
            more = self._pull(max(size, BLOCK_BYTES))
            if not more:
                return row
            end = more.find(b"\n")
            if end < 0:
                values.add(more, len(more))
                row += more
                continue
            values.add(more, end)
            row += memoryview(more)[: end + 1]
            self._rest = bytes(more[end + 1 :])
            return row

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


class _ValueSizes:
    """The size of the value being read in a long row, across reads: raises
    ValueTooLargeError once one exceeds the limit (its column named)."""

    def __init__(self, names: list[str], limit: int) -> None:
        self.names, self.limit = names, limit
        self.index = 0
        self.length = 0

    def add(self, piece: bytes | bytearray, stop: int) -> None:
        start = 0
        while True:
            tab = piece.find(b"\t", start, stop)
            end = stop if tab < 0 else tab
            self.length += end - start
            if self.length > self.limit:
                column = (
                    self.names[self.index] if self.index < len(self.names) else None
                )
                raise ValueTooLargeError(
                    column,
                    self.length,
                    self.limit,
                    f"the extract's maximum ({MAX_VALUE_SETTING})",
                )
            if tab < 0:
                return
            self.index += 1
            self.length = 0
            start = tab + 1


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


def _conversion_error(exc: pa.ArrowInvalid, schema: pa.Schema) -> ColumnConversionError:
    """pyarrow's error: a value that does not convert to its column's type, or
    COPY data that does not parse (`type_error` False: not the type's fault)."""
    return ColumnConversionError(
        str(exc),
        _column_of(exc, schema),
        type_error=not _NOT_PARSED.search(str(exc)),
    )


def _column_of(exc: Exception, schema: pa.Schema) -> str | None:
    found = _CSV_COLUMN.search(str(exc))
    if found is None or int(found.group(1)) >= len(schema):
        return None
    return schema.names[int(found.group(1))]
