"""Every statement dbt-trino 1.11 issues for a tenant is allowed by the stack's
Trino rules (stack/trino/rules.json) for the tenant's own user, and denied for
another tenant's user.

The statements are the shapes of dbt-trino's macros (dbt/include/trino/macros:
adapters.sql, materializations/table.sql and incremental.sql) for this
project's models: listing relations before every command (information_schema
joined with `system.metadata.materialized_views`), listing schemas, reading a
relation's columns, `create schema if not exists`, a staging table built as
`__dbt_tmp` then renamed over the old one (`on_table_exists: rename`), a mart
rebuilt for its day (the `replace_production_day` pre-hook's delete, then an
insert from a `__dbt_tmp` table), and the data tests' selects. The rules are
evaluated by tests/stack/trino_rules.py, a transcription of Trino's
file-based access control (no Trino runs here).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mozart_etl.config.models import TenantConfig
from tests.stack.test_compose import _env_example, _stack_tenant, _substitute
from tests.stack.trino_rules import FileBasedAccessControl, Table

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "stack" / "trino" / "rules.json"
COMPOSE = ROOT / "docker-compose.yaml"
STACK_TENANTS = ("demo", "acme")

Check = Callable[[FileBasedAccessControl, str], bool]


@dataclass(frozen=True)
class Statement:
    """One statement dbt-trino sends, and the access checks Trino makes for it."""

    sql: str
    checks: tuple[Check, ...]

    def allowed(self, access: FileBasedAccessControl, user: str) -> bool:
        return all(check(access, user) for check in self.checks)


def _select(table: Table) -> Check:
    return lambda access, user: access.can_select(user, table)


def _create(table: Table) -> Check:
    return lambda access, user: access.can_create_table(user, table)


def _drop(table: Table) -> Check:
    return lambda access, user: access.can_drop_table(user, table)


def _rename(table: Table, new: Table) -> Check:
    return lambda access, user: access.can_rename_table(user, table, new)


def _insert(table: Table) -> Check:
    return lambda access, user: access.can_insert(user, table)


def _delete(table: Table) -> Check:
    return lambda access, user: access.can_delete(user, table)


def _create_schema(catalog: str, schema: str) -> Check:
    return lambda access, user: access.can_create_schema(user, catalog, schema)


def _models(tenant_id: str, layer: str) -> list[str]:
    folder = ROOT / "tenants" / tenant_id / "dbt" / "models" / layer
    return sorted(path.stem for path in folder.glob("*.sql"))


def dbt_statements(tenant: TenantConfig) -> Iterator[Statement]:
    """What `dbt build` of the staging and mart layers sends to Trino."""
    assert tenant.dbt.trino is not None
    catalog, schema = tenant.dbt.trino.catalog, tenant.namespace
    info = "information_schema"

    def own(name: str) -> Table:
        return Table(catalog, schema, name)

    yield Statement(
        f"select … from {catalog}.{info}.tables t left join (select * from "
        f"system.metadata.materialized_views where catalog_name = '{catalog}' "
        f"and schema_name = '{schema}') mv on …",
        (
            _select(Table(catalog, info, "tables")),
            _select(Table("system", "metadata", "materialized_views")),
        ),
    )
    yield Statement(
        f"select schema_name from {catalog}.{info}.schemata",
        (_select(Table(catalog, info, "schemata")),),
    )
    yield Statement(
        f"select column_name, data_type from {catalog}.{info}.columns where …",
        (_select(Table(catalog, info, "columns")),),
    )
    yield Statement(
        f"create schema if not exists {catalog}.{schema}",
        (_create_schema(catalog, schema),),
    )
    raw = [Table(catalog, tenant.raw_namespace, t.name) for t in tenant.tables]
    for model in _models(tenant.tenant_id, "staging"):
        tmp, backup = own(f"{model}__dbt_tmp"), own(f"{model}__dbt_backup")
        yield Statement(
            f"create table {tmp} as select … from {tenant.raw_namespace}.*",
            (_create(tmp), *(_select(table) for table in raw)),
        )
        yield Statement(
            f"alter table {own(model)} rename to {backup}",
            (_rename(own(model), backup),),
        )
        yield Statement(
            f"alter table {tmp} rename to {own(model)}", (_rename(tmp, own(model)),)
        )
        yield Statement(f"drop table if exists {backup}", (_drop(backup),))
        yield Statement(
            f"select … from {own(model)} (data tests)", (_select(own(model)),)
        )
    staging = [own(model) for model in _models(tenant.tenant_id, "staging")]
    for model in _models(tenant.tenant_id, "marts"):
        mart, tmp = own(model), own(f"{model}__dbt_tmp")
        yield Statement(
            f"create table {mart} (…) (first run, contract)", (_create(mart),)
        )
        yield Statement(
            f"delete from {mart} where … = <production day>", (_delete(mart),)
        )
        yield Statement(
            f"create table {tmp} as select … from {schema}.stg_*",
            (_create(tmp), *(_select(table) for table in staging)),
        )
        yield Statement(
            f"insert into {mart} (…) select … from {tmp}", (_insert(mart), _select(tmp))
        )
        yield Statement(f"drop table if exists {tmp}", (_drop(tmp),))
        yield Statement(f"select … from {mart} (data tests)", (_select(mart),))


def _rules() -> dict[str, Any]:
    return json.loads(RULES.read_text())


@pytest.fixture(scope="module")
def tenants() -> dict[str, TenantConfig]:
    """The stack's tenants as its Airflow services load them."""
    resolved = yaml.safe_load(_substitute(COMPOSE.read_text(), _env_example()))
    with pytest.MonkeyPatch.context() as monkeypatch:
        return {
            tenant_id: _stack_tenant(resolved, monkeypatch, tenant_id)
            for tenant_id in STACK_TENANTS
        }


def _user(tenant: TenantConfig) -> str:
    assert tenant.dbt.trino is not None
    return tenant.dbt.trino.user


def _denied(
    access: FileBasedAccessControl, tenant: TenantConfig, user: str
) -> list[str]:
    return [s.sql for s in dbt_statements(tenant) if not s.allowed(access, user)]


@pytest.mark.parametrize("tenant_id", STACK_TENANTS)
def test_dbt_statements_are_allowed_for_the_tenants_own_user(
    tenants: dict[str, TenantConfig], tenant_id: str
) -> None:
    tenant = tenants[tenant_id]
    assert tenant.dbt.target == "trino"
    assert _user(tenant) == f"mozart_{tenant_id}"
    statements = list(dbt_statements(tenant))
    assert len(statements) > 40  # every model's statements, not a stray few
    assert _denied(FileBasedAccessControl(_rules()), tenant, _user(tenant)) == []


@pytest.mark.parametrize("tenant_id", STACK_TENANTS)
def test_another_tenants_user_is_denied_every_write_and_read(
    tenants: dict[str, TenantConfig], tenant_id: str
) -> None:
    """Only the catalog-wide listings (whose rows Trino filters per user) are
    shared; every statement that touches the tenant's tables is refused."""
    tenant = tenants[tenant_id]
    access = FileBasedAccessControl(_rules())
    statements = list(dbt_statements(tenant))
    touching = [s for s in statements if "information_schema" not in s.sql]
    assert len(touching) == len(statements) - 3
    for other_id, other in tenants.items():
        if other_id != tenant_id:
            allowed = [s.sql for s in touching if s.allowed(access, _user(other))]
            assert allowed == [], (other_id, allowed)
    for stranger in ("mozart", "someone_else", f"mozart_{tenant_id}2", "admin"):
        assert len(_denied(access, tenant, stranger)) == len(statements), stranger


def test_system_metadata_is_read_only_and_nothing_else_of_system() -> None:
    access = FileBasedAccessControl(_rules())
    views = Table("system", "metadata", "materialized_views")
    assert access.can_select("mozart_demo", views)
    assert not access.can_insert("mozart_demo", views)
    assert not access.can_select("mozart_demo", Table("system", "runtime", "queries"))
    # Raw is read by dbt, written only by the loads (PyIceberg): read-only here.
    raw = Table("iceberg", "demo_raw", "lot_history")
    assert access.can_select("mozart_demo", raw)
    assert not access.can_delete("mozart_demo", raw)
    assert not access.can_create_table("mozart_demo", raw)
    # The APS PostgreSQL catalog is no tenant user's.
    assert not access.can_select("mozart_demo", Table("postgresql", "demo", "mart_wip"))


@pytest.mark.parametrize(
    ("name", "section", "edit", "denied_fragment"),
    [
        (
            "no system metadata",
            "tables",
            lambda r: r["catalog"] == "system" and r.update(privileges=[]),
            "materialized_views",
        ),
        (
            "marts schema not owned",
            "schemas",
            lambda r: r.update(owner=False),
            "create schema",
        ),
        (
            "no delete on the marts",
            "tables",
            lambda r: (
                r.get("schema") == "demo"
                and r.update(privileges=["SELECT", "INSERT", "OWNERSHIP"])
            ),
            "delete from",
        ),
        (
            "catalog read-only",
            "catalogs",
            lambda r: r["catalog"] == "iceberg" and r.update(allow="read-only"),
            "create table",
        ),
        (
            "raw unreadable",
            "tables",
            lambda r: r.get("schema") == "demo_raw" and r.update(schema="demo_raw_x"),
            "from demo_raw",
        ),
    ],
)
def test_a_rule_broken_on_purpose_denies_dbt(
    tenants: dict[str, TenantConfig],
    name: str,
    section: str,
    edit: Callable[[dict[str, Any]], object],
    denied_fragment: str,
) -> None:
    """The check can fail: each broken rule denies the statements it guarded."""
    rules = _rules()
    broken = copy.deepcopy(rules)
    hits = [
        rule
        for rule in broken[section]
        if rule.get("user") == "mozart_demo" and edit(rule) is None
    ]
    assert hits, f"{name}: the rule to break was not found"
    assert broken != rules
    denied = _denied(FileBasedAccessControl(broken), tenants["demo"], "mozart_demo")
    assert denied, name
    assert any(denied_fragment in sql for sql in denied), (name, denied)
    # acme's own rules are untouched: its statements still pass.
    assert _denied(FileBasedAccessControl(broken), tenants["acme"], "mozart_acme") == []


def test_rule_order_decides_first_match_wins() -> None:
    """A deny placed before the tenant's grant wins, as in Trino."""
    rules = _rules()
    rules["tables"].insert(
        0, {"user": "mozart_demo", "schema": "demo", "privileges": []}
    )
    access = FileBasedAccessControl(rules)
    assert not access.can_select("mozart_demo", Table("iceberg", "demo", "mart_wip"))
    assert access.can_select("mozart_demo", Table("iceberg", "demo_raw", "lot_history"))
