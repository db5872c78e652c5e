"""What a run reads: from raw's committed high-water mark to the source's now.

Every run first brings raw up to date with the source, whatever production
day it computes: a table with a cursor is read from the greatest cursor raw
holds (less the table's `lookback_hours`, for rows committed late with an
older cursor) with no upper bound. The mark comes from committed raw data,
never from Airflow's state, so a killed first load, a pause, a cleared day and
a backfill in any order all converge on the same raw. A table raw does not
hold yet (missing, or created by an attempt that never committed) is read
whole; full-refresh tables are always read whole.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo
from pyiceberg.table import Table

from mozart_etl.calendar import instant_of
from mozart_etl.config.constants import LoadMode
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.extract.query import Window
from mozart_etl.load.versions import DELETED, VALID_FROM

log = logging.getLogger(__name__)


def sync_window(
    catalog: Catalog, tenant: TenantConfig, table: TableConfig
) -> Window | None:
    """The cursor range this run extracts; None reads the whole table."""
    if table.cursor is None or table.mode == LoadMode.FULL_REFRESH:
        return None
    mark = high_water_mark(catalog, tenant, table)
    if mark is None:
        log.info(
            "%s.%s: raw holds nothing yet: reading the whole table",
            tenant.tenant_id,
            table.name,
        )
        return None
    start = mark - timedelta(hours=table.lookback_hours)
    log.info(
        "%s.%s: raw's high-water mark %s; reading the source from %s on",
        tenant.tenant_id,
        table.name,
        mark.isoformat(),
        start.isoformat(),
    )
    return Window(start=start)


def high_water_mark(
    catalog: Catalog, tenant: TenantConfig, table: TableConfig
) -> datetime | None:
    """The latest instant a committed raw row was valid from (its cursor as a
    UTC instant); None when raw has no committed row."""
    identifier = (tenant.raw_namespace, table.name)
    if not catalog.table_exists(identifier):
        return None
    raw = catalog.load_table(identifier)
    if raw.current_snapshot() is None:
        return None
    assert table.cursor is not None
    if VALID_FROM in _names(raw):
        values = (
            raw.scan(row_filter=EqualTo(DELETED, False), selected_fields=(VALID_FROM,))
            .to_arrow()
            .column(VALID_FROM)
        )
        mark = pc.max(values).as_py()
        return mark
    # Plan runs keep their own columns only: their cursor is the mark.
    values = raw.scan(selected_fields=(table.cursor,)).to_arrow().column(table.cursor)
    latest = pc.max(values).as_py()
    if latest is None:
        return None
    kind = table.column(table.cursor).type
    return instant_of(latest, kind, tenant.source_zone(table))


def _names(raw: Table) -> set[str]:
    return {field.name for field in raw.schema().fields}
