"""Tenant isolation at DAG build: one tenant's YAML cannot name another
tenant's lake prefix, namespaces, pool, warehouse or connections."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.models.dagbag import DagBag

from mozart_etl.config.isolation import isolation_errors, owner_of, tenant_pool
from mozart_etl.config.loader import load_tenant
from mozart_etl.config.models import TenantConfig
from mozart_etl.factory.dag_factory import (
    CONFIG_ERROR_TAG,
    SHAPE_VAR,
    STAGES_SHAPE,
    TABLES_SHAPE,
    build_tenant_dag,
)
from tests.helpers import tenant_dict, typed_table

ROOT = Path(__file__).resolve().parents[2]


def _tenant(tmp_path: Path, tenant_id: str, **change: Any) -> TenantConfig:
    data = tenant_dict(tmp_path / tenant_id, [typed_table()], tenant_id=tenant_id)
    data["dbt"]["duckdb_path"] = str(tmp_path / f"{tenant_id}_marts.duckdb")
    for dotted, value in change.items():
        *path, key = dotted.split(".")
        node = data
        for part in path:
            node = node.setdefault(part, {})
        node[key] = value
    return TenantConfig.model_validate(data, context={"base_dir": tmp_path})


def test_the_longest_tenant_id_owns_a_name() -> None:
    ids = ["acme", "acme_b", "plant"]
    assert owner_of("acme_raw", ids) == "acme"
    assert owner_of("acme_b_raw", ids) == "acme_b"
    assert owner_of("mozart_duckdb_acme_b", ids) == "acme_b"
    assert owner_of("shared", ids) is None


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("storage.prefix", "acme_b", "storage.prefix 'acme_b' is tenant acme_b's"),
        ("iceberg.raw_namespace", "acme_b_raw", "tenant acme_b's"),
        ("iceberg.namespace", "acme_b", "iceberg.namespace 'acme_b'"),
        ("dbt.pool", "mozart_duckdb_acme_b", "dbt.pool"),
        ("iceberg.namespace", "shared_marts", "is no tenant's own name"),
    ],
)
def test_a_tenant_cannot_take_another_tenants_names(
    tmp_path: Path, setting: str, value: str, message: str
) -> None:
    acme = _tenant(tmp_path, "acme", **{setting: value})
    acme_b = _tenant(tmp_path, "acme_b")

    errors = isolation_errors({"acme": acme, "acme_b": acme_b})

    assert set(errors) == {"acme"}  # the victim builds as usual
    assert message in str(errors["acme"]) and "tenant=acme" in str(errors["acme"])


def test_a_connection_or_warehouse_of_another_tenant_is_refused(
    tmp_path: Path,
) -> None:
    acme = _tenant(tmp_path, "acme", **{"source.conn_id": "acme_b_source"})
    acme = acme.model_copy(
        update={
            "dbt": acme.dbt.model_copy(
                update={"duckdb_path": str(tmp_path / "acme_b_marts.duckdb")}
            )
        }
    )
    acme_b = _tenant(tmp_path, "acme_b", **{"source.conn_id": "acme_b_source"})
    plant = _tenant(tmp_path, "plant", **{"source.conn_id": "mes"})
    works = _tenant(tmp_path, "works", **{"source.conn_id": "mes"})

    errors = isolation_errors(
        {"acme": acme, "acme_b": acme_b, "plant": plant, "works": works}
    )

    assert "source.conn_id 'acme_b_source' is also used by" in str(errors["acme"])
    assert "dbt.duckdb_path" in str(errors["acme"])
    assert "acme_b" not in errors  # it carries acme_b's id: acme is the intruder
    # A connection carrying neither id: both tenants are refused.
    assert {"plant", "works"} <= set(errors)


@pytest.mark.parametrize("shape", [TABLES_SHAPE, STAGES_SHAPE])
def test_every_task_runs_in_the_tenants_own_pool(
    monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    monkeypatch.setenv(SHAPE_VAR, shape)
    demo = ROOT / "tenants" / "demo"
    tenant = load_tenant(demo)
    dag = build_tenant_dag(demo, tenant)
    pools = {task.pool for task in dag.tasks}
    assert tenant_pool(tenant) == "mozart_demo"
    assert "mozart_demo" in pools
    assert tenant.dbt.pool in pools  # the dbt tasks' (DuckDB: one writer)
    # dbt tasks keep the tenant's dbt pool; every pool carries the tenant id.
    assert all(
        owner_of(pool, ["demo"]) == "demo" or pool == "default_pool" for pool in pools
    )


def test_the_intruder_gets_an_error_dag_and_the_victim_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = tmp_path / "tenants"
    shutil.copytree(
        ROOT / "tenants" / "demo",
        tenants / "demo",
        symlinks=True,
        ignore=shutil.ignore_patterns("logs"),
    )
    intruder = tenants / "demo_b"
    shutil.copytree(tenants / "demo", intruder, symlinks=True)
    config = yaml.safe_load((intruder / "tenant.yaml").read_text())
    config["tenant_id"] = "demo_b"
    config["dbt"]["pool"] = "mozart_duckdb_demo_b"
    config["dbt"]["duckdb_path"] = "${MOZART_HOME}/warehouse/demo_b_marts.duckdb"
    config["iceberg"]["raw_namespace"] = "demo_raw"  # the victim's raw tables
    (intruder / "tenant.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    monkeypatch.setenv("MOZART_TENANTS_DIR", str(tenants))

    bag = DagBag(dag_folder=str(ROOT / "dags"))

    assert CONFIG_ERROR_TAG not in bag.dags["demo"].tags
    assert CONFIG_ERROR_TAG in bag.dags["demo_b"].tags
    assert "iceberg.raw_namespace 'demo_raw' is tenant demo's name" in (
        bag.dags["demo_b"].doc_md or ""
    )


# What a setting resolves to, not how it is written: `x/../`, symlinks and the
# case of a connection id cannot make another tenant's resource look like one's own.


def _with_warehouse(tenant: TenantConfig, path: str) -> TenantConfig:
    """The tenant with `dbt.duckdb_path` exactly as given (absolute values are
    used as written by the schema: no resolving there)."""
    dbt = tenant.dbt.model_copy(update={"duckdb_path": path})
    return tenant.model_copy(update={"dbt": dbt})


def test_a_warehouse_path_through_dot_dot_is_the_other_tenants(tmp_path: Path) -> None:
    victim_file = tmp_path / "acme_b_marts.duckdb"
    (tmp_path / "x").mkdir()
    acme = _with_warehouse(
        _tenant(tmp_path, "acme"), f"{tmp_path}/x/../{victim_file.name}"
    )
    acme_b = _tenant(tmp_path, "acme_b")
    assert acme.dbt.duckdb_path != acme_b.dbt.duckdb_path  # as written: different

    errors = isolation_errors({"acme": acme, "acme_b": acme_b})

    assert set(errors) == {"acme"}
    message = str(errors["acme"])
    assert message.startswith("[tenant=acme] dbt.duckdb_path ")
    assert f"(resolves to {str(victim_file.resolve())!r})" in message
    assert "it is tenant acme_b's" in message


def test_a_warehouse_path_through_a_symlink_is_the_other_tenants(
    tmp_path: Path,
) -> None:
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    (tmp_path / "acme_link").symlink_to(warehouse, target_is_directory=True)
    acme_b = _with_warehouse(
        _tenant(tmp_path, "acme_b"), str(warehouse / "acme_b_marts.duckdb")
    )
    # A file symlink too: acme's own-looking name pointing at acme_b's file.
    (warehouse / "acme_marts.duckdb").symlink_to(warehouse / "acme_b_marts.duckdb")
    by_folder = _with_warehouse(
        _tenant(tmp_path, "acme"), str(tmp_path / "acme_link" / "acme_b_marts.duckdb")
    )
    by_file = _with_warehouse(
        _tenant(tmp_path, "acme"), str(warehouse / "acme_marts.duckdb")
    )

    for acme in (by_folder, by_file):
        errors = isolation_errors({"acme": acme, "acme_b": acme_b})
        assert set(errors) == {"acme"}
        message = str(errors["acme"])
        real = str((warehouse / "acme_b_marts.duckdb").resolve())
        assert f"dbt.duckdb_path {acme.dbt.duckdb_path!r} (resolves to {real!r})" in (
            message
        )
        assert "it is tenant acme_b's" in message


@pytest.mark.parametrize(
    ("written", "victims"),
    [
        ("Acme_B_Source", "acme_b_source"),
        ("ACME_B_SOURCE", "acme_b_source"),
        ("acme_b_l\u0131nk", "acme_b_link"),  # dotless i: upper() gives I
    ],
)
def test_connection_ids_differing_only_in_case_are_one_connection(
    tmp_path: Path, written: str, victims: str
) -> None:
    # Airflow's environment backend reads AIRFLOW_CONN_ + conn_id.upper().
    assert written != victims and written.upper() == victims.upper()
    acme = _tenant(tmp_path, "acme", **{"source.conn_id": written})
    acme_b = _tenant(tmp_path, "acme_b", **{"source.conn_id": victims})

    errors = isolation_errors({"acme": acme, "acme_b": acme_b})

    assert set(errors) == {"acme"}
    message = str(errors["acme"])
    assert f"source.conn_id {written!r} (connection ids are case-insensitive" in (
        message
    )
    assert f"AIRFLOW_CONN_{victims.upper()}" in message
    assert f"it is tenant acme_b's (source.conn_id {victims!r})" in message


def test_a_lake_folder_through_a_symlink_or_inside_another_is_refused(
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    (lake / "acme_b").mkdir(parents=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "acme").symlink_to(lake / "acme_b", target_is_directory=True)
    acme_b = _tenant(tmp_path, "acme_b", **{"storage.lake_root": str(lake)})
    linked = _tenant(tmp_path, "acme", **{"storage.lake_root": str(other)})
    nested = _tenant(tmp_path, "acme", **{"storage.lake_root": f"{lake}/x/../acme_b"})

    linked_error = str(isolation_errors({"acme": linked, "acme_b": acme_b})["acme"])
    nested_errors = isolation_errors({"acme": nested, "acme_b": acme_b})

    victim = str((lake / "acme_b").resolve())
    assert f"resolves to {victim!r}" in linked_error
    assert "the lake folder of tenant(s) ['acme_b']" in linked_error
    assert set(nested_errors) == {"acme"}
    assert f"inside {victim!r}, the lake folder of tenant(s) ['acme_b']" in str(
        nested_errors["acme"]
    )


def test_tenants_on_one_lake_root_written_differently_both_build(
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    acme = _tenant(tmp_path, "acme", **{"storage.lake_root": f"{lake}/x/.."})
    acme_b = _tenant(tmp_path, "acme_b", **{"storage.lake_root": str(lake)})

    assert isolation_errors({"acme": acme, "acme_b": acme_b}) == {}


def test_an_unresolvable_path_is_its_tenants_error_only(tmp_path: Path) -> None:
    acme = _with_warehouse(_tenant(tmp_path, "acme"), f"{tmp_path}/acme\x00.duckdb")
    acme_b = _tenant(tmp_path, "acme_b")

    errors = isolation_errors({"acme": acme, "acme_b": acme_b})

    assert set(errors) == {"acme"}
    assert "dbt.duckdb_path" in str(errors["acme"])
    assert "null" in str(errors["acme"])
