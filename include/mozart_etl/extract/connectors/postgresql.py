"""PostgreSQL through psycopg 3 (server-side cursor when streaming)."""

from __future__ import annotations

import sqlalchemy as sa

from mozart_etl.config.constants import SourceType
from mozart_etl.extract.connectors.base import Connector


class PostgresConnector(Connector):
    source_type = SourceType.POSTGRESQL
    driver = "postgresql+psycopg"

    def url(self) -> sa.URL:
        return self._server_url()
