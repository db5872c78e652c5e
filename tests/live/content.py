"""Content fingerprints of a tenant's raw tables and marts, for "same result" checks.

Rows are compared as sorted data, without the columns the pipeline stamps per
run (names starting with `_`: run ids, load times) and the tenant's id, so two
tenants that processed the same days in different orders or attempts compare
equal exactly when their data does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from mozart_etl.config.loader import load_tenant
from mozart_etl.load.catalog import open_catalog

TENANT_COLUMNS = frozenset({"tenant_id"})
"""Marts name their tenant in every row; two tenants' data compares without it."""


def table_fingerprint(table: pa.Table) -> tuple[int, str]:
    """(row count, sha256 of the sorted rows of the data columns)."""
    columns = sorted(
        name
        for name in table.column_names
        if not name.startswith("_") and name not in TENANT_COLUMNS
    )
    rows = sorted(
        repr(tuple(row[name] for name in columns)) for row in table.to_pylist()
    )
    digest = hashlib.sha256("\n".join([repr(columns), *rows]).encode()).hexdigest()
    return len(rows), digest


def raw_rows(tenant_folder: Path, table: str) -> pa.Table:
    tenant = load_tenant(tenant_folder)
    catalog = open_catalog(tenant)
    return catalog.load_table(f"{tenant.raw_namespace}.{table}").scan().to_arrow()


def live_raw_rows(tenant_folder: Path, table: str) -> pa.Table:
    """A raw table's current rows: each key's latest version, unless closed."""
    from mozart_etl.load.versions import live_rows

    tenant = load_tenant(tenant_folder)
    raw = open_catalog(tenant).load_table(f"{tenant.raw_namespace}.{table}")
    return live_rows(raw, tenant.table(table))


def mart_rows(tenant_folder: Path, mart: str) -> pa.Table:
    tenant = load_tenant(tenant_folder)
    path = tenant.dbt.duckdb_path
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(
            f'SELECT * FROM "{tenant.namespace}"."{mart}"'
        ).to_arrow_table()


def fingerprints(
    tenant_folder: Path, tables: tuple[str, ...], marts: tuple[str, ...]
) -> dict[str, Any]:
    """Every raw table's and mart's fingerprint, keyed `raw.<t>` / `mart.<m>`."""
    result: dict[str, Any] = {}
    for table in tables:
        result[f"raw.{table}"] = table_fingerprint(raw_rows(tenant_folder, table))
    for mart in marts:
        result[f"mart.{mart}"] = table_fingerprint(mart_rows(tenant_folder, mart))
    return result
