"""`mozart config`: a tenant's resolved configuration as YAML, secrets masked:
SecretStr fields, secret-named keys, passwords in URIs, and any value that
came from a secret-named variable (`${…_TOKEN}`, `${…_PASSWORD}` …).

Models print in schema order, free-form mappings (params, options, vars) in
key order, so the output is stable. Every value that does not come from the
tenant.yaml base (or the schema's defaults) carries a trailing comment naming
its origin, e.g. `retries: 3  # from environments.prod (_platform.yaml)`.
"""

from __future__ import annotations

import re
from datetime import date
from enum import Enum
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr

from mozart_etl.config.environments import Origins
from mozart_etl.config.loader import ResolvedTenant

MASK = "***"
_SECRET_KEY = re.compile(r"pass|secret|token|credential|private|api_?key", re.I)
_URI_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/:@\s]*:)[^@\s]*@", re.I)


def render_config(resolved: ResolvedTenant) -> str:
    config = resolved.config
    lines = [
        f"# tenant {config.tenant_id}, environment {resolved.env}",
        "# no comment: from tenant.yaml or the schema's default",
    ]
    shown = _masked_paths(_plain(config), "", resolved.secret_paths)
    _emit(shown, "", 0, resolved.origins, lines)
    return "\n".join(lines) + "\n"


def _masked_paths(node: Any, path: str, secret_paths: frozenset[str]) -> Any:
    """`node` with every value at a path in `secret_paths` (one read from a
    secret-named variable: an `owner:` from `${OWNER_TOKEN}` too) as `***`.
    Paths are those of the emitted YAML: `key.sub`, `list[name]`, `list[0]`."""
    if path in secret_paths:
        return MASK
    if isinstance(node, dict):
        return {
            key: _masked_paths(value, f"{path}.{key}" if path else key, secret_paths)
            for key, value in node.items()
        }
    if isinstance(node, list):
        masked = []
        for index, item in enumerate(node):
            named = isinstance(item, dict) and isinstance(item.get("name"), str)
            label = item["name"] if named else index
            masked.append(_masked_paths(item, f"{path}[{label}]", secret_paths))
        return masked
    return node


def _plain(value: Any, key: str = "") -> Any:
    """Models → mappings in schema order; secrets → `***`."""
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        return {
            (info.alias or name): _plain(getattr(value, name), info.alias or name)
            for name, info in fields.items()
        }
    if isinstance(value, dict):
        return {str(k): _plain(value[k], str(k)) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, str):
        if key and _SECRET_KEY.search(key):
            return MASK
        return _URI_PASSWORD.sub(rf"\g<head>{MASK}@", value)
    if isinstance(value, date | bool | int | float) or value is None:
        return value
    return str(value)


def _emit(
    node: dict[str, Any], path: str, indent: int, origins: Origins, out: list[str]
) -> None:
    pad = " " * indent
    for key, value in node.items():
        child = f"{path}.{key}" if path else key
        note = _note(origins.get(child))
        if isinstance(value, dict) and value:
            out.append(f"{pad}{key}:{note}")
            _emit(value, child, indent + 2, origins, out)
        elif isinstance(value, list) and any(isinstance(i, dict) for i in value):
            out.append(f"{pad}{key}:{note}")
            _emit_items(value, child, indent + 2, origins, out)
        else:
            out.append(f"{pad}{key}: {_scalar(value)}{note}")


def _emit_items(
    items: list[Any], path: str, indent: int, origins: Origins, out: list[str]
) -> None:
    pad = " " * indent
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            out.append(f"{pad}- {_scalar(item)}")
            continue
        label = item.get("name") if isinstance(item.get("name"), str) else index
        item_path = f"{path}[{label}]"
        lines: list[str] = []
        _emit(item, item_path, 0, origins, lines)
        note = _note(origins.get(item_path))
        if note and "  # from " not in lines[0]:
            lines[0] += note
        out.append(f"{pad}- {lines[0]}")
        out.extend(f"{pad}  {line}" for line in lines[1:])


def _scalar(value: Any) -> str:
    """One YAML value on one line (lists of scalars in flow style)."""
    text = yaml.safe_dump(
        [value], default_flow_style=True, allow_unicode=True, width=10**9
    )
    return text.strip()[1:-1]


def _note(origin: str | None) -> str:
    return f"  # from {origin}" if origin else ""
