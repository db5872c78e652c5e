"""Read tenant.yaml files: `${ENV}` substitution, schema validation, clear errors.

Every error names the file and the tenant, and the table and field where it can.
Each file is read bounded (`config/bounded_yaml.py`): one tenant's hostile file
cannot stall or crash the parse for all of them.

This reads one tenant. Whether a tenant is valid (its transform files, its
isolation from the others) is `config/registry.py`'s answer: the DAG factory
and the `mozart` commands ask it, not this module.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mozart_etl.config.bounded_yaml import (
    read_bounded_yaml,
)
from mozart_etl.config.environments import (
    Environment,
    Origins,
    merge_environments,
    origin_of,
    secret_variable_paths,
)
from mozart_etl.config.models import TenantConfig
from mozart_etl.config.paths import project_root, tenants_dir
from mozart_etl.core.errors import ConfigError

TENANT_FILE = "tenant.yaml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")


def tenant_folders(root: Path | None = None) -> list[Path]:
    """Every folder under `tenants/` that has a tenant.yaml, in name order.

    Folders starting with `_` (the `_template`) are not tenants.
    """
    root = root or tenants_dir()
    folders = (path.parent for path in root.glob(f"*/{TENANT_FILE}"))
    return sorted(folder for folder in folders if not folder.name.startswith("_"))


def load_tenant(
    folder: Path, *, base_dir: Path | None = None, env: str | None = None
) -> TenantConfig:
    """Parse and validate one tenant folder; raise ConfigError naming what is wrong."""
    return resolve_tenant(folder, base_dir=base_dir, env=env).config


@dataclass(frozen=True)
class ResolvedTenant:
    """A tenant's config in one environment, and where overridden values came from."""

    config: TenantConfig
    env: Environment
    origins: Origins
    secret_paths: frozenset[str] = frozenset()
    """Settings whose value came from a secret-named variable (masked by
    `mozart config`, whatever the setting's name)."""


def resolve_tenant(
    folder: Path, *, base_dir: Path | None = None, env: str | None = None
) -> ResolvedTenant:
    """load_tenant, keeping the environment (`env`, else MOZART_ENV) and origins."""
    path = folder / TENANT_FILE
    fallback_id = folder.name
    if not path.is_file():
        raise ConfigError(f"{path}: file not found", tenant=fallback_id)
    raw = read_bounded_yaml(path, fallback_id)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top", tenant=fallback_id)
    tenant_id = str(raw.get("tenant_id", fallback_id))
    merged = merge_environments(raw, folder, tenant_id, env)
    substituted = _substitute_env(merged.data, path, tenant_id)
    if tenant_id != fallback_id:
        raise ConfigError(
            f"{path}: tenant_id {tenant_id!r} must equal its folder name "
            f"{fallback_id!r}",
            tenant=fallback_id,
        )
    context = {"base_dir": base_dir or project_root()}
    try:
        config = TenantConfig.model_validate(substituted, context=context)
    except ValidationError as exc:
        raise ConfigError(
            _format_errors(path, substituted, exc, merged.origins), tenant=tenant_id
        ) from exc
    return ResolvedTenant(
        config=config,
        env=merged.env,
        origins=merged.origins,
        secret_paths=secret_variable_paths(merged.data),
    )


def _substitute_env(node: Any, path: Path, tenant_id: str) -> Any:
    if isinstance(node, dict):
        return {
            key: _substitute_env(value, path, tenant_id) for key, value in node.items()
        }
    if isinstance(node, list):
        return [_substitute_env(value, path, tenant_id) for value in node]
    if isinstance(node, str):
        return _ENV_REF.sub(lambda match: _env_value(match, path, tenant_id), node)
    return node


def _env_value(match: re.Match[str], path: Path, tenant_id: str) -> str:
    name, default = match.group(1), match.group(2)
    value = os.environ.get(name)
    if value is not None:
        return value
    if default is not None:
        return default
    raise ConfigError(
        f"{path}: environment variable {name} is not set and has no default "
        f"(write ${{{name}:default}})",
        tenant=tenant_id,
    )


def _format_errors(
    path: Path, data: dict[str, Any], exc: ValidationError, origins: Origins
) -> str:
    lines = [f"{path}: {exc.error_count()} invalid setting(s)"]
    for error in exc.errors(include_url=False, include_input=False):
        location = _location(data, error["loc"])
        origin = origin_of(origins, location)
        where = f" (from {origin})" if origin else ""
        lines.append(f"  - {location}: {error['msg']}{where}")
    return "\n".join(lines)


def _location(data: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """`tables[2].columns[0].type` becomes `tables[lot_history].columns[0].type`."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            name = node[item].get("name") if _has_name(node, item) else None
            parts[-1:] = [f"{parts[-1] if parts else ''}[{name or item}]"]
            node = node[item] if _indexable(node, item) else None
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "<top>"


def _indexable(node: Any, index: int) -> bool:
    return isinstance(node, list) and 0 <= index < len(node)


def _has_name(node: Any, index: int) -> bool:
    return _indexable(node, index) and isinstance(node[index], dict)


__all__ = [
    "TENANT_FILE",
    "ResolvedTenant",
    "load_tenant",
    "project_root",  # re-exported: its home is config/paths.py
    "resolve_tenant",
    "tenant_folders",
    "tenants_dir",
]
