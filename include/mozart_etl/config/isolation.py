"""Tenant isolation, checked across every tenant before any DAG is built.

A tenant's YAML names things other tenants could also name: its lake prefix,
its Iceberg namespaces, its dbt pool and DuckDB file, its Trino user, its
Airflow connections.
Each must be its own:

- names derived from tenant ids (prefix, namespaces, pool, Trino user) must carry the
  tenant's id as `_`-separated words, and no other tenant's id that matches
  more words (so `acme` cannot take `acme_b_raw`, which is `acme_b`'s);
- a connection id or a DuckDB file named by two tenants is refused for the
  one whose id it does not carry (for both, if it carries neither's): one
  would read the other's source, target or warehouse.

An offending tenant gets the usual stand-in error DAG; the others build.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import PurePosixPath

from mozart_etl.config.constants import DbtTarget
from mozart_etl.config.models import TenantConfig
from mozart_etl.errors import ConfigError


class IsolationError(ConfigError):
    """A tenant's configuration reaches into another tenant's resources."""


def tenant_pool(tenant: TenantConfig) -> str:
    """The Airflow pool of the tenant's tasks (dbt tasks use `dbt.pool` if set)."""
    return f"mozart_{tenant.tenant_id}"


def owned_names(tenant: TenantConfig) -> dict[str, str]:
    """What the tenant claims, by setting name."""
    names = {
        "storage.prefix": tenant.lake_prefix,
        "iceberg.raw_namespace": tenant.raw_namespace,
        "iceberg.namespace": tenant.namespace,
    }
    if tenant.dbt.pool:
        names["dbt.pool"] = tenant.dbt.pool
    if tenant.dbt.target == DbtTarget.TRINO and tenant.dbt.trino is not None:
        # Trino's rules (stack/trino/rules.json) grant by user name.
        names["dbt.trino.user"] = tenant.dbt.trino.user
    return names


def shared_resources(tenant: TenantConfig) -> dict[str, str]:
    """Resources no two tenants may name (connections, the warehouse file)."""
    resources: dict[str, str] = {}
    if tenant.source.conn_id:
        resources["source.conn_id"] = tenant.source.conn_id
    if tenant.publish is not None and tenant.publish.target.conn_id:
        resources["publish.target.conn_id"] = tenant.publish.target.conn_id
    if tenant.dbt.trino is not None and tenant.dbt.trino.conn_id:
        resources["dbt.trino.conn_id"] = tenant.dbt.trino.conn_id
    if tenant.dbt.duckdb_path:
        resources["dbt.duckdb_path"] = tenant.dbt.duckdb_path
    return resources


def owner_of(name: str, tenant_ids: list[str]) -> str | None:
    """The tenant whose id matches the most `_`-words of `name` (None if none,
    or if two ids tie)."""
    words = name.split("_")
    best: list[str] = []
    best_len = 0
    for tenant_id in tenant_ids:
        id_words = tenant_id.split("_")
        size = len(id_words)
        runs = (words[i : i + size] for i in range(len(words) - size + 1))
        if any(run == id_words for run in runs):
            if size > best_len:
                best, best_len = [tenant_id], size
            elif size == best_len:
                best.append(tenant_id)
    return best[0] if len(best) == 1 else None


def isolation_errors(tenants: dict[str, TenantConfig]) -> dict[str, IsolationError]:
    """The tenants that reach into another's resources, each with its error."""
    ids = sorted(tenants)
    problems: dict[str, list[str]] = defaultdict(list)
    for tenant_id, tenant in tenants.items():
        for setting, name in owned_names(tenant).items():
            owner = owner_of(name, ids)
            if owner != tenant_id:
                whose = f"tenant {owner}'s" if owner else "no tenant's own"
                problems[tenant_id].append(
                    f"{setting} {name!r} is {whose} name: use one carrying "
                    f"{tenant_id!r} (e.g. {tenant_id!r} or '{tenant_id}_raw')"
                )
    claims: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for tenant_id, tenant in tenants.items():
        for setting, resource in shared_resources(tenant).items():
            claims[resource].append((tenant_id, setting))
    for resource, claimants in claims.items():
        users = sorted({tenant_id for tenant_id, _ in claimants})
        if len(users) < 2:
            continue
        owner = owner_of(PurePosixPath(resource).stem, ids)
        for tenant_id, setting in claimants:
            if tenant_id == owner:
                continue  # the others are the intruders
            others = [other for other in users if other != tenant_id]
            problems[tenant_id].append(
                f"{setting} {resource!r} is also used by tenant(s) {others}: "
                "each tenant needs its own"
            )
    return {
        tenant_id: IsolationError("; ".join(messages), tenant=tenant_id)
        for tenant_id, messages in problems.items()
    }


__all__ = ["IsolationError", "isolation_errors", "owner_of", "tenant_pool"]
