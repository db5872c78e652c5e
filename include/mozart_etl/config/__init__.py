"""Tenant configuration: schema, loading, discovery (light: on the DAG parse path).

Which tenants are valid (transform files, isolation across tenants) is
`mozart_etl.config.registry` (not re-exported here: it imports the transform
package, which imports this one).
"""

from mozart_etl.config.constants import LoadMode, Severity, SourceType
from mozart_etl.config.loader import (
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
    "load_tenant",
    "project_root",
    "tenant_folders",
]
