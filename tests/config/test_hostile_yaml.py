"""A hostile or oversized tenant.yaml is refused before it can cost the parse.

One DAG file builds every tenant, so the loader bounds each file: its size, its
nesting and what its YAML aliases expand to. Refusals are ConfigErrors naming
the file and the tenant; aliases within the limit keep working.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml

from mozart_etl.config.bounded_yaml import (
    MAX_ALIAS_NODES,
    MAX_TENANT_FILE_BYTES,
    MAX_YAML_DEPTH,
    check_yaml_bounds,
)
from mozart_etl.config.loader import load_tenant
from mozart_etl.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DEMO_YAML = ROOT / "tenants" / "demo" / "tenant.yaml"
WIDTH = 9  # aliases per level of the bomb
LEVELS = 9


def alias_bomb(levels: int = LEVELS, width: int = WIDTH) -> str:
    """ "Billion laughs": level i is a list of `width` aliases of level i-1."""
    leaves = ", ".join(['"lol"'] * width)
    lines = ["tenant_id: acme", f"a0: &a0 [{leaves}]"]
    for level in range(1, levels):
        aliases = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def _write(tmp_path: Path, text: str | bytes, tenant_id: str = "acme") -> Path:
    folder = tmp_path / tenant_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tenant.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return folder


def _refusal(folder: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_tenant(folder)
    return str(caught.value)


def test_an_alias_bomb_is_refused_without_expanding_it(tmp_path: Path) -> None:
    text = alias_bomb()
    assert len(text.encode()) < 1024  # a 1 KB file
    folder = _write(tmp_path, text)

    tracemalloc.start()
    try:
        message = _refusal(folder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Where the count passes the limit, worked out by hand: a level-i list is
    # itself plus `width` copies of level i-1, and every alias adds one copy.
    size, added, stop = WIDTH + 1, 0, None
    for level in range(1, LEVELS):
        for _ in range(WIDTH):
            added += size
            if added > MAX_ALIAS_NODES and stop is None:
                stop = (level + 2, f"*a{level - 1}")  # +2: tenant_id, a0 lines
        size = 1 + WIDTH * size
    assert size == sum(WIDTH**k for k in range(LEVELS + 1))  # ~4.3e8 nodes
    assert stop is not None
    line, alias = stop
    assert message.startswith(f"[tenant=acme] {folder / 'tenant.yaml'}: ")
    assert f"YAML aliases expand to more than {MAX_ALIAS_NODES} nodes" in message
    assert f"(line {line}, alias {alias})" in message
    # Expanded, the leaves alone would take 9^9 list slots (8 bytes each, ~3 GB);
    # the refusal allocates less than 4 MB (mostly the parser and the error).
    assert WIDTH**LEVELS * 8 > 3 * 10**9
    assert peak < 4 * 1024 * 1024


def test_aliases_within_the_limit_load_as_written_out(tmp_path: Path) -> None:
    plain = yaml.safe_load(DEMO_YAML.read_text(encoding="utf-8"))
    shared = _share_equal_nodes(plain)
    anchored = yaml.safe_dump(shared, allow_unicode=True, sort_keys=False)
    assert "&id" in anchored and "*id" in anchored  # the dump aliases them
    written_out = yaml.safe_dump(plain, allow_unicode=True, sort_keys=False)

    with_aliases = load_tenant(_write(tmp_path / "a", anchored, "demo"))
    without = load_tenant(_write(tmp_path / "b", written_out, "demo"))

    assert with_aliases == without


def test_the_alias_count_is_the_expanded_size_of_each_alias() -> None:
    text = (
        "base: &base {type: string, nullable: true}\n"  # a mapping: 1 + 2 + 2
        "cols:\n"
        "  - {<<: *base, name: a}\n"
        "  - {<<: *base, name: b}\n"
        "name: &n x\n"
        "again: *n\n"  # a scalar: 1
    )

    assert check_yaml_bounds(text, Path("t.yaml"), "t") == 5 + 5 + 1


def test_a_file_over_the_size_limit_is_refused_and_one_at_it_loads(
    tmp_path: Path,
) -> None:
    demo = DEMO_YAML.read_bytes()
    padding = MAX_TENANT_FILE_BYTES - len(demo) - 2
    at_limit = demo + b"#" + b"x" * padding + b"\n"
    assert len(at_limit) == MAX_TENANT_FILE_BYTES
    assert load_tenant(_write(tmp_path / "ok", at_limit, "demo")).tenant_id == "demo"

    folder = _write(tmp_path / "big", at_limit + b"\n", "demo")
    message = _refusal(folder)
    assert message.startswith(f"[tenant=demo] {folder / 'tenant.yaml'}: ")
    assert f"larger than {MAX_TENANT_FILE_BYTES} bytes" in message


@pytest.mark.parametrize(
    "document",
    [
        "[" * 100_000 + "]" * 100_000,  # flow style (libyaml crashed on this)
        "- " * 100_000 + "y\n",  # block style, one line
    ],
    ids=["flow", "block"],
)
def test_deep_nesting_is_refused_before_libyaml_composes_it(
    tmp_path: Path, document: str
) -> None:
    message = _refusal(_write(tmp_path, document))
    assert f"nested deeper than {MAX_YAML_DEPTH} levels" in message
    assert "tenant=acme" in message


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    message = _refusal(_write(tmp_path, "tenant_id: acme\nloop: &me [1, *me]\n"))
    assert "alias *me (line 2) refers to a node that contains it" in message


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    message = _refusal(_write(tmp_path, b"tenant_id: acme\nx: \xff\xfe\n"))
    assert "not UTF-8" in message and "tenant=acme" in message


def _share_equal_nodes(data: Any) -> Any:
    """The same document with equal mappings and lists made one object, so
    PyYAML's dumper writes them once with an anchor and then aliases."""
    seen: dict[str, Any] = {}

    def visit(node: Any) -> Any:
        if isinstance(node, dict):
            node = {key: visit(value) for key, value in node.items()}
        elif isinstance(node, list):
            node = [visit(value) for value in node]
        else:
            return node
        return seen.setdefault(json.dumps(node, sort_keys=True, default=str), node)

    return visit(data)


def test_an_alias_bomb_in_the_platform_file_is_refused_too(tmp_path: Path) -> None:
    """`_platform.yaml` is read for every tenant: bounded the same way."""
    demo = (ROOT / "tenants" / "demo" / "tenant.yaml").read_text(encoding="utf-8")
    folder = _write(tmp_path, demo.replace("tenant_id: demo", "tenant_id: acme"))
    (tmp_path / "_platform.yaml").write_text(
        alias_bomb().replace("tenant_id: acme\n", ""), encoding="utf-8"
    )

    message = _refusal(folder)

    assert "_platform.yaml" in message
    assert f"YAML aliases expand to more than {MAX_ALIAS_NODES} nodes" in message
