"""Evaluate compiled checks over an extract in DuckDB, each by its strategy.

The extract is the view `extract_rows`. Row checks become one flag column
each in temp table `_mozart_flagged` (the rows that break any of them: their
position and their flags), from one scan of the extract:

- `RowPredicate`: its SQL over the row;
- `DuplicateKey`: two scans of the key columns only: an aggregate over a 64-bit
  hash of the key finds the candidate hashes (8 bytes per distinct key, not
  the key itself), then an exact aggregate over the few rows with those hashes
  keeps the keys that really repeat (NULLs hash and group alike);
- `BrokenKeys`: its query gives the broken rows' keys;

a keyed check's flag is a semi-join on the keys it found. Table aggregates are
one aggregate query. Each result is made by its check where its count is read
(`Evaluated`), and `in_rule_order` lists them as the rules were declared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

import duckdb

from mozart_etl.config.constants import Severity
from mozart_etl.core.errors import ConfigError
from mozart_etl.core.identifiers import quote_identifier
from mozart_etl.validate.rules.checks import (
    BrokenKeys,
    Check,
    DuplicateKey,
    Param,
    RowCheck,
    RowPredicate,
    RuleResult,
    TableAggregate,
)

FLAGGED = "_mozart_flagged"
REJECTED = "_mozart_rejected"


@dataclass(frozen=True)
class Evaluated:
    """A check and the result it gave."""

    check: Check
    result: RuleResult


@dataclass(frozen=True)
class Flag:
    """A row check's column of `_mozart_flagged`: TRUE on the rows it breaks."""

    check: RowCheck
    column: str
    sql: str
    """The flag's expression over an extract row (`r`)."""
    params: tuple[Param, ...] = ()

    @property
    def quoted(self) -> str:
        return quote_identifier(self.column)


def probe(
    con: duckdb.DuckDBPyConnection, checks: list[Check], *, tenant: str, table: str
) -> None:
    """Bind each predicate and aggregate alone, so a broken expression or
    pattern names its rule (a ConfigError: the tenant's rule, not the data, is
    wrong)."""
    for check in checks:
        if not isinstance(check, RowPredicate | TableAggregate):
            continue  # keyed checks are built from declared columns only
        try:
            con.execute(
                f"SELECT ({check.sql}) FROM extract_rows LIMIT 0", check.params
            ).fetchall()
        except duckdb.Error as exc:
            raise ConfigError(
                f"rule {check.name} ({check.kind}) does not run on the extract: {exc}",
                tenant=tenant,
                table=table,
                rule=check.name,
            ) from exc


def row_flags(con: duckdb.DuckDBPyConnection, checks: list[RowCheck]) -> list[Flag]:
    """Each row check's flag; keyed checks first find their broken keys (temp
    tables `<flag>_keys`)."""
    flags = []
    for i, check in enumerate(checks):
        column = f"_mozart_check_{i}"
        match check:
            case RowPredicate():
                sql = f"coalesce(({check.sql}), FALSE)"
                flag = Flag(check, column, sql, tuple(check.params))
            case DuplicateKey():
                query = _duplicate_keys(con, check.key, column)
                flag = Flag(check, column, _keyed(con, query, check.key, column))
            case BrokenKeys():
                flag = Flag(check, column, _keyed(con, check.sql, check.key, column))
            case _:
                assert_never(check)
        flags.append(flag)
    return flags


def _duplicate_keys(con: duckdb.DuckDBPyConnection, key: list[str], flag: str) -> str:
    """The query of the repeated `key` values (by hash first, see above)."""
    keys = ", ".join(quote_identifier(column) for column in key)
    hashes = quote_identifier(f"{flag}_hash")
    con.execute(
        f"CREATE TEMP TABLE {hashes} AS SELECT hash({keys}) AS h "
        "FROM extract_rows GROUP BY h HAVING count(*) > 1"
    )
    return (
        f"SELECT {keys} FROM extract_rows "
        f"WHERE hash({keys}) IN (SELECT h FROM {hashes}) "
        f"GROUP BY {keys} HAVING count(*) > 1"
    )


def _keyed(
    con: duckdb.DuckDBPyConnection, query: str, key: list[str], flag: str
) -> str:
    """The broken keys `query` gives, kept as a temp table; the flag matches a
    row's key against them (FALSE when there are none: no join at all)."""
    found = quote_identifier(f"{flag}_keys")
    con.execute(f"CREATE TEMP TABLE {found} AS {query}")
    ((count,),) = con.execute(f"SELECT count(*) FROM {found}").fetchall()
    if not count:
        return "FALSE"
    match = " AND ".join(
        f"d.{quote_identifier(c)} IS NOT DISTINCT FROM r.{quote_identifier(c)}"
        for c in key
    )
    return f"EXISTS (SELECT 1 FROM {found} AS d WHERE {match})"


def flag_rows(
    con: duckdb.DuckDBPyConnection,
    source: str,
    flags: list[Flag],
    *,
    position: str,
    position_columns: tuple[str, ...],
) -> None:
    """The rows that break any row check, as temp table `_mozart_flagged`:
    their `position_columns`, `position` (an expression with its alias) and a
    flag per check, from one scan of `source`."""
    columns = [
        *position_columns,
        position,
        *(f"{flag.sql} AS {flag.quoted}" for flag in flags),
    ]
    any_flag = " OR ".join(flag.quoted for flag in flags) or "FALSE"
    inner = f"SELECT {', '.join(columns)} FROM {source} AS r"
    con.execute(
        f"CREATE TEMP TABLE {FLAGGED} AS SELECT * FROM ({inner}) WHERE {any_flag}",
        [value for flag in flags for value in flag.params],
    )


def count_rows(
    con: duckdb.DuckDBPyConnection, flags: list[Flag], rows: int
) -> list[Evaluated]:
    """Each row check's result: its count of broken rows among `rows`."""
    if not flags:
        return []
    counts = [f"count(*) FILTER (WHERE {flag.quoted})" for flag in flags]
    (failed,) = con.execute(f"SELECT {', '.join(counts)} FROM {FLAGGED}").fetchall()
    return [
        Evaluated(flag.check, flag.check.result(int(count), rows))
        for flag, count in zip(flags, failed, strict=True)
    ]


def reject(
    con: duckdb.DuckDBPyConnection,
    flags: list[Flag],
    *,
    keep: tuple[str, ...],
    rules_column: str,
) -> int:
    """The rows an error check breaks, as temp table `_mozart_rejected`: their
    `keep` columns and the names of those checks (`rules_column`); how many."""
    errors = [flag for flag in flags if flag.check.severity == Severity.ERROR]
    names = ", ".join(f"CASE WHEN {flag.quoted} THEN ? END" for flag in errors)
    rejecting = " OR ".join(flag.quoted for flag in errors) or "FALSE"
    con.execute(
        f"CREATE TEMP TABLE {REJECTED} AS SELECT {', '.join(keep)}, "
        f"list_filter([{names}]::VARCHAR[], lambda name: name IS NOT NULL) "
        f"AS {quote_identifier(rules_column)} FROM {FLAGGED} WHERE {rejecting}",
        [flag.check.name for flag in errors],
    )
    ((quarantined,),) = con.execute(f"SELECT count(*) FROM {REJECTED}").fetchall()
    return int(quarantined)


def aggregate(
    con: duckdb.DuckDBPyConnection, checks: list[TableAggregate]
) -> list[Evaluated]:
    """Each table check's result (broken, and the value it observed), in one
    aggregate query over the extract."""
    if not checks:
        return []
    columns = [
        part
        for check in checks
        for part in (f"coalesce(({check.sql}), TRUE)", check.observed)
    ]
    params = [value for check in checks for value in check.params]
    (row,) = con.execute(
        f"SELECT {', '.join(columns)} FROM extract_rows", params
    ).fetchall()
    outcomes = zip(row[0::2], row[1::2], strict=True)
    return [
        Evaluated(check, check.result(bool(broken), observed))
        for check, (broken, observed) in zip(checks, outcomes, strict=True)
    ]


def in_rule_order(checks: list[Check], evaluated: list[Evaluated]) -> list[RuleResult]:
    """The results in the order of `checks` (rule order: the report, the
    quarantine's rule lists and a failure all list rules so). Checks hold lists,
    so they are told apart by identity, not hashed."""
    by_check = {id(outcome.check): outcome.result for outcome in evaluated}
    return [by_check[id(check)] for check in checks]
