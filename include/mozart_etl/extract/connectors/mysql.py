"""MySQL and MariaDB through PyMySQL (unbuffered cursor when streaming)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from mozart_etl.config.constants import SourceType
from mozart_etl.extract.connectors.base import Connector


class MysqlConnector(Connector):
    source_type = SourceType.MYSQL
    driver = "mysql+pymysql"
    case_blind_columns = True

    def url(self) -> sa.URL:
        return self._server_url()

    def engine(self) -> sa.Engine:
        """Sessions in UTC: TIMESTAMP columns are read, and compared with the
        window bounds (bound as UTC wall time), in the session time zone, which
        otherwise is the server's default (often local time)."""
        engine = super().engine()
        sa.event.listen(engine, "connect", _utc_session)
        return engine


def _utc_session(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET time_zone = '+00:00'")
