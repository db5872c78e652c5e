"""Read mart rows from the tenant's warehouse (the DuckDB file dbt built).

Identifiers are quoted (`mozart_etl.core.identifiers`), the production day is
bound. The Trino target is not read yet: its marts live in the same Iceberg
catalog, but no Trino server runs where this was built to test a reader
against.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from types import TracebackType

import duckdb

from mozart_etl.config.constants import DbtTarget
from mozart_etl.config.models import TenantConfig
from mozart_etl.core.errors import PublishRejected
from mozart_etl.core.identifiers import qualified_name, quote_identifier

log = logging.getLogger(__name__)

BATCH_ROWS = 10_000
DAY_COLUMNS = ("work_date", "snapshot_date")


@dataclass(frozen=True, slots=True)
class MartColumn:
    name: str
    type: str
    """The warehouse's type name, upper case (DuckDB: `DECIMAL(14,2)`, …)."""


class MartReader:
    """A read-only connection to the tenant's warehouse for one publish."""

    def __init__(self, tenant: TenantConfig) -> None:
        if tenant.dbt.target != DbtTarget.DUCKDB or not tenant.dbt.duckdb_path:
            raise PublishRejected(
                f"publishing from the {tenant.dbt.target} target is not implemented "
                "yet (only the duckdb target is); run the tenant on duckdb or "
                "remove its `publish:` block",
                tenant=tenant.tenant_id,
            )
        self.tenant = tenant
        self.schema = tenant.namespace
        self._con = duckdb.connect(tenant.dbt.duckdb_path, read_only=True)
        self._con.execute("SET TimeZone = 'UTC'")
        # Qualified by the file's catalog too: a warehouse file named like the
        # schema (plant.duckdb holding schema plant) makes `plant.mart` ambiguous.
        (catalog,) = self._con.execute("SELECT current_database()").fetchone() or ("",)
        self._prefix = qualified_name(catalog, self.schema)

    def __enter__(self) -> MartReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._con.close()

    def columns(self, mart: str) -> list[MartColumn]:
        rows = self._con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [self.schema, mart],
        ).fetchall()
        if not rows:
            raise PublishRejected(
                f"mart {self.schema}.{mart} is not in the warehouse "
                f"{self.tenant.dbt.duckdb_path}",
                tenant=self.tenant.tenant_id,
                table=mart,
            )
        return [MartColumn(name, str(kind).upper()) for name, kind in rows]

    def count(
        self,
        mart: str,
        *,
        day_column: str | None = None,
        day: date | str | None = None,
    ) -> int:
        """The mart's rows (of `day` with a day column), for its Asset event."""
        sql = f"SELECT count(*) FROM {self._prefix}.{quote_identifier(mart)}"
        params: list[object] = []
        if day_column is not None:
            sql += f" WHERE {quote_identifier(day_column)} = ?"
            params.append(day)
        row = self._con.execute(sql, params).fetchone()
        assert row is not None
        return int(row[0])

    def rows(
        self,
        mart: str,
        columns: list[MartColumn],
        *,
        day_column: str | None = None,
        day: date | str | None = None,
    ) -> Iterator[tuple[object, ...]]:
        """The mart's rows (those of `day` when a day column is given), in batches."""
        names = ", ".join(quote_identifier(column.name) for column in columns)
        sql = f"SELECT {names} FROM {self._prefix}.{quote_identifier(mart)}"
        params: list[object] = []
        if day_column is not None:
            sql += f" WHERE {quote_identifier(day_column)} = ?"
            params.append(day)
        cursor = self._con.execute(sql, params)
        while batch := cursor.fetchmany(BATCH_ROWS):
            yield from batch


def day_column_of(
    mart: str, columns: list[MartColumn], configured: str | None, tenant_id: str
) -> str:
    """The mart's production-day column: configured, its only date column, or
    `work_date` / `snapshot_date`."""
    dates = [column.name for column in columns if column.type == "DATE"]
    if configured is not None:
        if configured not in dates:
            raise PublishRejected(
                f"day_column {configured!r} is not a date column of {mart} "
                f"(date columns: {dates})",
                tenant=tenant_id,
                table=mart,
            )
        return configured
    if len(dates) == 1:
        return dates[0]
    for name in DAY_COLUMNS:
        if name in dates:
            return name
    raise PublishRejected(
        f"cannot tell which column of {mart} holds the production day "
        f"(date columns: {dates}): set `day_column`, or publish it with mode full",
        tenant=tenant_id,
        table=mart,
    )
