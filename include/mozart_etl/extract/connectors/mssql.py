"""SQL Server through SQLAlchemy's `mssql+pyodbc` dialect (pyodbc not bundled).

Only the generated SQL is tested here (no server on this machine); set the
ODBC driver with `options: {driver: "ODBC Driver 18 for SQL Server"}`.
"""

from __future__ import annotations

import sqlalchemy as sa

from mozart_etl.config.constants import SourceType
from mozart_etl.extract.connectors.base import Connector, import_driver

INSTALL_HINT = (
    "pip install pyodbc, and install Microsoft's ODBC driver (msodbcsql18) "
    "on the worker image"
)


class MssqlConnector(Connector):
    source_type = SourceType.MSSQL
    driver = "mssql+pyodbc"
    case_blind_columns = True

    def url(self) -> sa.URL:
        return self._server_url()

    def engine(self) -> sa.Engine:
        import_driver("pyodbc", INSTALL_HINT)
        return super().engine()
