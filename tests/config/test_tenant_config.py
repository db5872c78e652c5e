"""tenant.yaml: the demo loads, `${VAR}` substitution, and every error says where."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from mozart_etl.config.constants import ColumnType, LoadMode, Severity, SourceType
from mozart_etl.config.loader import load_tenant, project_root
from mozart_etl.config.models import TenantConfig
from mozart_etl.core.errors import ConfigError
from mozart_etl.ops.cli import main as mozart
from mozart_etl.validate.rules.range import RangeRule
from tests.helpers import sqlite_source, table_dict, tenant_dict

LOT_COLUMNS = [
    {"name": "lot_id", "type": "string", "nullable": False},
    {"name": "qty", "type": "bigint"},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]


def _lot_history(**extra: Any) -> dict[str, Any]:
    return table_dict("lot_history", LOT_COLUMNS, primary_key=["lot_id"], **extra)


def _write_tenant(root: Path, folder: str, data: dict[str, Any] | str) -> Path:
    path = root / folder
    path.mkdir(parents=True, exist_ok=True)
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    (path / "tenant.yaml").write_text(text, encoding="utf-8")
    return path


def _config_error(tmp_path: Path, data: dict[str, Any], folder: str = "acme") -> str:
    """Write `data` as tenants/<folder>/tenant.yaml; the ConfigError's text."""
    path = _write_tenant(tmp_path / "tenants", folder, data)
    with pytest.raises(ConfigError) as info:
        load_tenant(path, base_dir=tmp_path)
    return str(info.value)


# --- the demo tenant -----------------------------------------------------------


def test_demo_tenant_loads_with_paths_under_mozart_home(mozart_home: Path) -> None:
    tenant = load_tenant(project_root() / "tenants" / "demo")

    assert tenant.tenant_id == "demo"
    assert tenant.source.type == SourceType.SQLITE
    assert tenant.source.database == str(mozart_home / "demo" / "source.sqlite")
    assert tenant.storage.lake_root == str(mozart_home / "lake")
    assert tenant.iceberg.catalog.uri == (
        f"sqlite:///{mozart_home / 'iceberg' / 'catalog.db'}"
    )
    assert [t.name for t in tenant.tables] == [
        "equipment",
        "product_route",
        "lot_history",
        "equipment_event",
        "process_result",
        "plan_production",
        "item_master",
        "bom",
        "demand",
    ]
    lots = tenant.table("lot_history")
    assert (lots.mode, lots.cursor, lots.primary_key) == (
        LoadMode.MERGE,
        "updated_at",
        ["lot_id", "step_seq"],
    )
    assert lots.column("arrived_at").type == ColumnType.TIMESTAMPTZ
    capacity = tenant.table("equipment").column("capacity_per_hour")
    assert (capacity.type, capacity.precision, capacity.scale) == ("decimal", 10, 2)
    warn = tenant.table("process_result").rules[0]
    assert isinstance(warn, RangeRule)
    assert (warn.column, warn.min, warn.severity) == ("defect_qty", 0, Severity.WARN)
    assert tenant.raw_namespace == "demo_raw"
    assert tenant.schedule.effective_cron == "0 0 * * *"


# --- ${VAR} substitution -------------------------------------------------------


def test_env_var_and_default_are_substituted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_DB_HOST", "db.acme.internal")
    monkeypatch.setenv("ACME_DB_PASSWORD", "pw-from-env")
    monkeypatch.delenv("ACME_DB_PORT", raising=False)
    monkeypatch.delenv("ACME_DB_NAME", raising=False)
    data = tenant_dict(tmp_path, [_lot_history()])
    data["source"] = {
        "type": "postgresql",
        "host": "${ACME_DB_HOST}",
        "port": "${ACME_DB_PORT:6543}",
        "user": "etl",
        "password": "${ACME_DB_PASSWORD}",
        "database": "mes_${ACME_DB_NAME:plant1}_db",
    }
    folder = _write_tenant(tmp_path / "tenants", "acme", data)

    tenant = load_tenant(folder, base_dir=tmp_path)

    assert tenant.source.host == "db.acme.internal"
    assert tenant.source.port == 6543
    assert tenant.source.database == "mes_plant1_db"
    assert tenant.source.password is not None
    assert tenant.source.password.get_secret_value() == "pw-from-env"


def test_set_env_var_wins_over_its_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_LAKE", str(tmp_path / "elsewhere"))
    data = tenant_dict(tmp_path, [_lot_history()])
    data["storage"] = {"lake_root": "${ACME_LAKE:relative/lake}"}
    folder = _write_tenant(tmp_path / "tenants", "acme", data)

    assert load_tenant(folder, base_dir=tmp_path).storage.lake_root == str(
        tmp_path / "elsewhere"
    )


def test_relative_default_path_resolves_against_base_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACME_LAKE", raising=False)
    data = tenant_dict(tmp_path, [_lot_history()])
    data["storage"] = {"lake_root": "${ACME_LAKE:relative/lake}"}
    folder = _write_tenant(tmp_path / "tenants", "acme", data)

    assert load_tenant(folder, base_dir=tmp_path).storage.lake_root == str(
        tmp_path / "relative" / "lake"
    )


def test_missing_env_var_without_default_names_file_and_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACME_MISSING_SECRET", raising=False)
    data = tenant_dict(tmp_path, [_lot_history()])
    data["source"] = {
        **sqlite_source(tmp_path / "s.db"),
        "user": "${ACME_MISSING_SECRET}",
    }

    message = _config_error(tmp_path, data)

    assert str(tmp_path / "tenants" / "acme" / "tenant.yaml") in message
    assert "ACME_MISSING_SECRET" in message
    assert "tenant=acme" in message


# --- schema errors, each naming where ------------------------------------------


def test_unknown_key_names_tenant_table_and_field(tmp_path: Path) -> None:
    data = tenant_dict(tmp_path, [_lot_history(cursr="updated_at")])

    message = _config_error(tmp_path, data)

    assert "tenant=acme" in message
    assert "tables[lot_history].cursr" in message
    assert "Extra inputs are not permitted" in message


def test_unknown_key_in_a_column_names_the_column_path(tmp_path: Path) -> None:
    columns = [*LOT_COLUMNS[:2], {**LOT_COLUMNS[2], "tz": "UTC"}]
    data = tenant_dict(
        tmp_path, [table_dict("lot_history", columns, primary_key=["lot_id"])]
    )

    message = _config_error(tmp_path, data)

    assert "tables[lot_history].columns[updated_at].tz" in message


def test_rule_on_unknown_column(tmp_path: Path) -> None:
    rules = [{"type": "not_null", "columns": ["lot_id", "qty_out"]}]
    data = tenant_dict(tmp_path, [_lot_history(rules=rules)])

    message = _config_error(tmp_path, data)

    assert "tables[lot_history]" in message
    assert "rule not_null: unknown column 'qty_out'" in message


def test_range_with_min_above_max(tmp_path: Path) -> None:
    rules = [{"type": "range", "column": "qty", "min": 10, "max": 5}]
    data = tenant_dict(tmp_path, [_lot_history(rules=rules)])

    message = _config_error(tmp_path, data)

    assert "tables[lot_history].rules[0].range" in message
    assert "min 10.0 > max 5.0" in message


def test_decimal_without_precision(tmp_path: Path) -> None:
    columns = [*LOT_COLUMNS, {"name": "amount", "type": "decimal", "scale": 2}]
    data = tenant_dict(
        tmp_path, [table_dict("lot_history", columns, primary_key=["lot_id"])]
    )

    message = _config_error(tmp_path, data)

    assert "tables[lot_history].columns[amount]" in message
    assert "decimal column 'amount' needs precision and scale" in message


def test_precision_on_a_non_decimal_column(tmp_path: Path) -> None:
    columns = [*LOT_COLUMNS, {"name": "n", "type": "bigint", "precision": 5}]
    data = tenant_dict(
        tmp_path, [table_dict("lot_history", columns, primary_key=["lot_id"])]
    )

    assert "only decimal columns take precision/scale ('n')" in _config_error(
        tmp_path, data
    )


def test_incremental_without_cursor(tmp_path: Path) -> None:
    data = tenant_dict(tmp_path, [_lot_history(mode="incremental")])

    message = _config_error(tmp_path, data)

    assert "tables[lot_history]" in message
    assert "mode incremental needs a `cursor` column" in message


def test_cursor_must_be_temporal(tmp_path: Path) -> None:
    data = tenant_dict(tmp_path, [_lot_history(mode="merge", cursor="qty")])

    assert "cursor 'qty' must be a date or timestamp" in _config_error(tmp_path, data)


def test_tenant_id_must_equal_folder_name(tmp_path: Path) -> None:
    data = tenant_dict(tmp_path, [_lot_history()], tenant_id="acme")

    message = _config_error(tmp_path, data, folder="acme_two")

    assert "tenant_id 'acme' must equal its folder name 'acme_two'" in message
    assert str(tmp_path / "tenants" / "acme_two" / "tenant.yaml") in message


def test_identifier_with_double_quote_is_rejected(tmp_path: Path) -> None:
    columns = [*LOT_COLUMNS, {"name": 'qty"; DROP TABLE lots; --', "type": "bigint"}]
    data = tenant_dict(
        tmp_path, [table_dict("lot_history", columns, primary_key=["lot_id"])]
    )

    message = _config_error(tmp_path, data)

    assert "tables[lot_history].columns[" in message
    assert "String should match pattern" in message


def test_source_table_with_backtick_is_rejected(tmp_path: Path) -> None:
    data = tenant_dict(tmp_path, [_lot_history(source={"table": "lots`x"})])

    message = _config_error(tmp_path, data)

    assert "tables[lot_history].source.table" in message


def test_identifiers_with_space_and_reserved_word_are_accepted(tmp_path: Path) -> None:
    columns = [
        {"name": "lot id", "type": "string", "nullable": False},
        {"name": "order", "type": "int"},
    ]
    data = tenant_dict(
        tmp_path,
        [
            table_dict(
                "lots", columns, primary_key=["lot id"], source={"table": "Lot Table"}
            )
        ],
    )

    tenant = TenantConfig.model_validate(data, context={"base_dir": tmp_path})

    assert tenant.table("lots").column_names == ["lot id", "order"]
    assert tenant.table("lots").source.table == "Lot Table"


def test_tenant_filter_param_must_exist(tmp_path: Path) -> None:
    data = tenant_dict(
        tmp_path,
        [_lot_history(tenant_filter={"column": "lot_id", "param": "plant"})],
        params={"site": "P1"},
    )

    message = _config_error(tmp_path, data)

    assert "tenant_filter param 'plant' is not in `params`" in message


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    folder = _write_tenant(tmp_path / "tenants", "acme", "tenant_id: [acme\n")

    with pytest.raises(ConfigError) as info:
        load_tenant(folder, base_dir=tmp_path)

    assert f"{folder / 'tenant.yaml'}: invalid YAML" in str(info.value)


def test_errors_are_all_listed_at_once(tmp_path: Path) -> None:
    data = tenant_dict(tmp_path, [_lot_history(mode="merge", colour="red")])
    data["schedule"]["timezone"] = "Mars/Olympus"

    message = _config_error(tmp_path, data)

    assert "2 invalid setting(s)" in message
    assert "schedule.timezone" in message
    assert "unknown time zone 'Mars/Olympus'" in message
    assert "tables[lot_history].colour" in message


# --- `mozart validate` ---------------------------------------------------------


def test_cli_validate_passes_on_good_tenants(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "tenants"
    for name in ("alpha", "beta"):
        # Each its own files: one warehouse for both would fail isolation.
        data = tenant_dict(tmp_path / name, [_lot_history()], tenant_id=name)
        _write_tenant(root, name, data)

    with caplog.at_level(logging.INFO):
        code = mozart(["--tenants-dir", str(root), "validate"])

    assert code == 0
    assert "tenant alpha: OK (1 tables)" in caplog.text
    assert "tenant beta: OK (1 tables)" in caplog.text
    assert "2 tenant(s), 0 invalid" in caplog.text


def test_cli_validate_fails_and_names_the_broken_tenant(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "tenants"
    _write_tenant(
        root, "alpha", tenant_dict(tmp_path, [_lot_history()], tenant_id="alpha")
    )
    broken = tenant_dict(tmp_path, [_lot_history(mode="incremental")], tenant_id="beta")
    _write_tenant(root, "beta", broken)

    with caplog.at_level(logging.INFO):
        code = mozart(["--tenants-dir", str(root), "validate"])

    assert code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("tenant beta: ")
    assert "needs a `cursor` column" in errors[0]
    assert "tenant alpha: OK (1 tables)" in caplog.text
    assert "2 tenant(s), 1 invalid" in caplog.text


def test_cli_validate_fails_on_an_empty_tenants_dir(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "empty").mkdir()

    assert mozart(["--tenants-dir", str(tmp_path / "empty"), "validate"]) == 1
    assert "no tenant.yaml under" in caplog.text


def test_connections_names_every_connection_a_tenant_opens(tmp_path: Path) -> None:
    data = tenant_dict(
        tmp_path, [table_dict("lots", [{"name": "id", "type": "bigint"}])]
    )
    data["source"] = {"type": "postgresql", "database": "mes", "conn_id": "plant_src"}
    data["publish"] = {"target": {"conn_id": "aps_pg"}, "marts": ["mart_wip"]}
    data["storage"]["s3"] = {"aws_conn_id": "lake_aws"}
    data["alerting"] = {"emails": ["ops@example.com"], "smtp_conn_id": "mail"}
    tenant = TenantConfig.model_validate(data, context={"base_dir": tmp_path})

    assert tenant.connections() == {
        "source.conn_id": "plant_src",
        "publish.target.conn_id": "aps_pg",
        "storage.s3.aws_conn_id": "lake_aws",
        "alerting.smtp_conn_id": "mail",
    }
