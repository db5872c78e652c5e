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
from mozart_etl.factory.dag_factory import CONFIG_ERROR_TAG, build_tenant_dag
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


def test_every_task_runs_in_the_tenants_own_pool() -> None:
    demo = ROOT / "tenants" / "demo"
    tenant = load_tenant(demo)
    dag = build_tenant_dag(demo, tenant)
    pools = {task.pool for task in dag.tasks}
    assert tenant_pool(tenant) == "mozart_demo"
    assert "mozart_demo" in pools
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
