"""The connector registry: one module per database type behind `Connector`."""

from __future__ import annotations

from mozart_etl.config.constants import SourceType
from mozart_etl.core.credentials import Credentials
from mozart_etl.extract.connectors.base import (
    Connector,
    DriverNotInstalled,
)
from mozart_etl.extract.connectors.mssql import MssqlConnector
from mozart_etl.extract.connectors.mysql import MysqlConnector
from mozart_etl.extract.connectors.oracle import OracleConnector
from mozart_etl.extract.connectors.postgresql import PostgresConnector
from mozart_etl.extract.connectors.sqlite import SqliteConnector

CONNECTORS: dict[SourceType, type[Connector]] = {
    connector.source_type: connector
    for connector in (
        SqliteConnector,
        PostgresConnector,
        MysqlConnector,
        MssqlConnector,
        OracleConnector,
    )
}


def connector_for(source_type: SourceType, credentials: Credentials) -> Connector:
    return CONNECTORS[source_type](credentials)


__all__ = [
    "CONNECTORS",
    "Connector",
    "Credentials",
    "DriverNotInstalled",
    "connector_for",
]
