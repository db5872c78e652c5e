"""Run a tenant's Trino rendering on DuckDB: compile for the trino target,
transpile each model with sqlglot, execute it on the raw tables (a test aid).

There is no Trino on this machine. What can be checked here is the SQL dbt
renders for Trino, read with Trino's semantics by sqlglot and executed, model
after model in dependency order, by DuckDB on the same raw rows the DuckDB
target read. Where sqlglot leaves a Trino function to DuckDB's function of the
same name with another meaning, `TRINO_ONLY` rewrites it to what Trino
computes; a function it does not know fails the check instead of passing it.
"""

from __future__ import annotations

import json
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from mozart_etl.config.models import TenantConfig
from mozart_etl.dbt.render import OFFLINE_TRINO
from mozart_etl.dbt.runner import invoke_dbt


def _epoch_ms(instant: exp.Expression) -> exp.Expression:
    """Trino's `LongTimestampWithTimeZone.getEpochMillis()`: the instant's
    milliseconds since the epoch, sub-millisecond digits dropped (floor)."""
    micros = exp.Anonymous(this="epoch_us", expressions=[instant.copy()])
    return exp.cast(
        exp.Floor(this=exp.Div(this=micros, expression=exp.Literal.number(1000))),
        "BIGINT",
    )


def _to_milliseconds(node: exp.Expression) -> exp.Expression:
    """Trino's `to_milliseconds(a - b)` on two timestamps is `a`'s epoch
    milliseconds minus `b`'s (its interval day to second holds milliseconds,
    TimestampWithTimeZoneOperators.subtract); DuckDB's `to_milliseconds(x)`
    makes an interval *from* a number instead."""
    (argument,) = node.expressions
    while isinstance(argument, exp.Paren):
        argument = argument.this
    if not isinstance(argument, exp.Sub):
        raise NotImplementedError(f"to_milliseconds of {argument.sql('trino')}")
    return exp.Paren(
        this=exp.Sub(
            this=_epoch_ms(argument.this), expression=_epoch_ms(argument.expression)
        )
    )


def _with_timezone(node: exp.Expression) -> exp.Expression:
    """Trino's `with_timezone(ts, zone)`: the wall time `ts` in `zone` as an
    instant; DuckDB's `timezone(zone, ts)` on a timestamp without zone. In the
    hour a fall-back repeats, DuckDB (ICU) takes the later instant; Trino may
    take either, which mozart_core's source_instant is written not to depend
    on (it reads the wall time an hour earlier too and keeps the earlier)."""
    timestamp, zone = node.expressions
    return exp.Anonymous(this="timezone", expressions=[zone.copy(), timestamp.copy()])


TRINO_ONLY = {"to_milliseconds": _to_milliseconds, "with_timezone": _with_timezone}


def _unparen(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _zoned_casts(node: exp.Expression) -> exp.Expression:
    """Trino's `cast(instant at time zone z as timestamp|date)` is the wall
    time (or date) in `z`: DuckDB's `timezone(z, instant)` on a timestamp with
    time zone. A DuckDB TIMESTAMPTZ carries no zone of its own, so a zone that
    would reach a cast another way is refused rather than guessed."""
    if not isinstance(node, exp.Cast) or not node.to.is_type("timestamp", "date"):
        return node  # casts to an instant or a number read no zone
    inner = _unparen(node.this)
    if not isinstance(inner, exp.AtTimeZone):
        if any(_reaches(node, z) for z in inner.find_all(exp.AtTimeZone)):
            raise NotImplementedError(f"a zoned instant cast: {node.sql('trino')}")
        return node
    wall = exp.Anonymous(
        this="timezone", expressions=[inner.args["zone"].copy(), inner.this.copy()]
    )
    return exp.cast(wall, node.to.copy()) if node.to.is_type("date") else wall


def _reaches(cast: exp.Cast, zoned: exp.AtTimeZone) -> bool:
    """Whether a non-UTC zone reaches `cast` (no other cast in between)."""
    if zoned.args["zone"].name == "UTC":
        return False
    parent = zoned.parent
    while parent is not None and parent is not cast:
        if isinstance(parent, exp.Cast):
            return False
        parent = parent.parent
    return True


def _functions(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous) and str(node.this).lower() in TRINO_ONLY:
        return TRINO_ONLY[str(node.this).lower()](node)
    if isinstance(node, exp.AtTimeZone):
        # An instant `at time zone z` is the same instant in Trino (only a
        # later cast reads the zone, handled above).
        return node.this.copy().transform(_functions)
    return node


def to_duckdb(trino_sql: str) -> str:
    """One Trino statement as DuckDB SQL, Trino's meaning kept."""
    (statement,) = [s for s in sqlglot.parse(trino_sql, read="trino") if s is not None]
    statement = statement.transform(_zoned_casts).transform(_functions)
    return statement.sql(dialect="duckdb")


def compile_for_trino(
    folder: Path, tenant: TenantConfig, variables: dict[str, Any], out: Path
) -> dict[str, Any]:
    """dbt's manifest after `dbt compile --target trino` with the run's vars
    (no connection: --no-introspect, an unreachable port)."""
    args = [
        "compile",
        "--quiet",
        "--target",
        "trino",
        "--no-introspect",
        "--no-populate-cache",
        "--target-path",
        str(out),
        "--log-path",
        str(out / "logs"),
        "--vars",
        json.dumps(variables),
    ]
    invoke_dbt(
        folder, tenant, args, env={"MOZART_DBT_TARGET": "trino", **OFFLINE_TRINO}
    )
    return json.loads((out / "manifest.json").read_text())


def models_in_order(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The project's models, each after the models it reads."""
    nodes = {
        key: node
        for key, node in manifest["nodes"].items()
        if node["resource_type"] == "model"
    }
    graph = {
        key: [dep for dep in node["depends_on"]["nodes"] if dep in nodes]
        for key, node in nodes.items()
    }
    return [nodes[key] for key in TopologicalSorter(graph).static_order()]


def run_trino_models(
    manifest: dict[str, Any], raw: dict[str, pa.Table]
) -> duckdb.DuckDBPyConnection:
    """A DuckDB session laid out like the Trino catalog (`iceberg.<schema>`),
    the raw tables loaded, every model built from its transpiled SQL.

    The session's zone is UTC, as the stack's Trino server runs (the
    trinodb/trino image's JVM zone): Trino evaluates zone-less casts in it."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for source in manifest["sources"].values():
        database, schema = source["database"], source["schema"]
        if database not in {row[0] for row in con.execute("SHOW DATABASES").fetchall()}:
            con.execute(f"ATTACH ':memory:' AS {database}")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {database}.{schema}")
        con.register("raw_rows", raw[source["name"]])
        con.execute(f"CREATE TABLE {source['relation_name']} AS SELECT * FROM raw_rows")
        con.unregister("raw_rows")
    for model in models_in_order(manifest):
        con.execute(
            f"CREATE SCHEMA IF NOT EXISTS {model['database']}.{model['schema']}"
        )
        sql = to_duckdb(model["compiled_code"])
        try:
            con.execute(f"CREATE TABLE {model['relation_name']} AS {sql}")
        except duckdb.Error as error:
            raise AssertionError(f"{model['name']}: {error}\n{sql}") from error
    return con
