"""What a database driver's error means for a retry: one classifier for
every connection this platform opens (the source's reads, the APS publish).

A retry helps when the network, the server or a lock was in the way; it cannot
help when the server refused the credentials or the grants, when the table or
a column is not there, or when a value cannot be read: those fail the task at
once instead of sitting in `up_for_retry` for the retry delay, twice. The
decision is made on the driver's error codes (psycopg's SQLSTATE, PyMySQL's
errno); SQLite has only one code for both "no such table" and a syntax error,
so its message text decides. Anything not listed is retryable: a wrongly
retried error costs a few minutes, a wrongly terminal one a missed production
day.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Cause(StrEnum):
    ACCESS = "access"
    """Credentials, privileges or the database itself: terminal."""
    SCHEMA = "schema"
    """No such table or column: terminal."""
    VALUE = "value"
    """A value the driver cannot decode or convert (invalid UTF-8, a number
    out of range): the same row comes back on a retry, terminal."""
    TRANSIENT = "transient"
    """Network, server shutdown, locks, anything else: retryable."""


_PG_STATES = {
    "28P01": Cause.ACCESS,  # invalid_password
    "28000": Cause.ACCESS,  # invalid_authorization_specification
    "3D000": Cause.ACCESS,  # invalid_catalog_name (no such database)
    "42501": Cause.ACCESS,  # insufficient_privilege
    "42P01": Cause.SCHEMA,  # undefined_table
    "42703": Cause.SCHEMA,  # undefined_column
}
# libpq reports a failed login as text only (psycopg's OperationalError has no
# SQLSTATE then), so the server's FATAL messages stand for their codes. They
# are English unless the server's lc_messages says otherwise; a translated
# one is classified retryable, the safe side.
_PG_LOGIN = re.compile(
    r"FATAL:\s+(password authentication failed|role \".*\" does not exist|"
    r"role \".*\" is not permitted to log in|database \".*\" does not exist|"
    r"permission denied for database|no pg_hba\.conf entry)"
)
_MYSQL_ERRNOS = {
    1044: Cause.ACCESS,  # ER_DBACCESS_DENIED_ERROR
    1045: Cause.ACCESS,  # ER_ACCESS_DENIED_ERROR
    1049: Cause.ACCESS,  # ER_BAD_DB_ERROR
    1142: Cause.ACCESS,  # ER_TABLEACCESS_DENIED_ERROR
    1143: Cause.ACCESS,  # ER_COLUMNACCESS_DENIED_ERROR
    1146: Cause.SCHEMA,  # ER_NO_SUCH_TABLE
    1054: Cause.SCHEMA,  # ER_BAD_FIELD_ERROR
    1366: Cause.VALUE,  # ER_TRUNCATED_WRONG_VALUE_FOR_FIELD (bad string value)
    1292: Cause.VALUE,  # ER_TRUNCATED_WRONG_VALUE
}
_SQLITE = re.compile(r"^no such (table|column)\b")
_SQLITE_VALUE = re.compile(r"^Could not decode to UTF-8 column '([^']+)'")
_COLUMN = (
    re.compile(r'column "([^"]+)" does not exist'),  # PostgreSQL, unqualified
    re.compile(r"column (?:\w+\.)+(\w+) does not exist"),  # PostgreSQL, t.c
    re.compile(r"Unknown column '(?:[^']*\.)?([^'.]+)' in"),  # MySQL/MariaDB
    re.compile(r"no such column: (?:\w+\.)?(\S+)"),  # SQLite
    _SQLITE_VALUE,
)


def classify(exc: BaseException) -> Cause:
    """The cause of a driver error (or SQLAlchemy's wrapper of one)."""
    error = getattr(exc, "orig", None) or exc
    module = type(error).__module__
    if module.startswith("psycopg"):
        state = getattr(error, "sqlstate", None)
        if isinstance(state, str):
            if state.startswith("22"):  # class 22: data exception
                return Cause.VALUE
            return _PG_STATES.get(state, Cause.TRANSIENT)
        return Cause.ACCESS if _PG_LOGIN.search(str(error)) else Cause.TRANSIENT
    # (SQLAlchemy also sets `sqlstate` on PyMySQL's errors: the errno is finer.)
    if module.startswith("pymysql") or module.startswith("MySQLdb"):
        args = getattr(error, "args", ())
        code = args[0] if args and isinstance(args[0], int) else None
        return _MYSQL_ERRNOS.get(code, Cause.TRANSIENT) if code else Cause.TRANSIENT
    if module == "sqlite3" and _SQLITE.match(str(error)):
        return Cause.SCHEMA
    if module == "sqlite3" and _SQLITE_VALUE.match(str(error)):
        return Cause.VALUE
    return Cause.TRANSIENT


def missing_column(message: str) -> str | None:
    """The column a "no such column" (or "cannot decode") message names, if
    it names one."""
    for pattern in _COLUMN:
        found = pattern.search(message)
        if found:
            return found.group(1)
    return None
