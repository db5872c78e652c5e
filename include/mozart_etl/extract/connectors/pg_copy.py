"""PostgreSQL fast path: `COPY (<the SELECT>) TO STDOUT` parsed by pyarrow.

The server formats rows as COPY text (tab-separated, NULL as `\\N`, control
characters backslash-escaped so no value spans lines); psycopg 3 streams the
COPY chunks into a file-like object that pyarrow's multi-threaded streaming
CSV reader pulls from, converting every column to its declared Arrow type
(nothing is guessed: decimals are parsed exactly at their declared scale,
instants arrive with a `+00` offset because the session runs in UTC).
Strings that contained an escaped character are unescaped afterwards, only
where a backslash occurs.

The SELECT is the generated one (query.py); COPY takes no parameters, so its
bound values are merged in by psycopg's client-side binding (`mogrify`), which
escapes them as literals: nothing is pasted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import sqlalchemy as sa
from psycopg import sql

from mozart_etl.extract.connectors.base import ColumnConversionError

# One pyarrow block: ~9k rows of a 13-column table; batches are small, the
# extractor gathers them into large Parquet row groups.
BLOCK_BYTES = 1 << 20

_SESSION = (
    "SET LOCAL TimeZone TO 'UTC'",
    "SET LOCAL DateStyle TO 'ISO, YMD'",
    "SET LOCAL extra_float_digits TO 1",
    "SET LOCAL client_encoding TO 'UTF8'",
)
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
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
    for setting in _SESSION:
        driver.execute(setting)  # type: ignore[arg-type]
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        stream = _CopyStream(copy)
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


def _open_reader(stream: _CopyStream, schema: pa.Schema) -> pcsv.CSVStreamingReader:
    return pcsv.open_csv(
        pa.PythonFile(stream, mode="r"),
        read_options=pcsv.ReadOptions(
            column_names=schema.names, block_size=BLOCK_BYTES
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


class _CopyStream:
    """A read-only file over COPY data: pyarrow asks for blocks, psycopg gives
    one row per message, so rows are gathered up to the block size."""

    closed = False

    def __init__(self, copy: psycopg.Copy) -> None:
        self._rows = iter(copy)
        self.bytes_read = 0
        self.saw_backslash = False

    def read(self, size: int = -1) -> bytes:
        buffer = bytearray()
        for data in self._rows:
            buffer += data
            if 0 <= size <= len(buffer):
                break
        self.bytes_read += len(buffer)
        if not self.saw_backslash and b"\\" in buffer:
            self.saw_backslash = True
        return bytes(buffer)

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
