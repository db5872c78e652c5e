"""SQLite: the embedded default and the demo source."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa

from mozart_etl.config.constants import SourceType
from mozart_etl.extract.connectors.base import Connector

# SQLite has no timestamp type; our sources store instants as UTC text in this
# fixed-width form, so text comparison orders them correctly.
SQLITE_INSTANT_FORMAT = "%Y-%m-%d %H:%M:%S.%f+00:00"
# Naive timestamps: the same without the offset; dates: ISO `YYYY-MM-DD`.
SQLITE_NAIVE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class SqliteConnector(Connector):
    source_type = SourceType.SQLITE
    driver = "sqlite"
    typed_catalog = False
    case_blind_columns = True

    def url(self) -> sa.URL:
        return sa.URL.create("sqlite", database=self.credentials.database)

    def bind_instant(self, value: datetime | date) -> object:
        if not isinstance(value, datetime):
            return value.isoformat()
        if value.tzinfo is None:
            return value.strftime(SQLITE_NAIVE_FORMAT)
        return value.astimezone(UTC).strftime(SQLITE_INSTANT_FORMAT)
