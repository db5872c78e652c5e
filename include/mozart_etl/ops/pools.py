"""The Airflow pools every valid tenant's tasks need, defined once.

A task in a pool Airflow does not have waits in `scheduled` forever, without an
error: each tenant's tasks run in `mozart_<tenant>`, its dbt tasks in
`dbt.pool` and its extracts in `source.pool` when set. `make up` imports
these; an operator can too (`mozart pools > pools.json; airflow pools import
pools.json`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from mozart_etl.config.constants import DbtTarget
from mozart_etl.config.isolation import tenant_pool
from mozart_etl.config.models import TenantConfig

TENANT_SLOTS = 8
"""A tenant's own pool: enough for its table tasks in parallel, and a bound
so one tenant cannot take every executor slot."""
DUCKDB_SLOTS = 1
"""DuckDB has one writer: two dbt tasks of a tenant would lock each other."""
TRINO_SLOTS = 4
SOURCE_SLOTS = 2
"""Extracts at once against one shared source database."""


class PoolSpec(BaseModel):
    """One pool as `airflow pools import` reads it."""

    model_config = ConfigDict(frozen=True)

    slots: int
    description: str
    include_deferred: bool = False


def tenant_pools(tenant: TenantConfig) -> dict[str, PoolSpec]:
    """The pools one tenant's DAG uses, with their slots."""
    tid = tenant.tenant_id
    pools = {
        tenant_pool(tenant): PoolSpec(
            slots=TENANT_SLOTS, description=f"every task of tenant {tid}"
        )
    }
    if tenant.dbt.pool:
        duckdb = tenant.dbt.target == DbtTarget.DUCKDB
        pools[tenant.dbt.pool] = PoolSpec(
            slots=DUCKDB_SLOTS if duckdb else TRINO_SLOTS,
            description=f"dbt tasks of tenant {tid} (tenant.yaml dbt.pool)",
        )
    if tenant.source.pool:
        pools[tenant.source.pool] = PoolSpec(
            slots=SOURCE_SLOTS,
            description="extracts from one shared source database (source.pool)",
        )
    return pools


def required_pools(tenants: Iterable[TenantConfig]) -> dict[str, PoolSpec]:
    """Every tenant's pools; a shared source pool appears once."""
    pools: dict[str, PoolSpec] = {}
    for tenant in tenants:
        for name, spec in tenant_pools(tenant).items():
            pools.setdefault(name, spec)
    return pools


def pools_json(pools: dict[str, PoolSpec]) -> str:
    """The file `airflow pools import` reads."""
    body = {name: spec.model_dump() for name, spec in sorted(pools.items())}
    return json.dumps(body, indent=2) + "\n"
