"""Static checks of tenant isolation in the stack: Trino's file-based access
control (default deny, each tenant's user reaches only its own namespaces) and
one database role per tenant (its source read-only, its own APS schema)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mozart_etl.config.loader import load_tenant
from tests.stack.test_compose import (
    _env_example,
    _stack_env,
    _stack_tenant,
    _substitute,
)

ROOT = Path(__file__).resolve().parents[2]
TRINO = ROOT / "stack" / "trino"
ROLES = ROOT / "stack" / "source-db" / "create-tenant-roles.sh"
COMPOSE = ROOT / "docker-compose.yaml"


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The compose file with .env.example's values (as in test_compose)."""
    return yaml.safe_load(_substitute(COMPOSE.read_text(), _env_example()))


def _properties(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def _rules() -> dict[str, list[dict[str, Any]]]:
    return json.loads((TRINO / "rules.json").read_text())


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_trino_uses_file_based_access_control_mounted_in_the_stack() -> None:
    properties = _properties(TRINO / "access-control.properties")
    assert properties["access-control.name"] == "file"
    assert properties["security.config-file"] == "/etc/trino/rules.json"
    volumes = _compose()["services"]["trino"]["volumes"]
    assert (
        "./stack/trino/access-control.properties:/etc/trino/access-control.properties:ro"
        in volumes
    )
    assert "./stack/trino/rules.json:/etc/trino/rules.json:ro" in volumes


def test_trino_rules_deny_by_default() -> None:
    """No rule without a user (Trino applies the first matching rule; with no
    match, access is denied), and no user pattern matching every user."""
    for kind, rules in _rules().items():
        for rule in rules:
            user = rule.get("user")
            assert user, f"{kind} rule without a user matches everyone: {rule}"
            assert not re.fullmatch(user, "someone_else"), (kind, rule)


STACK_TENANTS = ("demo", "acme")


def test_each_tenant_user_reaches_only_its_own_namespaces(
    resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per tenant user: its marts namespace owned and writable, its raw
    namespace read-only, `system` read-only with `system.metadata.
    materialized_views` alone readable (dbt-trino joins it), nothing else.
    test_trino_access.py evaluates the rules against dbt's statements."""
    rules = _rules()
    users = {rule["user"] for rules_ in rules.values() for rule in rules_}
    for tenant_id in STACK_TENANTS:
        tenant = _stack_tenant(resolved, monkeypatch, tenant_id)
        assert tenant.dbt.trino is not None
        user = tenant.dbt.trino.user
        assert user == f"mozart_{tenant.tenant_id}"
        assert user in users

        def mine(kind: str, user: str = user) -> list[dict[str, Any]]:
            return [r for r in rules[kind] if re.fullmatch(r["user"], user)]

        catalogs = {r["catalog"]: r["allow"] for r in mine("catalogs")}
        assert catalogs == {tenant.dbt.trino.catalog: "all", "system": "read-only"}
        assert [(r["schema"], r["owner"]) for r in mine("schemas")] == [
            (tenant.namespace, True)
        ]
        tables = {
            (r["catalog"], r["schema"], r.get("table", ".*")): set(r["privileges"])
            for r in mine("tables")
        }
        catalog = tenant.dbt.trino.catalog
        assert tables == {
            (catalog, tenant.namespace, ".*"): {
                "SELECT",
                "INSERT",
                "DELETE",
                "UPDATE",
                "OWNERSHIP",
            },
            (catalog, tenant.raw_namespace, ".*"): {"SELECT"},
            ("system", "metadata", "materialized_views"): {"SELECT"},
        }
        for rule in mine("schemas") + mine("tables"):
            reachable = {
                name
                for name in ("demo", "demo_raw", "acme", "acme_raw", "metadata", "x")
                if re.fullmatch(rule["schema"], name)
            }
            assert reachable <= {tenant.namespace, tenant.raw_namespace, "metadata"}


def test_one_database_role_per_tenant_with_only_its_rights(
    resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = _stack_tenant(resolved, monkeypatch)
    script = ROLES.read_text()
    subprocess.run(["bash", "-n", str(ROLES)], check=True)
    service = resolved["services"]["source-db-init"]
    assert "./stack/source-db:/stack:ro" in service["volumes"]
    assert "bash /stack/create-tenant-roles.sh" in " ".join(service["command"])
    assert service["depends_on"]["source-db"]["condition"] == "service_healthy"
    # Not an initdb script any more: those run only when the volume is new.
    assert not any(
        "docker-entrypoint-initdb.d" in v
        for v in resolved["services"]["source-db"].get("volumes", [])
    )
    pairs = dict(
        pair.split(":", 1)
        for pair in service["environment"]["MOZART_TENANT_ROLES"].split()
    )
    assert set(pairs) == {demo.tenant_id}
    example = (ROOT / ".env.example").read_text()
    assert "TENANT_DB_PASSWORD_DEMO=" in example  # a secret from .env only
    # PUBLIC loses its defaults; the role reads, never writes, its source.
    for statement in (
        'REVOKE ALL ON DATABASE :"db" FROM PUBLIC',
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        'GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"role"',
        'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO :"role"',
        'CREATE SCHEMA IF NOT EXISTS :"schema" AUTHORIZATION :"role"',
        "ALTER ROLE :\"role\" WITH LOGIN PASSWORD :'password'",
    ):
        assert statement in script, statement
    assert not re.search(r"GRANT\s+(ALL|INSERT|UPDATE|DELETE)", script)
    assert 'role="mozart_${tenant}"' in script
    # The tenant's Airflow connection logs in as that role.
    source = json.loads(_stack_env(resolved)["AIRFLOW_CONN_MOZART_DEMO_SOURCE"])
    assert source["login"] == f"mozart_{demo.tenant_id}"


def test_acme_reads_its_mariadb_as_its_own_user(
    resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = _stack_tenant(resolved, monkeypatch, "acme")
    services = resolved["services"]
    assert acme.source.type == "mysql" and acme.source.conn_id == "acme_mes"
    conn = json.loads(_stack_env(resolved)["AIRFLOW_CONN_ACME_MES"])
    example = _env_example()
    assert conn["conn_type"] == "mysql"
    assert (conn["host"], conn["port"], conn["schema"]) == (
        "acme-source-db",
        3306,
        "acme_mes",
    )
    assert conn["login"] == "mozart_acme"
    assert conn["password"] == example["TENANT_DB_PASSWORD_ACME"]
    init = services["acme-source-init"]
    assert init["environment"]["MOZART_TENANT_ROLES"] == "acme:acme_mes"
    assert init["environment"]["MYSQL_PWD"] == example["ACME_DB_ROOT_PASSWORD"]
    assert init["command"] == ["bash", "/stack/create-mariadb-roles.sh"]
    seed = services["acme-seed"]
    assert "--if-empty" in seed["command"]
    assert seed["depends_on"] == {
        "acme-source-init": {"condition": "service_completed_successfully"}
    }
    script = (ROOT / "stack" / "source-db" / "create-mariadb-roles.sh").read_text()
    assert "GRANT SELECT, SHOW VIEW ON" in script
    assert not re.search(r"GRANT\s+(ALL|INSERT|UPDATE|DELETE)", script)


def test_the_demo_tenant_names_its_own_trino_user() -> None:
    demo = load_tenant(ROOT / "tenants" / "demo")
    assert demo.dbt.trino is not None
    assert demo.dbt.trino.user == "mozart_demo"
