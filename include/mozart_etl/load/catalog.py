"""The PyIceberg catalog a tenant's configuration points at (SQL or REST)."""

from __future__ import annotations

import logging
from pathlib import Path

from pyiceberg.catalog import Catalog, load_catalog

from mozart_etl.config.constants import CatalogType
from mozart_etl.config.models import TenantConfig
from mozart_etl.core.lake import s3_access

log = logging.getLogger(__name__)


def catalog_properties(tenant: TenantConfig) -> dict[str, str]:
    """Properties for `load_catalog`: the catalog's own (or, with
    `iceberg.catalog.conn_id`, its REST endpoint and auth from that Airflow
    connection) and the lake's `s3.*` settings for its FileIO, resolved as the
    lake resolves them (an AWS connection or tenant.yaml)."""
    config = tenant.iceberg.catalog
    warehouse = config.warehouse
    if "://" not in warehouse:
        Path(warehouse).mkdir(parents=True, exist_ok=True)
        warehouse = Path(warehouse).as_uri()
    properties = {"type": str(config.type), "warehouse": warehouse}
    if config.uri is not None:
        properties["uri"] = config.uri
    if config.type == CatalogType.SQL:
        properties["init_catalog_tables"] = "true"
    if config.conn_id is not None:
        from mozart_etl.factory.connections import rest_catalog_properties

        properties.update(
            rest_catalog_properties(config.conn_id, tenant=tenant.tenant_id)
        )
    access = s3_access(tenant)
    if access is not None:
        properties.update(access.pyiceberg_properties())
    return properties


def open_catalog(tenant: TenantConfig) -> Catalog:
    """The tenant's catalog. A SQL catalog creates its own tables on first use,
    one after the other; tenants sharing one catalog database (the embedded
    default: one SQLite file) whose first tasks start at once race to create
    them, and a loser gets "table iceberg_tables already exists" (seen live, 1
    in 10 with four processes). Each retry finds more of them made; past a few
    tries the error is real."""
    properties = catalog_properties(tenant)
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            return load_catalog(tenant.iceberg.catalog.name, **properties)
        except Exception as exc:  # SQLAlchemy's OperationalError or IntegrityError
            racing = (
                "already exists" in str(exc) and "init_catalog_tables" in properties
            )
            if not racing or attempt == OPEN_ATTEMPTS:
                raise
            log.info("catalog tables being created by another process: %s", exc)
    raise AssertionError("unreachable")


OPEN_ATTEMPTS = 5
