"""MySQL and MariaDB through PyMySQL (unbuffered cursor when streaming)."""

from __future__ import annotations

import sqlalchemy as sa

from mozart_etl.config.constants import SourceType
from mozart_etl.extract.connectors.base import Connector


class MysqlConnector(Connector):
    source_type = SourceType.MYSQL
    driver = "mysql+pymysql"

    def url(self) -> sa.URL:
        return self._server_url()
