"""Tenant configuration: schema, loading, discovery (light: on the DAG parse path)."""

from mozart_etl.config.constants import LoadMode, Severity, SourceType
from mozart_etl.config.loader import (
    iter_tenants,
    load_tenant,
    project_root,
    tenant_folders,
)
from mozart_etl.config.models import TableConfig, TenantConfig

__all__ = [
    "LoadMode",
    "Severity",
    "SourceType",
    "TableConfig",
    "TenantConfig",
    "iter_tenants",
    "load_tenant",
    "project_root",
    "tenant_folders",
]
