"""Read tenant.yaml files: `${ENV}` substitution, schema validation, clear errors.

Every error names the file and the tenant, and the table and field where it can.

One DAG file builds every tenant, so one tenant.yaml must not be able to stall
or crash the parse for all of them. Before a file is loaded it is bounded:
at most `MAX_TENANT_FILE_BYTES`, nesting at most `MAX_YAML_DEPTH` deep (libyaml
composes recursively in C: ~100 000 nested `[` crash the whole process), and
aliases adding at most `MAX_ALIAS_NODES` nodes when expanded. PyYAML shares an
aliased object instead of copying it, so a 1 KB "billion laughs" loads in
microseconds and only blows up when later code walks it (measured: 78 s and
2.5 GB); the limits are therefore checked on libyaml's event stream, which
counts what an alias would expand to without building anything.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    ScalarEvent,
)

from mozart_etl.config.environments import (
    Environment,
    Origins,
    merge_environments,
    origin_of,
)
from mozart_etl.config.models import TenantConfig
from mozart_etl.errors import ConfigError

log = logging.getLogger(__name__)

TENANT_FILE = "tenant.yaml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")

MAX_TENANT_FILE_BYTES = 1024 * 1024
"""100 times the largest tenant.yaml in the repository (11 KB, 10 tables)."""
MAX_YAML_DEPTH = 64
"""Collections inside collections; a tenant.yaml needs about 6."""
MAX_ALIAS_NODES = 10_000
"""Nodes all aliases together may add when expanded: room for anchors shared
by many tables, far below what slows the parse (a billion-laughs bomb adds
10^9). No tenant in the repository uses aliases today."""


def project_root() -> Path:
    """The repository root: `MOZART_PROJECT_ROOT`, else two levels above the package."""
    configured = os.environ.get("MOZART_PROJECT_ROOT")
    if configured:
        return Path(configured).resolve()
    return Path(__file__).resolve().parents[3]


def tenants_dir() -> Path:
    configured = os.environ.get("MOZART_TENANTS_DIR")
    return Path(configured).resolve() if configured else project_root() / "tenants"


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
    return ResolvedTenant(config=config, env=merged.env, origins=merged.origins)


def read_bounded_yaml(path: Path, tenant_id: str) -> Any:
    """The YAML document in `path`, refused (ConfigError naming the file and
    tenant) when larger, deeper or more alias-expanded than the limits above."""
    text = _read_capped(path, tenant_id)
    try:
        check_yaml_bounds(text, path, tenant_id)
        # libyaml's loader: the pure-Python one costs ~50 ms per tenant at parse.
        return yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}", tenant=tenant_id) from exc


def _read_capped(path: Path, tenant_id: str) -> str:
    """The file's text, never reading more than the cap (the size is checked on
    the bytes read too: a file can grow after stat, or report no size)."""
    limit = MAX_TENANT_FILE_BYTES
    too_big = (
        f"{path}: larger than {limit} bytes (the limit of a tenant.yaml): "
        "split it or remove generated content"
    )
    if path.stat().st_size > limit:
        raise ConfigError(too_big, tenant=tenant_id)
    with path.open("rb") as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise ConfigError(too_big, tenant=tenant_id)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8: {exc}", tenant=tenant_id) from exc


def check_yaml_bounds(text: str, path: Path, tenant_id: str) -> int:
    """Refuse a document nested deeper than MAX_YAML_DEPTH or whose aliases add
    more than MAX_ALIAS_NODES nodes; return the nodes aliases add.

    Works on libyaml's events (its parser keeps its own stack: no recursion),
    stopping at the first event past a limit: an alias counts as the expanded
    size of its anchor's node, known when that node ended, so nothing is ever
    expanded. An alias to a node still open (a recursive document) is refused.
    """
    sizes: dict[str, int] = {}  # anchor → expanded nodes of its node
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, nodes so far)
    added = 0
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, CollectionStartEvent):
            if len(open_nodes) >= MAX_YAML_DEPTH:
                raise ConfigError(
                    f"{path}: nested deeper than {MAX_YAML_DEPTH} levels "
                    f"(line {event.start_mark.line + 1})",
                    tenant=tenant_id,
                )
            open_nodes.append((event.anchor, 1))
            continue
        if isinstance(event, CollectionEndEvent):
            anchor, size = open_nodes.pop()
        elif isinstance(event, ScalarEvent):
            anchor, size = event.anchor, 1
        elif isinstance(event, AliasEvent):
            anchor, size = None, _alias_size(event, sizes, open_nodes, path, tenant_id)
            added += size
            if added > MAX_ALIAS_NODES:
                raise ConfigError(
                    f"{path}: YAML aliases expand to more than {MAX_ALIAS_NODES} "
                    f"nodes (line {event.start_mark.line + 1}, alias "
                    f"*{event.anchor}): refused unexpanded, a likely alias bomb; "
                    "write the settings out instead of aliasing them",
                    tenant=tenant_id,
                )
        else:  # stream and document start and end
            continue
        if anchor is not None:
            sizes[anchor] = size
        if open_nodes:
            parent_anchor, parent_size = open_nodes[-1]
            open_nodes[-1] = (parent_anchor, parent_size + size)
    return added


def _alias_size(
    event: AliasEvent,
    sizes: dict[str, int],
    open_nodes: list[tuple[str | None, int]],
    path: Path,
    tenant_id: str,
) -> int:
    if any(anchor == event.anchor for anchor, _ in open_nodes):
        raise ConfigError(
            f"{path}: alias *{event.anchor} (line {event.start_mark.line + 1}) "
            "refers to a node that contains it (a recursive document)",
            tenant=tenant_id,
        )
    size = sizes.get(event.anchor or "")
    if size is None:
        raise ConfigError(
            f"{path}: alias *{event.anchor} (line {event.start_mark.line + 1}) "
            "has no anchor before it",
            tenant=tenant_id,
        )
    return size


def iter_tenants(
    root: Path | None = None,
) -> Iterator[tuple[Path, TenantConfig | ConfigError]]:
    """Each tenant folder with its config, or the error that stops only that tenant."""
    for folder in tenant_folders(root):
        try:
            yield folder, load_tenant(folder)
        except ConfigError as exc:
            log.error("tenant %s: %s", folder.name, exc)
            yield folder, exc


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
