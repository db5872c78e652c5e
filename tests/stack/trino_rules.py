"""Trino's file-based system access control, evaluated in Python (a test aid).

Hand-written because nothing on PyPI evaluates Trino's rules.json and there is
no Trino (nor a JVM) on this machine: this is a small, faithful transcription
of the decisions Trino 476 makes in
`lib/trino-plugin-toolkit/.../security/FileBasedSystemAccessControl.java`
(and `FileBasedSystemAccessControlModule`, `CatalogAccessControlRule`,
`CatalogSchemaAccessControlRule`, `CatalogTableAccessControlRule`), as its
documentation (security/file-system-access-control) describes them:

- every rule field is a Java regex matched against the *whole* name
  (`Pattern.matcher(x).matches()`, here `re.fullmatch`); a missing field
  matches anything (`.*`);
- each section (catalogs, schemas, tables) is read top to bottom and the first
  rule that matches decides; no match denies; a section that is absent allows
  everything;
- when a `catalogs` section exists, Trino appends `{"catalog": "system",
  "allow": "all"}` for every user after the file's own rules;
- catalog access `all` implies `read-only`; reading (SELECT) needs
  `read-only`, anything else `all`;
- `information_schema` is exempt from the table rules (only the catalog
  access applies); creating, dropping or renaming a schema needs the schema
  rule's `owner`, and a table's create, drop, rename and comment its
  `OWNERSHIP` privilege.

Roles and groups are not modelled: the stack's rules name users only, and a
rule with `role` or `group` makes this evaluator refuse to decide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

INFORMATION_SCHEMA = "information_schema"


class CatalogAccess(Enum):
    """A catalog rule's `allow` (`true`/`false` are legacy `all`/`none`)."""

    ALL = "all"
    READ_ONLY = "read-only"
    NONE = "none"

    @classmethod
    def parse(cls, value: object) -> CatalogAccess:
        if value is True:
            return cls.ALL
        if value is False:
            return cls.NONE
        return cls(str(value).lower())

    def implies(self, required: CatalogAccess) -> bool:
        return self == required or (
            self is CatalogAccess.ALL and required is CatalogAccess.READ_ONLY
        )


class Privilege(Enum):
    """Table privileges a table rule can grant."""

    SELECT = "SELECT"
    INSERT = "INSERT"
    DELETE = "DELETE"
    UPDATE = "UPDATE"
    OWNERSHIP = "OWNERSHIP"
    GRANT_SELECT = "GRANT_SELECT"


def _matches(rule: dict[str, Any], field: str, value: str) -> bool:
    pattern = rule.get(field)
    return pattern is None or re.fullmatch(pattern, value) is not None


def _user_matches(rule: dict[str, Any], user: str) -> bool:
    if "role" in rule or "group" in rule:
        raise NotImplementedError(f"role/group rules are not modelled: {rule}")
    return _matches(rule, "user", user)


@dataclass(frozen=True)
class Table:
    catalog: str
    schema: str
    table: str

    def __str__(self) -> str:
        return f"{self.catalog}.{self.schema}.{self.table}"


class FileBasedAccessControl:
    """The access decisions of one rules.json, for one user at a time."""

    def __init__(self, rules: dict[str, Any]) -> None:
        catalogs = rules.get("catalogs")
        if catalogs is None:
            self.catalog_rules: list[dict[str, Any]] = [{"allow": "all"}]
        else:  # the Module appends the system catalog for everyone
            self.catalog_rules = [*catalogs, {"catalog": "system", "allow": "all"}]
        self.schema_rules = rules.get("schemas", [{"owner": True}])
        self.table_rules = rules.get(
            "tables", [{"privileges": [p.value for p in Privilege]}]
        )

    # --- the Java class's private helpers --------------------------------------

    def can_access_catalog(
        self, user: str, catalog: str, required: CatalogAccess
    ) -> bool:
        for rule in self.catalog_rules:
            if _user_matches(rule, user) and _matches(rule, "catalog", catalog):
                return CatalogAccess.parse(rule.get("allow", "none")).implies(required)
        return False

    def is_schema_owner(self, user: str, catalog: str, schema: str) -> bool:
        if not self.can_access_catalog(user, catalog, CatalogAccess.ALL):
            return False
        for rule in self.schema_rules:
            if (
                _user_matches(rule, user)
                and _matches(rule, "catalog", catalog)
                and _matches(rule, "schema", schema)
            ):
                return bool(rule.get("owner", False))
        return False

    def _table_privileges(self, user: str, table: Table) -> set[Privilege] | None:
        """The first matching table rule's privileges (None: no rule matches)."""
        for rule in self.table_rules:
            if (
                _user_matches(rule, user)
                and _matches(rule, "catalog", table.catalog)
                and _matches(rule, "schema", table.schema)
                and _matches(rule, "table", table.table)
            ):
                return {Privilege(p) for p in rule.get("privileges", [])}
        return None

    def has_table_privilege(
        self, user: str, table: Table, privilege: Privilege
    ) -> bool:
        reading = privilege in (Privilege.SELECT, Privilege.GRANT_SELECT)
        required = CatalogAccess.READ_ONLY if reading else CatalogAccess.ALL
        if not self.can_access_catalog(user, table.catalog, required):
            return False
        if table.schema == INFORMATION_SCHEMA:
            return True
        privileges = self._table_privileges(user, table)
        return privileges is not None and privilege in privileges

    # --- the SystemAccessControl checks dbt's statements meet ------------------

    def can_select(self, user: str, table: Table) -> bool:
        """checkCanSelectFromColumns (no column restrictions in these rules)."""
        if not self.can_access_catalog(user, table.catalog, CatalogAccess.READ_ONLY):
            return False
        if table.schema == INFORMATION_SCHEMA:
            return True
        privileges = self._table_privileges(user, table)
        return privileges is not None and Privilege.SELECT in privileges

    def can_create_schema(self, user: str, catalog: str, schema: str) -> bool:
        return self.is_schema_owner(user, catalog, schema)

    def can_create_table(self, user: str, table: Table) -> bool:
        return self.has_table_privilege(user, table, Privilege.OWNERSHIP)

    can_drop_table = can_create_table
    can_comment_table = can_create_table

    def can_rename_table(self, user: str, table: Table, new: Table) -> bool:
        return self.can_create_table(user, table) and self.can_create_table(user, new)

    def can_insert(self, user: str, table: Table) -> bool:
        return self.has_table_privilege(user, table, Privilege.INSERT)

    def can_delete(self, user: str, table: Table) -> bool:
        return self.has_table_privilege(user, table, Privilege.DELETE)
