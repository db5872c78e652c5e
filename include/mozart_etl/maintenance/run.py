"""The maintenance steps over one tenant, and the report they leave in the lake.

Order (the DAG's tasks, and `maintain_tenant`): compact raw, expire snapshots,
compact the run ledger, sweep orphans. Compaction first, so the files it
replaced are in the snapshots expiry considers; the sweep last, so it removes
the files of everything expired (the ledger's included) once they are older
than its grace period.

The report goes to `<lake>/<prefix>/_maintenance/<UTC instant>.json`, next to
the run markers (`_runs/`), one file per maintenance run: per table the data
files and snapshots before and after, what was rewritten, expired and swept.
The run ledger keeps loads only: a maintenance record would have no production
day, extract or row counts, and `mozart report` shows the latest day's records.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.lake import Lake
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.ledger import LEDGER_TABLE, compact_ledger
from mozart_etl.maintenance.compact import TableCompaction, compact_table, data_files
from mozart_etl.maintenance.expire import TableExpiry, expire_table
from mozart_etl.maintenance.settings import MaintenanceSettings
from mozart_etl.ops.sweep import SweepResult, sweep_tenant

log = logging.getLogger(__name__)

REPORT_FOLDER = "_maintenance"


class LedgerCompaction(BaseModel):
    """The run ledger before and after its compaction."""

    model_config = ConfigDict(frozen=True)

    done: bool
    """False when a concurrent ledger write deferred it (the next write or run
    does it)."""
    files_before: int
    files_after: int
    snapshots_before: int
    snapshots_after: int


class MaintenanceReport(BaseModel):
    """One maintenance run of one tenant."""

    tenant_id: str
    started_at: datetime
    finished_at: datetime | None = None
    settings: MaintenanceSettings
    compaction: list[TableCompaction] = []
    expiry: list[TableExpiry] = []
    ledger: LedgerCompaction | None = None
    sweep: SweepResult | None = None


def raw_tables(catalog: Catalog, tenant: TenantConfig) -> list[tuple[str, Table]]:
    """The tenant's raw tables that exist (a table never loaded has none)."""
    found: list[tuple[str, Table]] = []
    for config in tenant.tables:
        try:
            found.append(
                (config.name, catalog.load_table((tenant.raw_namespace, config.name)))
            )
        except NoSuchTableError:
            log.info("%s.%s: not loaded yet", tenant.raw_namespace, config.name)
    return found


def compact_tenant(
    tenant: TenantConfig, settings: MaintenanceSettings
) -> list[TableCompaction]:
    catalog = open_catalog(tenant)
    return [
        compact_table(table, name, target_bytes=settings.target_file_bytes)
        for name, table in raw_tables(catalog, tenant)
    ]


def expire_tenant(
    tenant: TenantConfig, settings: MaintenanceSettings, now: datetime | None = None
) -> list[TableExpiry]:
    catalog = open_catalog(tenant)
    moment = now or datetime.now(UTC)
    return [
        expire_table(table, name, settings=settings, now=moment)
        for name, table in raw_tables(catalog, tenant)
    ]


def compact_tenant_ledger(tenant: TenantConfig) -> LedgerCompaction:
    catalog = open_catalog(tenant)
    identifier = (tenant.raw_namespace, LEDGER_TABLE)
    try:
        before = catalog.load_table(identifier)
    except NoSuchTableError:
        return LedgerCompaction(
            done=True, files_before=0, files_after=0, snapshots_before=0,
            snapshots_after=0,
        )  # fmt: skip
    done = compact_ledger(catalog, tenant)
    after = catalog.load_table(identifier)
    result = LedgerCompaction(
        done=done,
        files_before=data_files(before.current_snapshot()),
        files_after=data_files(after.current_snapshot()),
        snapshots_before=len(before.metadata.snapshots),
        snapshots_after=len(after.metadata.snapshots),
    )
    log.info(
        "run ledger %s.%s: %d -> %d data files, %d -> %d snapshots%s",
        *identifier,
        result.files_before,
        result.files_after,
        result.snapshots_before,
        result.snapshots_after,
        "" if done else " (deferred by a concurrent write)",
    )
    return result


def sweep_orphans(
    tenant: TenantConfig, settings: MaintenanceSettings, now: datetime | None = None
) -> SweepResult:
    """`mozart sweep` with the maintenance grace period."""
    return sweep_tenant(tenant, grace=settings.sweep_grace, now=now)


def maintain_tenant(
    tenant: TenantConfig,
    settings: MaintenanceSettings | None = None,
    *,
    now: datetime | None = None,
) -> MaintenanceReport:
    """Every step in the DAG's order, in one process (tests, a manual run)."""
    settings = settings or MaintenanceSettings.from_env()
    report = MaintenanceReport(
        tenant_id=tenant.tenant_id, started_at=datetime.now(UTC), settings=settings
    )
    report.compaction = compact_tenant(tenant, settings)
    report.expiry = expire_tenant(tenant, settings, now)
    report.ledger = compact_tenant_ledger(tenant)
    report.sweep = sweep_orphans(tenant, settings, now)
    report.finished_at = datetime.now(UTC)
    write_report(tenant, report)
    return report


def write_report(tenant: TenantConfig, report: MaintenanceReport) -> str:
    """The report as JSON in the tenant's lake; returns its path."""
    lake = Lake(tenant)
    folder = f"{lake.root}/{REPORT_FOLDER}"
    lake.make_dirs(folder)
    stamp = report.started_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = f"{folder}/{stamp}.json"
    lake.write_json(path, report.model_dump_json(indent=2))
    log.info("maintenance report of %s: %s", tenant.tenant_id, lake.uri(path))
    return path
