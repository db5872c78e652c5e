"""A source connection's extras reach the driver (factory/connections.py).

Airflow connections carry driver settings in `extra` (sslmode for PostgreSQL,
charset for MariaDB); they used to be dropped when the source connection was
read. Each test reads back, from the server, what the driver was told:
PostgreSQL's application_name and its pg_stat_ssl row, libpq's own sslmode,
MariaDB's @@character_set_client. An extra the driver would refuse (Airflow's
own `cursor`) is left out instead of failing the connect.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mozart_etl.config.constants import SourceType
from mozart_etl.config.models import TenantConfig
from mozart_etl.factory.connections import driver_options, source_connector
from tests.conftest import MYSQL_HOST
from tests.helpers import make_tenant, table_dict

TABLES = [table_dict("lots", [{"name": "id", "type": "int"}], primary_key=["id"])]


def _tenant(tmp_path: Path, source: dict[str, Any]) -> TenantConfig:
    return make_tenant(tmp_path, TABLES, source=source, tenant_id="extras")


def _scalars(tenant: TenantConfig, *queries: str) -> list[Any]:
    engine = source_connector(tenant).engine()
    try:
        with engine.connect() as conn:
            return [conn.execute(sa.text(query)).scalar_one() for query in queries]
    finally:
        engine.dispose()


def _postgres_connection(database: str, extra: dict[str, str]) -> str:
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "port": 5432,
            "login": "postgres",
            "schema": database,
            "extra": extra,
        }
    )


def test_postgresql_extras_reach_libpq_and_the_server(
    tmp_path: Path, postgres_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = {
        "sslmode": "disable",
        "application_name": "mozart-extras-7c1",
        "cursor": "dictcursor",  # the postgres provider's, not libpq's
    }
    monkeypatch.setenv(
        "AIRFLOW_CONN_EXTRAS_PG", _postgres_connection(postgres_db, extra)
    )
    source = {
        "type": "postgresql",
        "conn_id": "extras_pg",
        "database": "overridden",
        "options": {"application_name": "from-tenant-yaml"},  # the extra wins
    }
    tenant = _tenant(tmp_path, source)

    connector = source_connector(tenant)
    assert connector.credentials.options == {
        "application_name": "mozart-extras-7c1",
        "sslmode": "disable",
    }
    engine = connector.engine()
    try:
        with engine.connect() as conn:
            name = conn.execute(sa.text("SELECT current_setting('application_name')"))
            ssl = conn.execute(
                sa.text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            )
            assert name.scalar_one() == "mozart-extras-7c1"
            assert ssl.scalar_one() is False
            driver = conn.connection.dbapi_connection
            assert driver is not None
            assert driver.info.get_parameters()["sslmode"] == "disable"  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_postgresql_sslmode_require_is_what_libpq_is_told(
    tmp_path: Path, postgres_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local server has no SSL: `sslmode=require` from the connection's
    extra must make the connect fail, and `disable` must not."""
    (enabled,) = _scalars(
        _tenant(
            tmp_path,
            {
                "type": "postgresql",
                "host": "127.0.0.1",
                "user": "postgres",
                "database": postgres_db,
            },
        ),
        "SHOW ssl",
    )
    if enabled == "on":
        pytest.skip("this PostgreSQL serves SSL: require would succeed")
    monkeypatch.setenv(
        "AIRFLOW_CONN_EXTRAS_PG",
        _postgres_connection(postgres_db, {"sslmode": "require"}),
    )
    tenant = _tenant(
        tmp_path, {"type": "postgresql", "conn_id": "extras_pg", "database": "x"}
    )
    with pytest.raises(sa.exc.OperationalError, match="SSL"):
        _scalars(tenant, "SELECT 1")


def test_mariadb_charset_from_the_connection(
    tmp_path: Path, mysql_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def connection(extra: dict[str, str]) -> str:
        return json.dumps(
            {
                "conn_type": "mysql",
                "host": MYSQL_HOST,
                "port": 3306,
                "login": "root",
                "schema": mysql_db,
                "extra": extra,
            }
        )

    tenant = _tenant(
        tmp_path, {"type": "mysql", "conn_id": "extras_my", "database": "x"}
    )
    queries = ("SELECT @@character_set_client", "SELECT DATABASE()")
    monkeypatch.setenv("AIRFLOW_CONN_EXTRAS_MY", connection({}))
    assert _scalars(tenant, *queries) == ["utf8mb4", mysql_db]  # PyMySQL's default

    monkeypatch.setenv(
        "AIRFLOW_CONN_EXTRAS_MY",
        connection({"charset": "latin1", "cursor": "sscursor"}),
    )
    assert _scalars(tenant, *queries) == ["latin1", mysql_db]


def test_only_the_drivers_own_extras_pass(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    extra = {
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ssl/ca.pem",
        "options": "-c search_path=evil",  # would replace the session settings
        "iam": True,
        "aws_conn_id": "x",
        "secret_token": "Do-Not-Log-9d1",
    }
    assert driver_options(extra, SourceType.POSTGRESQL, conn_id="c") == {
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ssl/ca.pem",
    }
    assert driver_options(extra, SourceType.MYSQL, conn_id="c") == {}
    assert driver_options({"charset": "utf8"}, SourceType.MYSQL, conn_id="c") == {
        "charset": "utf8"
    }
    assert "secret_token" in caplog.text  # the name, so an operator sees why
    assert "Do-Not-Log-9d1" not in caplog.text  # never the value
