"""One in-memory DuckDB per process for the stages' small relational steps.

The load and the reconciliation ask DuckDB a few questions per table (which
versions raw lacks, each key's latest version, which keys are gone, what the
source has that raw does not). Opening a DuckDB database costs ~15 ms (its
buffer manager, catalog and thread pool), and a table's sync opened five or
six: most of a small table's relational time. A cursor on one database per
process costs well under a millisecond and is a connection of its own: the
Arrow tables one registers are invisible to another, and closing it drops
them.

The database is created on first use and kept per process id: a forked worker
never touches its parent's (DuckDB is not fork-safe), it opens its own.
Validation keeps a database of its own: it caps memory and spills to a
folder of its own (validate/validator.py), settings that are a database's.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

_lock = threading.Lock()
_database: tuple[int, duckdb.DuckDBPyConnection] | None = None


def _process_database() -> duckdb.DuckDBPyConnection:
    global _database
    with _lock:
        if _database is None or _database[0] != os.getpid():
            _database = (os.getpid(), duckdb.connect())
        return _database[1]


@contextmanager
def duckdb_cursor() -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to this process's in-memory DuckDB, closed after the block
    (with whatever was registered on it)."""
    cursor = _process_database().cursor()
    try:
        yield cursor
    finally:
        cursor.close()


__all__ = ["duckdb_cursor"]
