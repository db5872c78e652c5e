"""A hostile tenant.yaml stops only its own tenant, and is refused for what it
does, not for how it is written.

- an alias bomb among 200 tenants: refused unexpanded, the other 199 DAGs build;
- a warehouse file reached through `x/../`, or through a symlink, and a
  connection id differing only in case: each is another tenant's resource, and
  the intruder gets the stand-in error DAG naming the setting and its owner.

Tenants are clones of one `mozart new-tenant` scaffold with its dbt manifest,
built once per module (a dbt parse), as bench/parse.py clones its prototype.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from airflow.models.dagbag import DagBag

from mozart_etl.config.bounded_yaml import MAX_ALIAS_NODES
from mozart_etl.config.loader import load_tenant
from mozart_etl.core.errors import ConfigError
from mozart_etl.factory.dag_factory import CONFIG_ERROR_TAG, build_tenant_dags
from tests.cli import run_mozart
from tests.config.test_hostile_yaml import alias_bomb
from tests.reliability.chaos import Recorder

ROOT = Path(__file__).resolve().parents[2]
PROTO = "proto"
TENANTS = 200
# What a tenant's DAG needs at parse: its YAML, transforms and the per-layer
# manifests (the layer tasks' model lists and mart Assets; what Cosmos renders
# from in the `stages` shape), not dbt's own manifest or packages.
CLONED = (
    "tenant.yaml",
    "transforms.py",
    "dbt/dbt_project.yml",
    "dbt/target/cosmos_manifest_staging.json",
    "dbt/target/cosmos_manifest_marts.json",
)


@pytest.fixture(scope="module")
def prototype(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One scaffolded tenant with its dbt manifest (dbt runs once)."""
    tenants = tmp_path_factory.mktemp("proto") / "tenants"
    shutil.copytree(ROOT / "tenants" / "_template", tenants / "_template")
    # Its own process: dbt keeps process-wide state (dbt-duckdb's environment)
    # that an earlier in-process dbt run of the session would leave behind.
    done = run_mozart("--tenants-dir", str(tenants), "new-tenant", PROTO)
    assert done.returncode == 0, done.stdout + done.stderr
    return tenants / PROTO


def clone(prototype: Path, tenants: Path, tenant_id: str) -> Path:
    """The prototype under another id (ids renamed in place, not rebuilt)."""
    target = tenants / tenant_id
    for relative in CLONED:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = (prototype / relative).read_text(encoding="utf-8")
        path.write_text(text.replace(PROTO, tenant_id), encoding="utf-8")
    shutil.copytree(prototype / "dbt" / "models", target / "dbt" / "models")
    return target


def _edit(folder: Path, change: Callable[[dict], None]) -> None:
    path = folder / "tenant.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(config)
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")


def test_an_alias_bomb_stops_only_its_tenant_among_200(
    prototype: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chaos: Recorder,
) -> None:
    chaos.name("20a. alias bomb in 1 of 200 tenant.yaml: refused unexpanded, 199 build")
    tenants = tmp_path / "tenants"
    clean = [f"plant_{index:03d}" for index in range(TENANTS - 1)]
    for tenant_id in clean:
        clone(prototype, tenants, tenant_id)
    bomb = tenants / "plant_bomb"
    bomb.mkdir()
    text = alias_bomb().replace("tenant_id: acme", "tenant_id: plant_bomb")
    (bomb / "tenant.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("MOZART_TENANTS_DIR", str(tenants))

    started = time.perf_counter()
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    parse_s = time.perf_counter() - started
    started = time.perf_counter()
    with pytest.raises(ConfigError) as refused:
        load_tenant(bomb)
    refuse_ms = (time.perf_counter() - started) * 1000

    assert bag.import_errors == {}
    built = {d for d, dag in bag.dags.items() if CONFIG_ERROR_TAG not in dag.tags}
    assert set(clean) <= built
    assert len(set(clean) & built) == TENANTS - 1
    stand_in = bag.dags["plant_bomb"]
    assert CONFIG_ERROR_TAG in stand_in.tags
    message = stand_in.doc_md or ""
    assert "tenant=plant_bomb" in message
    assert str(bomb / "tenant.yaml") in message
    assert f"YAML aliases expand to more than {MAX_ALIAS_NODES} nodes" in message
    assert "refused unexpanded" in message
    assert f"YAML aliases expand to more than {MAX_ALIAS_NODES}" in str(refused.value)
    # Timings are reported, not asserted (a busy machine would make them flaky):
    # the matrix shows the 200-tenant parse beside the bomb's refusal.
    chaos.record(
        cause=f"ConfigError names file, tenant, line and alias, refused in "
        f"{refuse_ms:.1f} ms; {len(set(clean) & built)}/{TENANTS - 1} other DAGs "
        f"built, all 200 parsed in {parse_s:.1f} s"
    )


def _intruder_stand_in(tenants: Path) -> tuple[set[str], str]:
    """Build the two tenants: the ids built for real, and plant_b's error."""
    dags = build_tenant_dags(tenants)
    built = {d for d, dag in dags.items() if CONFIG_ERROR_TAG not in dag.tags}
    intruder = dags["plant_b"]
    assert CONFIG_ERROR_TAG in intruder.tags
    return built, intruder.doc_md or ""


def _two_tenants(prototype: Path, tmp_path: Path) -> tuple[Path, Path]:
    tenants = tmp_path / "tenants"
    return clone(prototype, tenants, "plant_a"), clone(prototype, tenants, "plant_b")


def _warehouse(folder: Path) -> Path:
    return Path(load_tenant(folder).dbt.duckdb_path or "")


def test_a_warehouse_path_through_dot_dot_is_refused(
    prototype: Path, tmp_path: Path, chaos: Recorder
) -> None:
    chaos.name(
        "20b. dbt.duckdb_path x/../ onto another tenant's file: intruder refused"
    )
    victim, intruder = _two_tenants(prototype, tmp_path)
    target = _warehouse(victim)
    sneaky = f"{target.parent}/x/../{target.name}"
    _edit(intruder, lambda c: c["dbt"].update(duckdb_path=sneaky))

    built, message = _intruder_stand_in(victim.parent)

    assert built == {"plant_a"}
    assert "tenant=plant_b" in message
    assert f"dbt.duckdb_path {sneaky!r}" in message
    assert f"(resolves to {os.path.realpath(target)!r})" in message
    assert "it is tenant plant_a's" in message
    chaos.record(cause="IsolationError names dbt.duckdb_path, its real path, owner")


def test_a_warehouse_path_through_a_symlink_is_refused(
    prototype: Path, tmp_path: Path, chaos: Recorder
) -> None:
    chaos.name(
        "20c. dbt.duckdb_path own name, symlinked to another's: intruder refused"
    )
    victim, intruder = _two_tenants(prototype, tmp_path)
    target = _warehouse(victim)
    own_looking = _warehouse(intruder)  # plant_b_marts.duckdb, as scaffolded
    own_looking.parent.mkdir(parents=True, exist_ok=True)
    own_looking.symlink_to(target)

    built, message = _intruder_stand_in(victim.parent)

    assert built == {"plant_a"}
    assert "tenant=plant_b" in message
    assert f"dbt.duckdb_path {str(own_looking)!r}" in message
    assert f"(resolves to {os.path.realpath(target)!r})" in message
    assert "it is tenant plant_a's" in message
    chaos.record(cause="IsolationError names dbt.duckdb_path, its real path, owner")


def test_a_connection_id_differing_in_case_is_refused(
    prototype: Path, tmp_path: Path, chaos: Recorder
) -> None:
    chaos.name("20d. source.conn_id differing only in case: intruder refused")
    victim, intruder = _two_tenants(prototype, tmp_path)
    theirs = load_tenant(victim).source.conn_id or ""
    written = theirs.title()  # Plant_A_Source: AIRFLOW_CONN_PLANT_A_SOURCE too
    assert written != theirs and written.upper() == theirs.upper()
    _edit(intruder, lambda c: c["source"].update(conn_id=written))

    built, message = _intruder_stand_in(victim.parent)

    assert built == {"plant_a"}
    assert "tenant=plant_b" in message
    assert f"source.conn_id {written!r} (connection ids are case-insensitive" in (
        message
    )
    assert f"AIRFLOW_CONN_{theirs.upper()}" in message
    assert f"it is tenant plant_a's (source.conn_id {theirs!r})" in message
    chaos.record(cause="IsolationError names source.conn_id, AIRFLOW_CONN_, owner")
