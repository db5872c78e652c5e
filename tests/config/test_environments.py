"""Environment overrides: merge order, validation naming the environment and key,
and `mozart config` (resolved YAML, secrets masked, origins, stable output)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from mozart_etl.config.loader import load_tenant, resolve_tenant
from mozart_etl.config.models import TenantConfig
from mozart_etl.core.errors import ConfigError
from mozart_etl.ops.cli import main
from tests.helpers import table_dict, tenant_dict

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = [
    {"name": "event_id", "type": "bigint", "nullable": False},
    {"name": "equipment_id", "type": "string"},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]
PLATFORM = {
    "alerting": {"on_retry": True, "emails": ["oncall@example.com"]},
    "environments": {
        "prod": {
            "schedule": {"retries": 3},
            "alerting": {"max_consecutive_failed_runs": 3},
        }
    },
}
DB_PASSWORD = "pw-0f7c-from-env"
URI_PASSWORD = "uri-pass-91"
OPTION_PASSWORD = "keypw-5521"


def _events() -> dict[str, Any]:
    return table_dict(
        "events",
        COLUMNS,
        primary_key=["event_id"],
        mode="merge",
        cursor="updated_at",
    )


def _tenant_doc(tmp_path: Path, **environments: Any) -> dict[str, Any]:
    data = tenant_dict(tmp_path, [_events()])
    data["schedule"]["retries"] = 1
    if environments:
        data["environments"] = environments
    return data


def _write(
    tmp_path: Path, tenant: dict[str, Any], platform: dict[str, Any] | None = None
) -> Path:
    tenants = tmp_path / "tenants"
    folder = tenants / tenant["tenant_id"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tenant.yaml").write_text(yaml.safe_dump(tenant, sort_keys=False))
    if platform is not None:
        (tenants / "_platform.yaml").write_text(yaml.safe_dump(platform))
    return folder


PROD_OVERRIDE = {
    "schedule": {"retry_delay_minutes": 15},
    "tables": [
        {
            "name": "events",
            "lookback_hours": 6,
            "columns": [{"name": "equipment_id", "nullable": False}],
        }
    ],
}


def test_layers_merge_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _write(tmp_path, _tenant_doc(tmp_path, prod=PROD_OVERRIDE), PLATFORM)

    local = load_tenant(folder)
    assert local.schedule.retries == 1  # tenant base over platform base
    assert local.schedule.retry_delay_minutes == 5
    assert local.alerting.on_retry is True  # platform base
    assert local.alerting.max_consecutive_failed_runs == 0
    assert local.table("events").lookback_hours == 0
    assert load_tenant(folder, env="dev") == local  # no dev blocks: as local

    monkeypatch.setenv("MOZART_ENV", "prod")
    prod = load_tenant(folder)
    assert prod.schedule.retries == 3  # platform prod over tenant base
    assert prod.schedule.retry_delay_minutes == 15  # tenant prod
    assert prod.alerting.on_retry is True
    assert prod.alerting.max_consecutive_failed_runs == 3
    events = prod.table("events")
    assert events.lookback_hours == 6  # merged into the table by name
    assert events.mode == "merge"  # the rest of the table stays
    assert [c.name for c in events.columns] == [
        "event_id",
        "equipment_id",
        "updated_at",
    ]
    assert events.column("equipment_id").nullable is False
    assert events.column("equipment_id").type == "string"
    assert load_tenant(folder, env="local") == local  # an explicit env wins


def test_tenant_environment_beats_platform_environment(tmp_path: Path) -> None:
    override = {"schedule": {"retries": 5}}
    folder = _write(tmp_path, _tenant_doc(tmp_path, prod=override), PLATFORM)
    resolved = resolve_tenant(folder, env="prod")
    assert resolved.config.schedule.retries == 5
    assert resolved.origins["schedule.retries"] == "environments.prod (tenant.yaml)"
    assert resolved.origins["alerting.on_retry"] == "_platform.yaml"
    assert resolved.origins["alerting.max_consecutive_failed_runs"] == (
        "environments.prod (_platform.yaml)"
    )
    assert "schedule.retry_delay_minutes" not in resolved.origins


def test_an_unknown_key_in_an_override_names_environment_and_key(
    tmp_path: Path,
) -> None:
    override = {"schedule": {"retrys": 3}}
    folder = _write(tmp_path, _tenant_doc(tmp_path, staging=override))
    assert load_tenant(folder).schedule.retries == 1  # other environments load

    with pytest.raises(ConfigError) as caught:
        load_tenant(folder, env="staging")
    message = str(caught.value)
    assert message.startswith("[tenant=acme] ")
    assert message.endswith(
        "tenant.yaml: 1 invalid setting(s)\n"
        "  - schedule.retrys: Extra inputs are not permitted "
        "(from environments.staging (tenant.yaml))"
    )


def test_an_invalid_value_in_the_platform_override_names_it(tmp_path: Path) -> None:
    platform = {"environments": {"prod": {"schedule": {"retries": -1}}}}
    folder = _write(tmp_path, _tenant_doc(tmp_path), platform)
    with pytest.raises(ConfigError) as caught:
        load_tenant(folder, env="prod")
    assert (
        "  - schedule.retries: Input should be greater than or equal to 0 "
        "(from environments.prod (_platform.yaml))"
    ) in str(caught.value)


@pytest.mark.parametrize(
    ("environments", "expected"),
    [
        (
            {"prd": {"schedule": {"retries": 3}}},
            "environments.prd: unknown environment (known: local, dev, staging, prod)",
        ),
        (
            {"prod": {"tables": [{"name": "evnts", "lookback_hours": 1}]}},
            "environments.prod (tenant.yaml): tables[evnts]: no such item to "
            "override (known: ['events'])",
        ),
        (
            {"prod": {"tenant_id": "other"}},
            "environments.prod.tenant_id: cannot be overridden by an environment",
        ),
        ({"prod": ["retries"]}, "environments.prod: expected a mapping of settings"),
    ],
)
def test_malformed_overrides_are_errors(
    tmp_path: Path, environments: dict[str, Any], expected: str
) -> None:
    folder = _write(tmp_path, _tenant_doc(tmp_path, **environments))
    with pytest.raises(ConfigError, match="tenant=acme") as caught:
        load_tenant(folder, env="prod")
    assert expected in str(caught.value)


def test_an_unknown_mozart_env_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _write(tmp_path, _tenant_doc(tmp_path))
    monkeypatch.setenv("MOZART_ENV", "production")
    with pytest.raises(ConfigError) as caught:
        load_tenant(folder)
    assert str(caught.value) == (
        "[tenant=acme] MOZART_ENV='production' is not an environment "
        "(known: local, dev, staging, prod)"
    )


def test_overrides_are_substituted_after_the_merge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    override = {"alerting": {"emails": ["${ACME_ONCALL}"]}}
    folder = _write(tmp_path, _tenant_doc(tmp_path, prod=override))
    monkeypatch.setenv("ACME_ONCALL", "oncall@acme.example")
    assert load_tenant(folder, env="prod").alerting.emails == ["oncall@acme.example"]
    assert load_tenant(folder).alerting.emails == []


# --- mozart config -----------------------------------------------------------


def _secret_tenant(tmp_path: Path) -> dict[str, Any]:
    data = _tenant_doc(tmp_path, prod=PROD_OVERRIDE)
    data["source"] = {
        "type": "postgresql",
        "host": "mes.acme.example",
        "database": "mes",
        "user": "etl",
        "password": "${ACME_DB_PASSWORD}",
        "options": {"sslmode": "require", "sslkey_password": OPTION_PASSWORD},
    }
    data["params"] = {"site": "P1", "line": 7}
    data["iceberg"]["catalog"]["uri"] = (
        f"postgresql+psycopg://etl:{URI_PASSWORD}@catalog.acme.example/iceberg"
    )
    return data


def _config_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str
) -> str:
    code = main(["--tenants-dir", str(tmp_path / "tenants"), "config", *args])
    assert code == 0
    return capsys.readouterr().out


def test_mozart_config_masks_every_secret(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("ACME_DB_PASSWORD", DB_PASSWORD)
    _write(tmp_path, _secret_tenant(tmp_path), PLATFORM)
    caplog.set_level(logging.DEBUG)

    out = _config_output(capsys, tmp_path, "acme", "--env", "prod")

    for secret in (DB_PASSWORD, URI_PASSWORD, OPTION_PASSWORD):
        assert secret not in out
        assert secret not in caplog.text
    lines = out.splitlines()
    assert "  password: '***'" in lines
    assert (
        "    uri: 'postgresql+psycopg://etl:***@catalog.acme.example/iceberg'" in lines
    )
    assert "    sslkey_password: '***'" in lines
    assert "    sslmode: require" in lines
    # The output is the configuration: it parses and validates as one.
    parsed = yaml.safe_load(out)
    again = TenantConfig.model_validate(parsed)
    assert again.source.password is not None
    assert again.source.password.get_secret_value() == "***"
    assert again.schedule.retries == 3
    assert again.table("events").lookback_hours == 6


def test_mozart_config_says_where_overrides_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACME_DB_PASSWORD", DB_PASSWORD)
    _write(tmp_path, _secret_tenant(tmp_path), PLATFORM)

    lines = _config_output(capsys, tmp_path, "acme", "--env", "prod").splitlines()

    assert lines[0] == "# tenant acme, environment prod"
    noted = [line for line in lines if "  # from " in line]
    assert noted == [
        "  retries: 3  # from environments.prod (_platform.yaml)",
        "  retry_delay_minutes: 15.0  # from environments.prod (tenant.yaml)",
        "  emails: [oncall@example.com]  # from _platform.yaml",
        "  on_retry: true  # from _platform.yaml",
        "  max_consecutive_failed_runs: 3  # from environments.prod (_platform.yaml)",
        "        nullable: false  # from environments.prod (tenant.yaml)",
        "    lookback_hours: 6.0  # from environments.prod (tenant.yaml)",
    ]
    local = _config_output(capsys, tmp_path, "acme").splitlines()
    assert [line for line in local if "  # from " in line] == [
        "  emails: [oncall@example.com]  # from _platform.yaml",
        "  on_retry: true  # from _platform.yaml",
    ]


def test_mozart_config_is_stable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACME_DB_PASSWORD", DB_PASSWORD)
    data = _secret_tenant(tmp_path)
    _write(tmp_path, data, PLATFORM)
    first = _config_output(capsys, tmp_path, "acme", "--env", "prod")
    assert _config_output(capsys, tmp_path, "acme", "--env", "prod") == first

    # The same settings written in another key order print the same.
    shuffled = {key: data[key] for key in reversed(list(data))}
    shuffled["params"] = {"line": 7, "site": "P1"}
    shuffled["source"]["options"] = dict(reversed(data["source"]["options"].items()))
    _write(tmp_path, shuffled)
    assert _config_output(capsys, tmp_path, "acme", "--env", "prod") == first
    assert "  line: 7\n  site: P1\n" in first  # free-form mappings: sorted


def test_the_demo_runs_locally_as_its_base_says(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The demo's prod override and the platform's prod block change nothing
    locally; the platform's base gives only the shared infrastructure (the
    object store's connection and the catalog), unset locally."""
    assert main(["config", "demo", "--env", "local"]) == 0
    local = capsys.readouterr().out
    notes = [line.strip() for line in local.splitlines() if "  # from " in line]
    settings = [note.split(":")[0] for note in notes]
    assert settings == [
        "aws_conn_id",
        "endpoint_url",
        "region",
        "type",
        "uri",
        "conn_id",
    ]
    assert all(note.endswith("  # from _platform.yaml") for note in notes)
    assert "aws_conn_id: null  # from _platform.yaml" in notes
    assert "type: sql  # from _platform.yaml" in notes
    assert main(["config", "demo", "--env", "prod"]) == 0
    prod = capsys.readouterr().out
    assert (
        "  emails: [aps-oncall@example.com]  # from environments.prod (tenant.yaml)"
        in prod.splitlines()
    )
    demo = ROOT / "tenants" / "demo"
    assert load_tenant(demo, env="local").alerting.emails == []


def test_an_unknown_tenant_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tenants").mkdir()
    assert main(["--tenants-dir", str(tmp_path / "tenants"), "config", "nope"]) == 1
    assert capsys.readouterr().out == ""
