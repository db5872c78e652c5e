"""`mozart new-tenant`: a new tenant folder from `tenants/_template`."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from mozart_etl.config.loader import load_tenant, tenants_dir
from mozart_etl.config.models import TENANT_ID_PATTERN
from mozart_etl.core.errors import ConfigError
from mozart_etl.dbt.project import TEMPLATE_TENANT, TENANT_ID_PLACEHOLDER

log = logging.getLogger(__name__)

UPPER_PLACEHOLDER = "__TENANT_ID_UPPER__"
"""The id in upper case: Airflow reads a connection from the environment as
`AIRFLOW_CONN_<CONN_ID IN UPPER CASE>`, and a lower-case name is never read."""
_GENERATED = shutil.ignore_patterns("target", "dbt_packages", "logs")


def new_tenant(tenant_id: str, root: Path | None = None) -> Path:
    """Copy the template with the id filled in; the tenant must then validate."""
    if not re.match(TENANT_ID_PATTERN, tenant_id):
        raise ConfigError(
            f"invalid tenant id {tenant_id!r}: lower case letters, digits and _, "
            "starting with a letter (it names the DAG and the namespaces)",
            tenant=tenant_id,
        )
    root = root or tenants_dir()
    target = root / tenant_id
    if target.exists():
        raise ConfigError(f"{target} already exists", tenant=tenant_id)
    shutil.copytree(root / TEMPLATE_TENANT, target, ignore=_GENERATED)
    for path in target.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            text = text.replace(UPPER_PLACEHOLDER, tenant_id.upper())
            path.write_text(
                text.replace(TENANT_ID_PLACEHOLDER, tenant_id), encoding="utf-8"
            )
    tenant = load_tenant(target)
    log.info("tenant %s scaffolded in %s", tenant.tenant_id, target)
    return target
