"""SQL Server and Oracle: the generated SQL (no servers here) and the driver hint."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.mssql import pyodbc
from sqlalchemy.dialects.oracle import oracledb

from mozart_etl.config.constants import SourceType
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.lake import Lake
from mozart_etl.extract.connectors import (
    CONNECTORS,
    Credentials,
    DriverNotInstalled,
    connector_for,
)
from mozart_etl.extract.extractor import extract_table
from mozart_etl.extract.query import build_select
from tests.helpers import day_window, make_tenant, seoul_day, table_dict, utc

DAY = date(2026, 11, 15)
PASSWORD = "S3cr3t-Pa55"
COLUMNS = [
    {"name": "id", "type": "bigint"},
    {"name": "lot id", "type": "string"},
    {"name": "order", "type": "string"},
    {"name": "plant code", "type": "string"},
    {"name": "updated at", "type": "timestamptz"},
]


def _table(tmp_path: Path, source_type: SourceType) -> tuple[TenantConfig, TableConfig]:
    lots = table_dict(
        "lots",
        COLUMNS,
        source={"schema": "mes data", "table": "Lot History"},
        mode="incremental",
        cursor="updated at",
        tenant_filter={"column": "plant code", "param": "plant"},
        lookback_hours=2,
    )
    source = {
        "type": str(source_type),
        "host": "db.invalid",
        "port": 1433,
        "user": "mozart",
        "password": PASSWORD,
        "database": "mes",
    }
    tenant = make_tenant(
        tmp_path, [lots], source=source, params={"plant": "P1' OR '1'='1"}
    )
    return tenant, tenant.table("lots")


def _compiled(
    tmp_path: Path, source_type: SourceType, dialect: sa.Dialect
) -> tuple[str, dict[str, object]]:
    tenant, table = _table(tmp_path, source_type)
    connector = connector_for(source_type, Credentials(database="mes", host="h"))
    window = day_window(table, seoul_day(DAY))
    select = build_select(table, connector, window=window, params=tenant.params)
    compiled = select.compile(dialect=dialect)
    return str(compiled), compiled.params


def test_sql_server_select_is_quoted_and_bound(tmp_path: Path) -> None:
    sql, params = _compiled(
        tmp_path, SourceType.MSSQL, pyodbc.dialect(paramstyle="qmark")
    )

    t = "[mes data].[Lot History]"
    assert sql == (
        f"SELECT {t}.[id], {t}.[lot id], {t}.[order], {t}.[plant code], "
        f"{t}.[updated at] \nFROM {t} \n"
        f"WHERE {t}.[plant code] = ? AND {t}.[updated at] >= ? "
        f"AND {t}.[updated at] < ?"
    )
    # The window starts two hours early (lookback_hours: 2).
    assert params == {
        "tenant_value": "P1' OR '1'='1",
        "window_start": utc(2026, 11, 14, 13),
        "window_end": utc(2026, 11, 15, 15),
    }


def test_oracle_select_is_quoted_and_bound(tmp_path: Path) -> None:
    sql, params = _compiled(tmp_path, SourceType.ORACLE, oracledb.dialect())

    t = '"mes data"."Lot History"'
    assert sql == (
        f'SELECT {t}."id", {t}."lot id", {t}."order", {t}."plant code", '
        f'{t}."updated at" \nFROM {t} \n'
        f'WHERE {t}."plant code" = :tenant_value '
        f'AND {t}."updated at" >= :window_start AND {t}."updated at" < :window_end'
    )
    assert params["window_start"] == utc(2026, 11, 15, 15) - timedelta(hours=26)


def test_every_source_type_has_a_connector() -> None:
    assert set(CONNECTORS) == set(SourceType)


@pytest.mark.parametrize(
    ("source_type", "module", "hint"),
    [
        (SourceType.MSSQL, "pyodbc", "pip install pyodbc"),
        (SourceType.ORACLE, "oracledb", "pip install oracledb"),
    ],
)
def test_missing_driver_names_the_package_to_install(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    source_type: SourceType,
    module: str,
    hint: str,
) -> None:
    tenant, table = _table(tmp_path, source_type)
    credentials = Credentials.from_settings(tenant.source)
    connector = connector_for(source_type, credentials)
    caplog.set_level("DEBUG")

    with pytest.raises(DriverNotInstalled) as info:
        extract_table(
            tenant,
            table,
            seoul_day(DAY),
            connector,
            extract_id="x1",
            window=day_window(table, seoul_day(DAY)),
        )

    message = str(info.value)
    assert message.startswith(
        f"[tenant=acme table=lots] the {module!r} driver is not installed: {hint}"
    )
    assert isinstance(info.value.__cause__, ImportError)
    assert info.value.terminal
    assert PASSWORD not in message and PASSWORD not in caplog.text
    folder = Path(Lake(tenant).extract_folder("lots", DAY, "x1"))
    assert not (folder / "_manifest.json").exists()
