"""Whether the source has shown any data for a production day yet.

Unpausing a tenant runs the latest complete day; if the source's data ends
before it (a plant whose MES feed stopped, a copy taken days ago), the marts
of that day describe nothing happening, and publishing them would replace the
APS's rows with empty ones. A day "has data" when raw holds a row whose
cursor is at or after the day's start: an event during the day, or any later
one (a day with no activity of its own, followed by activity, is a real quiet
day and is published). Tables without a cursor (full refresh) say nothing
about time and are not consulted; a tenant with no cursor at all always has
data, as nothing can tell.
"""

from __future__ import annotations

import logging
from datetime import datetime

from pyiceberg.catalog import Catalog

from mozart_etl.config.constants import LoadMode
from mozart_etl.config.models import TenantConfig
from mozart_etl.core.calendar import ProductionDay
from mozart_etl.pipeline.sync import high_water_mark

log = logging.getLogger(__name__)


def latest_source_instant(catalog: Catalog, tenant: TenantConfig) -> datetime | None:
    """The greatest cursor raw holds over the tenant's cursor tables (UTC);
    None when no such table holds a row."""
    marks = [
        high_water_mark(catalog, tenant, table)
        for table in tenant.tables
        if table.cursor is not None and table.mode != LoadMode.FULL_REFRESH
    ]
    known = [mark for mark in marks if mark is not None]
    return max(known) if known else None


def day_has_data(catalog: Catalog, tenant: TenantConfig, day: ProductionDay) -> bool:
    """True unless every cursor table's newest row is older than the day."""
    if not any(t.cursor for t in tenant.tables if t.mode != LoadMode.FULL_REFRESH):
        return True
    latest = latest_source_instant(catalog, tenant)
    has = latest is not None and latest >= day.start
    log.info(
        "tenant %s: the source's newest row is at %s; production day %s starts "
        "at %s: %s",
        tenant.tenant_id,
        latest.isoformat() if latest else "none",
        day.day,
        day.start.isoformat(),
        "data" if has else "no data for this day yet",
    )
    return has
