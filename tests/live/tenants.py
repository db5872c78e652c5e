"""Slim tenants for the live tests, generated in a temporary folder.

A live run pays a process start per task, so test tenants keep a few tables of
the demo plant. `FULL`: `lot_history` (merge by key on an `updated_at` cursor,
where the order of days matters) with its staging model and `mart_cycle_time`
(the visits done on the day), plus `equipment` (full refresh, no model).
`RAW`: `equipment` only, no dbt models. A template's dbt manifest is built
once and copied: the task graph is the same for every copy, and dbt resolves
each copy's own files at run time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from tests.live.harness import ROOT

DEMO = ROOT / "tenants" / "demo"


@dataclass(frozen=True)
class Template:
    """Which demo tables and dbt models a kind of test tenant keeps."""

    name: str
    tables: tuple[str, ...]
    models: tuple[str, ...]
    marts: tuple[str, ...]


FULL = Template(
    "live_full",
    ("lot_history", "equipment"),
    ("stg_lot_history", "mart_cycle_time"),
    ("mart_cycle_time",),
)
RAW = Template("live_raw", ("equipment",), (), ())


def build_template(workdir: Path, template: Template) -> Path:
    """A slim tenant with its dbt manifest; `copy_tenant` stamps tenants from it."""
    tenants = workdir / template.name
    folder = tenants / template.name
    config = _slim_config(template, template.name)
    transformed = any("transform" in table for table in config["tables"])
    skipped = ("target", "logs") if transformed else ("target", "logs", "transforms.py")
    shutil.copytree(
        DEMO, folder, symlinks=True, ignore=shutil.ignore_patterns(*skipped)
    )
    for sql in (folder / "dbt" / "models").rglob("*.sql"):
        if sql.stem not in template.models:
            sql.unlink()
    _write_config(folder, config)
    # Copies keep this dbt project name: their manifests are this one's.
    project = folder / "dbt" / "dbt_project.yml"
    text = project.read_text(encoding="utf-8")
    project.write_text(text.replace("name: demo", f"name: {template.name}"), "utf-8")
    _mozart("--tenants-dir", str(tenants), "sync")
    _mozart("--tenants-dir", str(tenants), "manifests")
    return folder


def copy_tenant(
    template_folder: Path,
    template: Template,
    tenants_dir: Path,
    tenant_id: str,
    *,
    source: Path,
    start_date: date = date(2026, 11, 15),
    source_pool: str | None = None,
    alerting: dict[str, Any] | None = None,
    schedule: dict[str, Any] | None = None,
) -> Path:
    """Tenant `tenant_id` from a built template, reading the SQLite file `source`
    (`schedule` overrides settings such as `retries`, 0 by default)."""
    folder = tenants_dir / tenant_id
    shutil.copytree(template_folder, folder, symlinks=True)
    config = _slim_config(template, tenant_id)
    config["source"] = {"type": "sqlite", "database": str(source)}
    if source_pool:
        config["source"]["pool"] = source_pool
    config["schedule"]["start_date"] = start_date
    config["schedule"].update(schedule or {})
    if alerting:
        config["alerting"] = {**config.get("alerting", {}), **alerting}
    _write_config(folder, config)
    return folder


def sync_sources(tenants_dir: Path) -> None:
    """`mozart sync`: each copy's dbt sources name its own raw namespace."""
    _mozart("--tenants-dir", str(tenants_dir), "sync")


def create_shared_catalog(tenant_folder: Path) -> None:
    """The SQL catalog every test tenant shares (`${MOZART_HOME}/iceberg`), with
    its tables, before any run: first tasks of several tenants starting at once
    on a new catalog race to create them ("table iceberg_tables already
    exists": a retry passes, and test tenants never retry)."""
    from mozart_etl.config.loader import load_tenant
    from mozart_etl.load.catalog import open_catalog

    open_catalog(load_tenant(tenant_folder))


def dbt_pool(tenant_id: str) -> str:
    return f"mozart_duckdb_{tenant_id}"


def tenant_pools(tenant_ids: Iterable[str]) -> dict[str, int]:
    """The pools a tenant's tasks use: its own (4 slots) and its DuckDB writer's,
    which every test tenant names (`dbt.pool`), as an operator creates it
    (docs/operations.md). A tenant without dbt models has dbt layer tasks too
    in the default DAG shape: a task in a pool that does not exist waits for
    ever."""
    pools = {f"mozart_{tenant_id}": 4 for tenant_id in tenant_ids}
    return pools | {dbt_pool(tenant_id): 1 for tenant_id in tenant_ids}


def _slim_config(template: Template, tenant_id: str) -> dict[str, Any]:
    config = yaml.safe_load((DEMO / "tenant.yaml").read_text(encoding="utf-8"))
    config.pop("environments", None)
    config.pop("publish", None)
    config["tenant_id"] = tenant_id
    config["tables"] = [t for t in config["tables"] if t["name"] in template.tables]
    config["schedule"].update({"retries": 0, "catchup": False})  # fail at once
    config["dbt"]["duckdb_path"] = (
        f"${{MOZART_HOME}}/warehouse/{tenant_id}_marts.duckdb"
    )
    config["dbt"]["pool"] = dbt_pool(tenant_id)
    return config


def _write_config(folder: Path, config: dict[str, Any]) -> None:
    (folder / "tenant.yaml").write_text(
        yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )


def _mozart(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mozart_etl.ops.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "MOZART_PROJECT_ROOT": str(ROOT)},
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"mozart {' '.join(args)}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
