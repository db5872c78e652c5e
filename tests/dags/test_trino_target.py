"""The stack's dbt target: Trino from an Airflow connection, or the shared profile."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from mozart_etl.config.loader import load_tenant
from mozart_etl.factory.dbt_groups import profile_config

ROOT = Path(__file__).resolve().parents[2]


def _tenant(tmp_path: Path, trino: dict) -> Path:
    folder = tmp_path / "plant_t"
    shutil.copytree(
        ROOT / "tenants" / "demo",
        folder,
        ignore=shutil.ignore_patterns("target", "dbt_packages", "logs"),
    )
    config = yaml.safe_load((ROOT / "tenants" / "demo" / "tenant.yaml").read_text())
    config["tenant_id"] = "plant_t"
    config["dbt"] = {"target": "trino", "trino": trino}
    (folder / "tenant.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    return folder


def test_trino_from_an_airflow_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_TRINO_APS",
        "trino://etl_user:s3cr3t-Pw@trino.example:8443/",
    )
    trino = {"conn_id": "trino_aps", "catalog": "lake", "http_scheme": "https"}
    tenant = load_tenant(_tenant(tmp_path, trino))

    profile = profile_config(tenant).profile_mapping.profile

    assert profile["type"] == "trino"
    assert profile["method"] == "ldap"
    assert profile["host"] == "trino.example"
    assert profile["port"] == 8443
    assert profile["user"] == "etl_user"
    assert profile["database"] == "lake"
    assert profile["schema"] == "plant_t"
    assert profile["http_scheme"] == "https"
    # The password is handed to dbt through an environment variable, not inlined.
    assert "s3cr3t-Pw" not in str(profile)


def test_trino_without_connection_uses_the_shared_profile(tmp_path: Path) -> None:
    tenant = load_tenant(_tenant(tmp_path, {"host": "trino", "port": 8080}))
    config = profile_config(tenant)
    assert config.profile_mapping is None
    assert Path(str(config.profiles_yml_filepath)) == ROOT / "dbt" / "profiles.yml"
    assert config.target_name == "trino"


def test_trino_connection_without_password_is_method_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stack's `mozart_<tenant>_trino`: a user and no password (rules.json
    grants by user). Cosmos's LDAP mapping would refuse it at run time."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_TRINO_APS",
        '{"conn_type": "trino", "host": "trino", "port": 8080, "login": "mozart_t"}',
    )
    tenant = load_tenant(_tenant(tmp_path, {"conn_id": "trino_aps"}))
    mapping = profile_config(tenant).profile_mapping

    profile = mapping.profile
    assert (profile["method"], profile["user"]) == ("none", "mozart_t")
    assert (profile["host"], profile["port"]) == ("trino", 8080)
    assert profile["http_scheme"] == "http"
    assert "password" not in profile and "jwt_token" not in profile
    assert not [key for key in mapping.env_vars if key.startswith("COSMOS_CONN")]


def test_trino_connection_with_a_jwt_and_https(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "eyJ-token-Only-In-Env-4b2"
    connection = {
        "conn_type": "trino",
        "host": "trino.example",
        "port": 443,
        "login": "etl",
        "extra": {"jwt__token": token, "protocol": "https"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_TRINO_APS", json.dumps(connection))
    tenant = load_tenant(_tenant(tmp_path, {"conn_id": "trino_aps"}))
    mapping = profile_config(tenant).profile_mapping

    profile = mapping.profile
    assert (profile["method"], profile["http_scheme"]) == ("jwt", "https")
    assert token not in str(profile)
    assert profile["jwt_token"] == mapping.get_env_var_format("jwt_token")
    assert mapping.env_vars[mapping.get_env_var_name("jwt_token")] == token
