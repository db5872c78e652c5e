"""Environment overrides: one tenant.yaml for a laptop, dev, staging and prod.

`MOZART_ENV` (default `local`) selects an `environments: <env>:` block, in the
tenant's tenant.yaml and in the shared platform file `tenants/_platform.yaml`
(settings common to every tenant beside it). Four layers are deep-merged, each
over the ones before it::

    _platform.yaml base  <  tenant.yaml base
        <  _platform.yaml environments.<env>  <  tenant.yaml environments.<env>

The environment is the stronger axis: a platform-wide prod setting (say, three
retries everywhere in prod) beats a tenant's base value written for laptops; a
tenant that needs another prod value says so in its own `environments.prod`.

Mappings merge key by key; a list whose items all carry a `name` (tables,
columns, named rules) merges item by item on that name and cannot gain items;
any other value, lists included, is replaced. The merged document is then
`${ENV}`-substituted and validated by the same TenantConfig schema, and every
setting an override changed keeps its origin (`Origins`), so errors and
`mozart config` can say where a value came from.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from mozart_etl.config.bounded_yaml import read_bounded_yaml
from mozart_etl.core.errors import ConfigError

ENV_VAR = "MOZART_ENV"
PLATFORM_FILE = "_platform.yaml"
ENVIRONMENTS_KEY = "environments"
_FIXED_KEYS = ("tenant_id",)


class Environment(StrEnum):
    """Where a tenant runs; selects the `environments:` block of that name."""

    LOCAL = "local"
    """A developer's machine (the default): embedded SQLite, local lake, DuckDB."""
    DEV = "dev"
    """The shared development stack."""
    STAGING = "staging"
    """Production-like, with production-sized data, before a release."""
    PROD = "prod"
    """The plants' production scheduler."""


Origins = dict[str, str]
"""Setting path (as in error messages: `tables[lot_history].mode`) → its origin,
for every value that does not come from the tenant.yaml base."""


@dataclass(frozen=True)
class Layer:
    """One document to merge: its settings and how to name it in messages."""

    data: dict[str, Any]
    origin: str | None
    """None for the tenant.yaml base (the reference: no origin shown)."""


@dataclass
class Merged:
    data: dict[str, Any]
    env: Environment
    origins: Origins = field(default_factory=dict)


def current_environment(value: str | None = None, *, tenant: str = "") -> Environment:
    """`value`, else `MOZART_ENV`, else local; an unknown name is a ConfigError."""
    name = value or os.environ.get(ENV_VAR) or Environment.LOCAL.value
    try:
        return Environment(name)
    except ValueError:
        known = ", ".join(e.value for e in Environment)
        raise ConfigError(
            f"{ENV_VAR}={name!r} is not an environment (known: {known})",
            tenant=tenant or None,
        ) from None


def merge_environments(
    raw: dict[str, Any], folder: Path, tenant_id: str, env: str | None = None
) -> Merged:
    """The tenant.yaml document `raw` with the platform file and both
    `environments.<env>` blocks merged in, `environments` removed."""
    environment = current_environment(env, tenant=tenant_id)
    tenant_path = folder / "tenant.yaml"
    tenant_base, tenant_envs = _split(raw, tenant_path, tenant_id)
    platform_path = folder.parent / PLATFORM_FILE
    platform_base, platform_envs = _read_platform(platform_path, tenant_id)
    layers = [
        Layer(platform_base, PLATFORM_FILE),
        Layer(tenant_base, None),
        Layer(
            platform_envs.get(environment, {}),
            f"environments.{environment} ({PLATFORM_FILE})",
        ),
        Layer(
            tenant_envs.get(environment, {}),
            f"environments.{environment} (tenant.yaml)",
        ),
    ]
    merged = Merged(data={}, env=environment)
    for layer in layers:
        merged.data = _merge(
            merged.data, layer.data, layer, merged.origins, "", tenant_id
        )
    return merged


ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")
"""`${VAR}` or `${VAR:default}` in a setting's text."""
SECRET_VARIABLE = re.compile(
    r"(?:^|_)(?:PASS|PASSWORD|PASSWD|PWD|SECRET|TOKEN|KEY|APIKEY|CREDENTIALS?|"
    r"PRIVATE|DSN)(?:_|$)",
    re.I,
)
"""A variable name that says it holds a secret (`MOZART_S3_SECRET_KEY`,
`ACME_DB_PASSWORD`, `SLACK_TOKEN`), word by word: `KEYSPACE` is not one."""


def secret_variable_paths(node: Any, path: str = "") -> frozenset[str]:
    """Setting paths (as in Origins: `owner`, `tables[lots].mode`) whose text
    reads a secret-named variable: whatever the value looks like, it came from
    a secret, and `mozart config` prints it masked."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            found |= secret_variable_paths(value, child)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            named = isinstance(item, dict) and isinstance(item.get("name"), str)
            found |= secret_variable_paths(
                item, f"{path}[{item['name'] if named else index}]"
            )
    elif isinstance(node, str) and reads_secret_variable(node):
        found.add(path)
    return frozenset(found)


def reads_secret_variable(text: str) -> bool:
    """Whether `text` references a secret-named variable."""
    return any(SECRET_VARIABLE.search(m.group(1)) for m in ENV_REF.finditer(text))


def origin_of(origins: Origins, location: str) -> str | None:
    """The origin of `location` or of the nearest setting that contains it."""
    path = location
    while path:
        if path in origins:
            return origins[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None


def _read_platform(
    path: Path, tenant_id: str
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    if not path.is_file():
        return {}, {}
    data = read_bounded_yaml(path, tenant_id)  # shared by every tenant: bounded
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top", tenant=tenant_id)
    return _split(data, path, tenant_id)


def _split(
    document: dict[str, Any], path: Path, tenant_id: str
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A document's base settings and its checked `environments` blocks."""
    base = {k: v for k, v in document.items() if k != ENVIRONMENTS_KEY}
    blocks = document.get(ENVIRONMENTS_KEY) or {}
    if not isinstance(blocks, dict):
        raise ConfigError(
            f"{path}: `{ENVIRONMENTS_KEY}` must map environment names to settings",
            tenant=tenant_id,
        )
    known = ", ".join(e.value for e in Environment)
    envs: dict[str, dict[str, Any]] = {}
    for name, block in blocks.items():
        where = f"{path}: {ENVIRONMENTS_KEY}.{name}"
        if name not in set(Environment):
            raise ConfigError(
                f"{where}: unknown environment (known: {known})", tenant=tenant_id
            )
        if block is None:
            block = {}
        if not isinstance(block, dict):
            raise ConfigError(
                f"{where}: expected a mapping of settings", tenant=tenant_id
            )
        for key in (ENVIRONMENTS_KEY, *_FIXED_KEYS):
            if key in block:
                raise ConfigError(
                    f"{where}.{key}: cannot be overridden by an environment",
                    tenant=tenant_id,
                )
        envs[Environment(name)] = block
    if path.name == PLATFORM_FILE and "tenant_id" in base:
        raise ConfigError(f"{path}: tenant_id belongs in tenant.yaml", tenant=tenant_id)
    return base, envs


def _merge(
    base: Any, override: Any, layer: Layer, origins: Origins, path: str, tenant: str
) -> Any:
    """`override` deep-merged over `base`; records each leaf's origin."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            child = f"{path}.{key}" if path else str(key)
            merged[key] = _merge(base.get(key), value, layer, origins, child, tenant)
        return merged
    if isinstance(override, dict):
        return _merge({}, override, layer, origins, path, tenant)
    if _named_list(base) and _named_list(override):
        return _merge_named(base, override, layer, origins, path, tenant)
    _set_origin(origins, path, layer.origin)
    if _named_list(override):
        for item in override:
            _set_origin(origins, f"{path}[{item['name']}]", layer.origin)
    return override


def _merge_named(
    base: list[dict[str, Any]],
    override: list[dict[str, Any]],
    layer: Layer,
    origins: Origins,
    path: str,
    tenant: str,
) -> list[dict[str, Any]]:
    by_name = {item["name"]: index for index, item in enumerate(base)}
    merged = list(base)
    for item in override:
        index = by_name.get(item["name"])
        where = f"{path}[{item['name']}]"
        if index is None:
            raise ConfigError(
                f"{layer.origin or 'tenant.yaml'}: {where}: no such item to "
                f"override (known: {sorted(by_name)}); overrides merge by name and "
                "cannot add items",
                tenant=tenant,
            )
        changes = {key: value for key, value in item.items() if key != "name"}
        merged[index] = _merge(base[index], changes, layer, origins, where, tenant)
    return merged


def _named_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and "name" in item for item in value)
    )


def _set_origin(origins: Origins, path: str, origin: str | None) -> None:
    """`path` now holds a value from `origin`; whatever was inside it is gone."""
    for key in [k for k in origins if k.startswith((f"{path}.", f"{path}["))]:
        del origins[key]
    if origin is None:
        origins.pop(path, None)
    else:
        origins[path] = origin
