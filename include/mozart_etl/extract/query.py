"""The SELECT an extract runs: quoted identifiers, bound values, nothing pasted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.sql import quoted_name

from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.calendar import cursor_bound
from mozart_etl.extract.connectors.base import Connector


class Window(BaseModel):
    """Cursor bounds `[start, end)` as UTC instants; `None` leaves a side open
    (a sync reads from raw's high-water mark to whatever the source holds)."""

    model_config = ConfigDict(frozen=True)

    start: datetime | None
    end: datetime | None = None


def _ident(name: str) -> quoted_name:
    return quoted_name(name, quote=True)


def build_select(
    table: TableConfig,
    connector: Connector,
    *,
    window: Window | None,
    params: dict[str, str | int],
    zone: str = "UTC",
    only: list[str] | None = None,
) -> sa.Select[*tuple[Any, ...]]:
    """The table's SELECT over `window`; `only` narrows the columns read (a key
    scan reads the key columns alone)."""
    columns: list[sa.ColumnClause[Any]] = [
        sa.column(_ident(column.name)) for column in table.columns
    ]
    ref = table.source
    source: sa.FromClause
    if ref.query is not None:
        source = sa.text(ref.query).columns(*columns).subquery("mozart_src")
    else:
        schema = _ident(ref.schema_) if ref.schema_ else None
        source = sa.table(_ident(ref.table), *columns, schema=schema)  # type: ignore[arg-type]
    names = only if only is not None else table.column_names
    select = sa.select(*(source.c[name] for name in names))
    if table.tenant_filter is not None:
        value = params[table.tenant_filter.param]
        select = select.where(
            source.c[table.tenant_filter.column] == sa.bindparam("tenant_value", value)
        )
    if window is not None and table.cursor is not None:
        in_window = _in_window(source, table, connector, window, zone)
        if table.snapshot_key is None:
            select = select.where(*in_window)
        else:  # every line of each run that has a line in the window
            key = source.c[table.snapshot_key]
            runs = sa.select(key).where(*in_window).correlate(None)
            select = select.where(key.in_(runs))
    return select


def tenant_select(
    tenant: TenantConfig,
    table: TableConfig,
    connector: Connector,
    *,
    window: Window | None,
    only: list[str] | None = None,
) -> sa.Select[*tuple[Any, ...]]:
    """`build_select` with the tenant's filter values and source zone."""
    return build_select(
        table,
        connector,
        window=window,
        params=tenant.params,
        zone=tenant.source_zone(table),
        only=only,
    )


def _in_window(
    source: sa.TableClause | sa.Subquery,
    table: TableConfig,
    connector: Connector,
    window: Window,
    zone: str,
) -> list[sa.ColumnElement[bool]]:
    assert table.cursor is not None
    cursor = source.c[table.cursor]
    kind = table.column(table.cursor).type
    conditions = []
    if window.start is not None:
        start = connector.bind_instant(cursor_bound(window.start, kind, zone))
        conditions.append(cursor >= sa.bindparam("window_start", start))
    if window.end is not None:
        end = connector.bind_instant(cursor_bound(window.end, kind, zone))
        conditions.append(cursor < sa.bindparam("window_end", end))
    return conditions
