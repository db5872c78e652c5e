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
  would read the other's source, target or warehouse;
- a tenant's lake folder (`storage.lake_root` / prefix) must not be another's
  nor lie inside another's.

Resources are compared by what they resolve to, not by how they are written:
files and lake folders by their real path (`x/../` and symlinks followed, as
the operating system does when the task opens them), connection ids case-folded
(Airflow's environment-variable secrets backend reads
`AIRFLOW_CONN_<conn_id.upper()>`, so `Acme_Src` and `acme_src` are one
connection; other backends may be case sensitive, so folding is the safe side).

An offending tenant gets the usual stand-in error DAG; the others build.
"""

from __future__ import annotations

import os
import posixpath
from collections import defaultdict
from pathlib import PurePosixPath
from urllib.parse import urlsplit, urlunsplit

from mozart_etl.config.constants import DbtTarget
from mozart_etl.config.models import TenantConfig
from mozart_etl.core.errors import ConfigError


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


TENANT_CONNECTIONS = ("source.conn_id", "publish.target.conn_id", "dbt.trino.conn_id")
"""The connections only their tenant may name (the others, the lake's, the
catalog's and the alert channels', are the platform's to share)."""


def shared_resources(tenant: TenantConfig) -> dict[str, str]:
    """Resources no two tenants may name (connections, the warehouse file), as
    written in tenant.yaml (after `${ENV}` substitution and validation)."""
    resources = {
        setting: conn_id
        for setting, conn_id in tenant.connections().items()
        if setting in TENANT_CONNECTIONS
    }
    if tenant.dbt.duckdb_path:
        resources["dbt.duckdb_path"] = tenant.dbt.duckdb_path
    return resources


def connection_key(conn_id: str) -> str:
    """What a connection id resolves to: Airflow's environment backend looks up
    `AIRFLOW_CONN_` + `conn_id.upper()`; upper-casing first keeps the ids it
    merges together (`acme_src`, `ACME_src`, and `acme_src` with a dotless i, U+0131),
    case-folding then merges what other case-insensitive stores would."""
    return conn_id.upper().casefold()


def real_location(value: str) -> str:
    """Where a local path or a URI really points.

    A local path is resolved as the OS resolves it when a task opens it:
    tenant.yaml's relative paths were already made absolute against the project
    root by the config schema (`models._resolve_path`, the value every task
    uses), then `..` and symlinks are followed (`os.path.realpath`, non-strict:
    the file need not exist yet). A `file://` URI is its path; another URI
    (`s3://`) keeps its scheme and bucket with its path normalised (`x/../`
    removed: some clients do the same).
    """
    parts = urlsplit(value)
    if parts.scheme == "file":
        return os.path.realpath(parts.path)
    if "://" not in value:
        return os.path.realpath(value)
    path = posixpath.normpath(parts.path or "/")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def resolved_resource(setting: str, value: str) -> str:
    """The identity two tenants' resources are compared by."""
    if setting.endswith("conn_id"):
        return f"conn:{connection_key(value)}"
    return f"path:{real_location(value)}"


def lake_folder(tenant: TenantConfig) -> str:
    """The real folder of the tenant's lake files: `<lake_root>/<prefix>` as
    mozart_etl.core.lake.Lake writes to, resolved (the prefix folder itself may be a
    symlink into another tenant's)."""
    root = tenant.storage.lake_root.rstrip("/")
    return real_location(f"{root}/{tenant.lake_prefix}")


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
    claims: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for tenant_id, tenant in tenants.items():
        for setting, written in shared_resources(tenant).items():
            try:
                resolved = resolved_resource(setting, written)
            except (ValueError, OSError) as exc:  # a NUL byte, a path too long
                problems[tenant_id].append(f"{setting} {written!r}: {exc}")
                continue
            claims[resolved].append((tenant_id, setting, written))
    for resolved, claimants in claims.items():
        users = sorted({tenant_id for tenant_id, _, _ in claimants})
        if len(users) < 2:
            continue
        kind, _, identity = resolved.partition(":")
        owner = owner_of(PurePosixPath(identity).stem.lower(), ids)
        for tenant_id, setting, written in claimants:
            if tenant_id == owner:
                continue  # the others are the intruders
            others = [other for other in users if other != tenant_id]
            how = _resolution(kind, written, identity, claimants)
            problems[tenant_id].append(
                f"{setting} {written!r}{how} is also used by tenant(s) {others}"
                f"{_owned_by(owner, claimants)}: each tenant needs its own"
            )
    _lake_intrusions(tenants, ids, problems)
    return {
        tenant_id: IsolationError("; ".join(messages), tenant=tenant_id)
        for tenant_id, messages in problems.items()
    }


def _resolution(
    kind: str, written: str, identity: str, claimants: list[tuple[str, str, str]]
) -> str:
    """How a value written unlike the others came to be theirs, for the message."""
    if kind == "conn":
        if all(other == written for _, _, other in claimants):
            return ""
        return (
            f" (connection ids are case-insensitive: Airflow reads "
            f"AIRFLOW_CONN_{written.upper()})"
        )
    return "" if identity == written else f" (resolves to {identity!r})"


def _owned_by(owner: str | None, claimants: list[tuple[str, str, str]]) -> str:
    for tenant_id, setting, written in claimants:
        if tenant_id == owner:
            return f"; it is tenant {owner}'s ({setting} {written!r})"
    return ""


def _lake_intrusions(
    tenants: dict[str, TenantConfig],
    ids: list[str],
    problems: dict[str, list[str]],
) -> None:
    """Add to `problems` the tenants whose real lake folder is another tenant's,
    or inside it.

    Equal folders: refused for the tenant the folder's name does not belong to
    (both, if it is neither's). A folder inside another: refused for the inner
    one, which would write among the outer tenant's files.
    """
    folders: dict[str, list[str]] = defaultdict(list)
    for tenant_id, tenant in tenants.items():
        try:
            folders[lake_folder(tenant)].append(tenant_id)
        except (ValueError, OSError) as exc:  # a NUL byte, a path too long
            problems[tenant_id].append(
                f"storage.lake_root {tenant.storage.lake_root!r}: {exc}"
            )
    for folder, users in folders.items():
        owner = owner_of(posixpath.basename(folder), ids) if len(users) > 1 else None
        for tenant_id in users:
            others = [other for other in users if other != tenant_id]
            if others and tenant_id != owner:
                message = _lake_message(tenants[tenant_id], folder, others)
                problems[tenant_id].append(message)
                continue
            outer = _enclosing(folder, folders)
            if outer is not None:
                message = _lake_message(
                    tenants[tenant_id], folder, folders[outer], inside=outer
                )
                problems[tenant_id].append(message)


def _enclosing(folder: str, folders: dict[str, list[str]]) -> str | None:
    """The nearest other tenant folder that contains `folder`, if any."""
    parent = posixpath.dirname(folder)
    while parent and parent != folder:
        if parent in folders:
            return parent
        folder, parent = parent, posixpath.dirname(parent)
    return None


def _lake_message(
    tenant: TenantConfig, folder: str, others: list[str], inside: str | None = None
) -> str:
    written = f"{tenant.storage.lake_root.rstrip('/')}/{tenant.lake_prefix}"
    where = f"inside {inside!r}, the lake folder of" if inside else "the lake folder of"
    return (
        f"storage.lake_root {tenant.storage.lake_root!r} with storage.prefix "
        f"{tenant.lake_prefix!r} resolves to {folder!r}"
        f"{'' if folder == written else f' (written {written!r})'}, {where} "
        f"tenant(s) {sorted(others)}: each tenant needs its own lake folder"
    )


__all__ = [
    "IsolationError",
    "connection_key",
    "isolation_errors",
    "lake_folder",
    "owner_of",
    "real_location",
    "tenant_pool",
]
