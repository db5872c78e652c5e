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

from mozart_etl.config.constants import LoadMode
from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.calendar import instant_of
from mozart_etl.extract.query import Window

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
    """The greatest cursor of raw's committed rows, as a UTC instant; None
    when raw has no committed row."""
    identifier = (tenant.raw_namespace, table.name)
    if not catalog.table_exists(identifier):
        return None
    raw = catalog.load_table(identifier)
    if raw.current_snapshot() is None:
        return None
    assert table.cursor is not None
    # The greatest cursor raw holds, read back as an instant: every raw row
    # carries the cursor the source gave it (a closing version too), and a
    # row the source left without one adds nothing to the mark.
    values = raw.scan(selected_fields=(table.cursor,)).to_arrow().column(table.cursor)
    latest = pc.max(values).as_py()
    if latest is None:
        return None
    kind = table.column(table.cursor).type
    return instant_of(latest, kind, tenant.source_zone(table))
