"""The tenant registry: the one answer to "which tenants are there, and is each
one valid?".

Airflow's DAG factory and every `mozart` command read tenants from here, so a
tenant `mozart validate` accepts is a tenant Airflow builds, and one it refuses
is the one that becomes a stand-in error DAG. A tenant is valid when

1. its tenant.yaml loads and passes the schema (`config/loader.py`),
2. every transform it declares has its module file (`transform/reference.py`;
   the module is not imported: that would run tenant code at DAG parse), and
3. it reaches into no other tenant's names or resources
   (`config/isolation.py`: checked across every tenant that loaded).

Each tenant is loaded on its own: one broken tenant.yaml stops only its
tenant. The registry does not log the errors it finds; whoever reports them
(a CLI command, the DAG of that tenant) does, once. It stays light (no
pyarrow, duckdb, pyiceberg, drivers): the DAG parse path imports it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mozart_etl.config.isolation import isolation_errors
from mozart_etl.config.loader import TENANT_FILE, load_tenant, tenant_folders
from mozart_etl.config.models import TenantConfig
from mozart_etl.core.errors import ConfigError
from mozart_etl.transform.reference import check_transform_files

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TenantEntry:
    """One tenant folder: its config when the YAML loaded, and what keeps it
    from running (empty when it is valid).

    `config` is kept even when a later check failed (a missing transform file,
    an isolation problem), so the isolation check sees every tenant's claims.
    """

    folder: Path
    config: TenantConfig | None
    errors: tuple[ConfigError, ...] = ()

    @property
    def tenant_id(self) -> str:
        """The folder's name (the loader requires `tenant_id` to equal it)."""
        return self.folder.name

    @property
    def error(self) -> ConfigError | None:
        """None when valid; else the one error, or all of them in one
        (each on its own line, with its own context)."""
        if not self.errors:
            return None
        if len(self.errors) == 1:
            return self.errors[0]
        return ConfigError("\n".join(str(error) for error in self.errors))

    def valid_config(self) -> TenantConfig:
        """The config of a valid tenant; raise its error otherwise."""
        error = self.error
        if error is not None:
            raise error
        assert self.config is not None  # no errors: the YAML loaded
        return self.config


def load_all(root: Path | None = None) -> list[TenantEntry]:
    """Every tenant under `root` (default: `tenants_dir()`), in folder order,
    each with its config and its errors: schema, transform files, then the
    isolation check across every tenant whose YAML loaded."""
    loaded = [_load_one(folder) for folder in tenant_folders(root)]
    configs = {e.tenant_id: e.config for e in loaded if e.config is not None}
    intruders = isolation_errors(configs)
    return [
        TenantEntry(
            entry.folder,
            entry.config,
            (*entry.errors, intruders[entry.tenant_id]),
        )
        if entry.tenant_id in intruders
        else entry
        for entry in loaded
    ]


def valid_tenant(tenant_id: str, root: Path | None = None) -> TenantConfig:
    """The config of one tenant, checked as `load_all` checks it (against the
    other tenants too); raise its ConfigError if it is not valid or not there."""
    entries = load_all(root)
    for entry in entries:
        if entry.tenant_id == tenant_id:
            return entry.valid_config()
    known = ", ".join(entry.tenant_id for entry in entries) or "none"
    raise ConfigError(
        f"no tenant {tenant_id!r}: no folder with a {TENANT_FILE} of that name "
        f"(tenants: {known})",
        tenant=tenant_id,
    )


def _load_one(folder: Path) -> TenantEntry:
    """One tenant's own checks (schema, transform files): its errors, never raised."""
    try:
        config = load_tenant(folder)
    except ConfigError as exc:
        return TenantEntry(folder, None, (exc,))
    except Exception as exc:  # a bug or an OS error must stop only this tenant
        log.exception("tenant %s: unexpected error loading its config", folder.name)
        error = ConfigError(
            f"{folder / TENANT_FILE}: could not be loaded: {type(exc).__name__}: {exc}",
            tenant=folder.name,
        )
        error.__cause__ = exc
        return TenantEntry(folder, None, (error,))
    try:
        check_transform_files(folder, config)
    except ConfigError as exc:
        return TenantEntry(folder, config, (exc,))
    return TenantEntry(folder, config)


__all__ = ["TenantEntry", "load_all", "valid_tenant"]
