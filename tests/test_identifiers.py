"""`mozart_etl.core.identifiers`: a quoted name reads back as the same name in the
engines we write SQL for by hand (DuckDB, SQLite), whatever it holds."""

from __future__ import annotations

import sqlite3

import duckdb
import pytest

from mozart_etl.core.identifiers import qualified_name, quote_identifier

AWKWARD = ['lot "A"', "select", "a.b", "Mixed Case", 'x"; DROP TABLE t; --', "설비"]


def test_a_quote_is_doubled_inside_double_quotes() -> None:
    assert quote_identifier('lot "A"') == '"lot ""A"""'
    assert quote_identifier("plain") == '"plain"'
    assert qualified_name("wh", "a.b", "t") == '"wh"."a.b"."t"'


@pytest.mark.parametrize("engine", ["duckdb", "sqlite"])
def test_every_awkward_name_reads_back_as_itself(engine: str) -> None:
    columns = ", ".join(f"{quote_identifier(name)} INTEGER" for name in AWKWARD)
    table = quote_identifier('t "1"')
    con = duckdb.connect() if engine == "duckdb" else sqlite3.connect(":memory:")
    try:
        con.execute(f"CREATE TABLE {table} ({columns})")
        values = ", ".join(str(i) for i in range(len(AWKWARD)))
        con.execute(f"INSERT INTO {table} VALUES ({values})")
        names = ", ".join(quote_identifier(name) for name in reversed(AWKWARD))
        cursor = con.execute(f"SELECT {names} FROM {table}")
        read = [column[0] for column in cursor.description]
        row = cursor.fetchone()
    finally:
        con.close()
    assert read == list(reversed(AWKWARD))
    assert row == tuple(reversed(range(len(AWKWARD))))


def test_a_qualified_name_reaches_a_table_in_a_schema_with_a_dot() -> None:
    con = duckdb.connect()
    try:
        con.execute(f"CREATE SCHEMA {quote_identifier('plant.x')}")
        (catalog,) = con.execute("SELECT current_database()").fetchone() or ("",)
        name = qualified_name(catalog, "plant.x", "mart")
        con.execute(f"CREATE TABLE {name} (n INTEGER)")
        con.execute(f"INSERT INTO {name} VALUES (7)")
        assert con.execute(f"SELECT n FROM {name}").fetchall() == [(7,)]
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
        ).fetchall()
    finally:
        con.close()
    assert tables == [("plant.x", "mart")]
