"""YAML read within bounds: a tenant's files cannot stall or crash the parse.

One DAG file builds every tenant, so one tenant.yaml (or the shared
`_platform.yaml`) must not be able to stall or crash the parse for all of
them. Before a file is loaded it is bounded: at most `MAX_TENANT_FILE_BYTES`,
nesting at most `MAX_YAML_DEPTH` deep (libyaml composes recursively in C:
~100 000 nested `[` crash the whole process), and aliases adding at most
`MAX_ALIAS_NODES` nodes when expanded. PyYAML shares an aliased object instead
of copying it, so a 1 KB "billion laughs" loads in microseconds and only blows
up when later code walks it (measured: 78 s and 2.5 GB); the limits are
therefore checked on libyaml's event stream, which counts what an alias would
expand to without building anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    Event,
    ScalarEvent,
)

from mozart_etl.core.errors import ConfigError

MAX_TENANT_FILE_BYTES = 1024 * 1024
"""100 times the largest tenant.yaml in the repository (11 KB, 10 tables)."""
MAX_YAML_DEPTH = 64
"""Collections inside collections; a tenant.yaml needs about 6."""
MAX_ALIAS_NODES = 10_000
"""Nodes all aliases together may add when expanded: room for anchors shared
by many tables, far below what slows the parse (a billion-laughs bomb adds
10^9). No tenant in the repository uses aliases today."""


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
                    f"(line {_line(event)})",
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
                    f"nodes (line {_line(event)}, alias "
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
            f"{path}: alias *{event.anchor} (line {_line(event)}) "
            "refers to a node that contains it (a recursive document)",
            tenant=tenant_id,
        )
    size = sizes.get(event.anchor or "")
    if size is None:
        raise ConfigError(
            f"{path}: alias *{event.anchor} (line {_line(event)}) "
            "has no anchor before it",
            tenant=tenant_id,
        )
    return size


def _line(event: Event) -> int | str:
    """The event's 1-based line (the parser marks every event it emits)."""
    mark = event.start_mark
    return "?" if mark is None else mark.line + 1
