"""One answer to "is this tenant valid?": `mozart validate`, the other `mozart`
commands and the DAG factory all read the registry (`config/registry.py`).

Two tenants sharing a DuckDB file and a dbt pool used to pass `mozart validate`
("0 invalid") and become a config-error DAG in Airflow; now both refuse them,
with the same message.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from mozart_etl.config.registry import load_all, valid_tenant
from mozart_etl.core.errors import ConfigError
from mozart_etl.factory.dag_factory import CONFIG_ERROR_TAG, build_tenant_dags
from mozart_etl.ops.cli import main as mozart
from tests.cli import run_mozart
from tests.helpers import table_dict, tenant_dict

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tenants" / "demo"


def _write(root: Path, data: dict[str, Any]) -> Path:
    folder = root / data["tenant_id"]
    folder.mkdir(parents=True)
    (folder / "tenant.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return folder


def _plant(tmp_path: Path, tenant_id: str, **dbt: str) -> dict[str, Any]:
    """A valid tenant with its own files under tmp_path/<id>, `dbt` overridden."""
    columns = [{"name": "id", "type": "int"}]
    data = tenant_dict(
        tmp_path / tenant_id, [table_dict("lots", columns)], tenant_id=tenant_id
    )
    data["dbt"].update(dbt)
    return data


def _sharing(tmp_path: Path) -> Path:
    """alpha and beta naming one DuckDB file (of neither's name) and alpha's pool."""
    root = tmp_path / "tenants"
    shared = str(tmp_path / "shared_marts.duckdb")
    for tenant_id in ("alpha", "beta"):
        _write(
            root,
            _plant(tmp_path, tenant_id, duckdb_path=shared, pool="mozart_duckdb_alpha"),
        )
    return root


def _errors(caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """The ERROR records `mozart` logged, by the tenant each names first."""
    found: dict[str, str] = {}
    for record in caplog.records:
        if record.levelno == logging.ERROR:
            message = record.getMessage()
            tenant = message.removeprefix("tenant ").split(":", 1)[0]
            assert tenant not in found, f"{tenant} reported twice"
            found[tenant] = message
    return found


def test_validate_refuses_two_tenants_sharing_a_warehouse_and_a_pool(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _sharing(tmp_path)
    shared = str(tmp_path / "shared_marts.duckdb")

    with caplog.at_level(logging.INFO):
        code = mozart(["--tenants-dir", str(root), "validate"])

    assert code == 1
    assert "2 tenant(s), 2 invalid" in caplog.text
    errors = _errors(caplog)
    assert set(errors) == {"alpha", "beta"}
    # The file carries neither id: each is refused, naming the other.
    assert (
        f"dbt.duckdb_path {shared!r} is also used by tenant(s) ['beta']: "
        "each tenant needs its own"
    ) in errors["alpha"]
    assert (
        f"dbt.duckdb_path {shared!r} is also used by tenant(s) ['alpha']: "
        "each tenant needs its own"
    ) in errors["beta"]
    # The pool carries alpha's id: only beta is refused for it.
    assert "dbt.pool" not in errors["alpha"]
    assert "dbt.pool 'mozart_duckdb_alpha' is tenant alpha's name" in errors["beta"]
    assert ": OK (" not in caplog.text


def test_validate_in_its_own_process_exits_1_naming_both_tenants(
    tmp_path: Path,
) -> None:
    root = tmp_path / "tenants"
    alpha = str(tmp_path / "alpha_marts.duckdb")  # alpha's by its name
    _write(root, _plant(tmp_path, "alpha", duckdb_path=alpha))
    _write(root, _plant(tmp_path, "beta", duckdb_path=alpha))

    done = run_mozart("--tenants-dir", str(root), "validate")

    assert done.returncode == 1
    assert "INFO tenant alpha: OK (1 tables)" in done.stderr
    assert (
        f"ERROR tenant beta: [tenant=beta] dbt.duckdb_path {alpha!r} is also used "
        f"by tenant(s) ['alpha']; it is tenant alpha's (dbt.duckdb_path {alpha!r})"
    ) in done.stderr
    assert "2 tenant(s), 1 invalid" in done.stderr


def test_every_error_of_a_tenant_is_listed_at_once(tmp_path: Path) -> None:
    root = _sharing(tmp_path)
    beta = root / "beta" / "tenant.yaml"
    data = yaml.safe_load(beta.read_text(encoding="utf-8"))
    data["tables"][0]["transform"] = "plant.rules:normalise"  # no such file
    beta.write_text(yaml.safe_dump(data), encoding="utf-8")

    entries = {entry.tenant_id: entry for entry in load_all(root)}

    beta_entry = entries["beta"]
    assert beta_entry.config is not None  # loaded: its claims are checked too
    assert [type(error).__name__ for error in beta_entry.errors] == [
        "ConfigError",
        "IsolationError",
    ]
    lines = str(beta_entry.error).splitlines()
    assert lines[0].startswith("[tenant=beta table=lots] ")
    assert "'plant.rules:normalise' needs the file" in lines[0]
    assert lines[1].startswith("[tenant=beta] dbt.pool 'mozart_duckdb_alpha'")
    assert [error.tenant for error in entries["alpha"].errors] == ["alpha"]


def _demo_copy(tenants: Path, tenant_id: str, **dbt: str) -> Path:
    """The demo tenant (with its prebuilt layer manifests) under another id."""
    target = tenants / tenant_id
    shutil.copytree(
        DEMO,
        target,
        ignore=shutil.ignore_patterns("logs", "dbt_packages", "*.msgpack"),
    )
    path = target / "tenant.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["tenant_id"] = tenant_id
    config["dbt"].update(
        {
            "pool": f"mozart_duckdb_{tenant_id}",
            "duckdb_path": f"${{MOZART_HOME}}/warehouse/{tenant_id}_marts.duckdb",
            **dbt,
        }
    )
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return target


def test_the_dag_factory_refuses_exactly_what_validate_refuses(
    tmp_path: Path, mozart_home: Path
) -> None:
    tenants = tmp_path / "tenants"
    _demo_copy(tenants, "demo")
    # plant_b writes into demo's warehouse, in demo's pool.
    _demo_copy(
        tenants,
        "plant_b",
        pool="mozart_duckdb_demo",
        duckdb_path="${MOZART_HOME}/warehouse/demo_marts.duckdb",
    )
    # plant_c declares a transform whose file is missing.
    (_demo_copy(tenants, "plant_c") / "transforms.py").unlink()
    (tenants / "plant_d").mkdir()
    (tenants / "plant_d" / "tenant.yaml").write_text("tenant_id: [", encoding="utf-8")

    entries = {entry.tenant_id: entry for entry in load_all(tenants)}
    dags = build_tenant_dags(tenants)
    validate = run_mozart("--tenants-dir", str(tenants), "validate")

    refused = {tid for tid, entry in entries.items() if entry.error is not None}
    stand_ins = {d for d, dag in dags.items() if CONFIG_ERROR_TAG in dag.tags}
    assert refused == stand_ins == {"plant_b", "plant_c", "plant_d"}
    assert set(dags) == {"demo", "plant_b", "plant_c", "plant_d"}
    for tenant_id in refused:
        message = str(entries[tenant_id].error)
        assert message in (dags[tenant_id].doc_md or "")
        assert f"ERROR tenant {tenant_id}: {message.splitlines()[0]}" in (
            validate.stderr
        )
    assert "dbt.pool 'mozart_duckdb_demo' is tenant demo's name" in str(
        entries["plant_b"].error
    )
    assert "it is tenant demo's (dbt.duckdb_path" in str(entries["plant_b"].error)
    assert "needs the file" in str(entries["plant_c"].error)
    assert "invalid YAML" in str(entries["plant_d"].error)
    assert validate.returncode == 1
    assert "4 tenant(s), 3 invalid" in validate.stderr


def test_one_tenant_commands_take_only_a_valid_tenant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _sharing(tmp_path)
    _write(root, _plant(tmp_path, "gamma"))

    assert valid_tenant("gamma", root).tenant_id == "gamma"
    with pytest.raises(ConfigError, match=r"dbt\.pool 'mozart_duckdb_alpha'"):
        valid_tenant("beta", root)
    with pytest.raises(ConfigError) as missing:
        valid_tenant("delta", root)
    assert str(missing.value) == (
        "[tenant=delta] no tenant 'delta': no folder with a tenant.yaml of that "
        "name (tenants: alpha, beta, gamma)"
    )

    # `mozart backfill` (as report, sweep and check) reads the registry too.
    days = ["2026-11-17", "2026-11-19"]
    assert mozart(["--tenants-dir", str(root), "backfill", "beta", *days]) == 1
    assert capsys.readouterr().out == ""
    assert mozart(["--tenants-dir", str(root), "backfill", "gamma", *days]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("airflow backfill create --dag-id gamma --from-date ")
