"""One interface for every source database; dialects differ only in small ways."""

from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import date, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa

from mozart_etl.config.constants import SourceType
from mozart_etl.core.credentials import Credentials
from mozart_etl.core.errors import ConfigError, MozartError

if TYPE_CHECKING:
    import pyarrow as pa


class DriverNotInstalled(MozartError):
    """The source's database driver is not installed: a retry cannot help."""

    terminal = True


class ColumnConversionError(ValueError):
    """A value that does not fit its declared type (`column`, when known), or,
    `type_error` False, data that did not parse at all: the message must not
    blame the declared type for that."""

    def __init__(
        self, message: str, column: str | None, *, type_error: bool = True
    ) -> None:
        super().__init__(message)
        self.column = column
        self.type_error = type_error


MAX_VALUE_SETTING = "MOZART_MAX_VALUE_BYTES"
"""The largest value (bytes as the source sends it) an extract accepts."""
DEFAULT_MAX_VALUE_BYTES = 1 << 30
"""1 GiB: PostgreSQL's own limit for one value, and half of what one Arrow
string array can hold (32-bit offsets), so a block with such a value still
parses. A value above it would otherwise be held whole in memory first."""


def max_value_bytes() -> int:
    """The configured maximum (`MOZART_MAX_VALUE_BYTES`), read per extract so
    an operator can raise it for one run."""
    text = os.environ.get(MAX_VALUE_SETTING)
    if not text:
        return DEFAULT_MAX_VALUE_BYTES
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(
            f"{MAX_VALUE_SETTING} must be a number of bytes, not {text!r}"
        ) from None
    if value <= 0:
        raise ConfigError(f"{MAX_VALUE_SETTING} must be positive, not {value}")
    return value


class ValueTooLargeError(ValueError):
    """A value in `column` of at least `size` bytes, over `limit` (the extract's
    maximum, or a server's): raised where it is met, named by the extractor."""

    def __init__(self, column: str | None, size: int, limit: int, what: str) -> None:
        super().__init__(f"a value of at least {size} bytes, over {what} of {limit}")
        self.column, self.size, self.limit, self.what = column, size, limit, what


def import_driver(module: str, hint: str) -> ModuleType:
    """Import an optional driver, or say how to install it (chained)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DriverNotInstalled(
            f"the {module!r} driver is not installed: {hint}"
        ) from exc


class Connector(ABC):
    """Opens a streaming SQLAlchemy engine and adapts bound values to the dialect."""

    source_type: ClassVar[SourceType]
    driver: ClassVar[str]
    typed_catalog: ClassVar[bool] = True
    """Whether the catalog's column types are the values' types (SQLite's are
    not: text columns hold dates, instants and decimals by convention)."""
    case_blind_columns: ClassVar[bool] = False
    """Whether the database finds a column whatever the case of its name, even
    quoted (MySQL/MariaDB, SQLite, SQL Server's default collations); PostgreSQL
    and Oracle compare quoted names exactly."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    @abstractmethod
    def url(self) -> sa.URL:
        """The SQLAlchemy URL; never logged (it holds the password)."""

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.url(), poolclass=sa.NullPool)

    def driver_errors(self) -> tuple[type[Exception], ...]:
        """Driver exceptions raised outside SQLAlchemy (by a fast path)."""
        return ()

    def fast_batches(
        self,
        conn: sa.Connection,
        select: sa.Select[*tuple[Any, ...]],
        schema: pa.Schema,
    ) -> Iterator[pa.RecordBatch] | None:
        """Arrow batches straight from the database, or None to use the generic
        SQLAlchemy path (rows in Python, converted per column)."""
        return None

    def bind_instant(self, value: datetime | date) -> object:
        """How a window bound is compared with the cursor column in this database:
        an aware UTC instant, a naive UTC wall time or a date (`cursor_bound`)."""
        return value

    def describe(self) -> str:
        """Where we read from, without secrets (for logs and errors)."""
        c = self.credentials
        where = f"{c.host}:{c.port}" if c.host else "local"
        return f"{self.source_type} {where}/{c.database}"

    def _server_url(self) -> sa.URL:
        c = self.credentials
        return sa.URL.create(
            self.driver,
            username=c.user,
            password=c.password.get_secret_value() if c.password else None,
            host=c.host,
            port=c.port,
            database=c.database,
            query={key: str(value) for key, value in c.options.items()},
        )
