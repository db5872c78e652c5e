"""PostgreSQL through psycopg 3, with a COPY fast path (see pg_copy.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mozart_etl.config.constants import SourceType
from mozart_etl.extract.connectors.base import Connector

if TYPE_CHECKING:
    import pyarrow as pa


class PostgresConnector(Connector):
    source_type = SourceType.POSTGRESQL
    driver = "postgresql+psycopg"

    def url(self) -> sa.URL:
        return self._server_url()

    def driver_errors(self) -> tuple[type[Exception], ...]:
        import psycopg

        return (psycopg.Error,)

    def fast_batches(
        self,
        conn: sa.Connection,
        select: sa.Select[*tuple[Any, ...]],
        schema: pa.Schema,
    ) -> Iterator[pa.RecordBatch] | None:
        from mozart_etl.extract.connectors.pg_copy import copy_batches

        return copy_batches(conn, select, schema)
