"""Oracle through SQLAlchemy's `oracle+oracledb` dialect (oracledb not bundled).

Only the generated SQL is tested here (no server on this machine); `database`
is the service name (`options: {service_name: …}` also works).
"""

from __future__ import annotations

import sqlalchemy as sa

from mozart_etl.config.constants import SourceType
from mozart_etl.extract.connectors.base import Connector, import_driver

INSTALL_HINT = "pip install oracledb (thin mode needs no Oracle client)"


class OracleConnector(Connector):
    source_type = SourceType.ORACLE
    driver = "oracle+oracledb"

    def url(self) -> sa.URL:
        return self._server_url()

    def engine(self) -> sa.Engine:
        import_driver("oracledb", INSTALL_HINT)
        return super().engine()
