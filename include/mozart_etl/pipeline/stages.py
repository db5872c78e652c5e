"""A table's sync, stage by stage, without Airflow: extract, validate, load,
reconcile. Each stage takes the tenant, the table and what the stage before
it returned, ledgers what it did, and raises a `MozartError` that says
whether a retry can help; the Airflow layer (`factory/tasks.py`) only turns
them into tasks, and tests drive them directly (with a clock of their own:
`captured_at`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pyiceberg.catalog import Catalog

from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.calendar import ProductionDay
from mozart_etl.core.errors import MozartError, ValidationFailed
from mozart_etl.core.lake import ExtractManifest, Lake
from mozart_etl.extract.connectors import Connector
from mozart_etl.extract.extractor import extract_table
from mozart_etl.load.iceberg import LoadResult
from mozart_etl.load.ledger import (
    LedgerRecord,
    load_and_record,
    record_reconciliation,
    record_rejection,
    record_safely,
)
from mozart_etl.load.reconcile import ReconcileResult, mismatch_error, reconcile
from mozart_etl.pipeline.resume import RunMarkers
from mozart_etl.pipeline.sync import sync_window
from mozart_etl.transform.stage import TransformManifest, output_rows, read_manifest
from mozart_etl.transform.stage import run_transform as transform_rows
from mozart_etl.validate.validator import (
    ValidationReport,
    accepted_rows,
    quarantined_rows,
    validate_extract,
)

log = logging.getLogger(__name__)


def extract(
    tenant: TenantConfig,
    table: TableConfig,
    day: ProductionDay,
    connector: Connector,
    catalog: Catalog,
    *,
    captured_at: datetime | None = None,
) -> ExtractManifest:
    """Read what raw lacks: from raw's high-water mark to the source's now."""
    window = sync_window(catalog, tenant, table)
    return extract_table(
        tenant, table, day, connector, window=window, captured_at=captured_at
    )


def validate(
    tenant: TenantConfig,
    table: TableConfig,
    manifest: ExtractManifest,
    catalog: Catalog,
    *,
    run_id: str,
) -> ValidationReport:
    """The table's rules over the extract; a rejected extract is ledgered."""
    try:
        return validate_extract(tenant, table, manifest)
    except ValidationFailed as exc:
        record_rejection(
            lambda: catalog, tenant, table, manifest, run_id=run_id, error=exc
        )
        raise


def transform(
    tenant: TenantConfig,
    table: TableConfig,
    tenant_folder: Path,
    report: ValidationReport,
    *,
    run_id: str,
) -> TransformManifest:
    """The table's Python transform over the accepted rows (its own Parquet stage)."""
    return transform_rows(tenant, table, tenant_folder, report, run_id=run_id)


def load(
    tenant: TenantConfig,
    table: TableConfig,
    manifest: ExtractManifest,
    report: ValidationReport,
    catalog: Catalog,
    *,
    run_id: str,
    transformed_folder: str | None = None,
    write_record: bool = True,
) -> tuple[LoadResult, LedgerRecord]:
    """The versions raw lacks, in one commit; the ledger's `loaded` record
    (written now, or with `write_record=False` left to `check`)."""
    lake = Lake(tenant)
    refused = None
    if transformed_folder is None:
        rows = accepted_rows(lake, report)
        refused = quarantined_rows(lake, report, table)
    else:  # the run's transform manifest, as written last in its folder
        rows = output_rows(lake, read_manifest(lake, transformed_folder))
    return load_and_record(
        catalog,
        tenant,
        table,
        manifest,
        rows,
        run_id=run_id,
        quarantined=report.quarantined,
        accepted=report.accepted,
        refused=refused,
        write=write_record,
    )


def check(
    tenant: TenantConfig,
    table: TableConfig,
    manifest: ExtractManifest,
    report: ValidationReport,
    connector: Connector,
    catalog: Catalog,
    *,
    run_id: str,
    loaded: LedgerRecord | None = None,
) -> ReconcileResult:
    """Reconcile the sync with the source; ledger both sides' figures; raise
    `ReconcileMismatch` (terminal: a rerun alone does not fix it) naming what
    is missing or stale and the setting that fixes it.

    `loaded` is the load's record when the load ran in this process and left
    its write to this stage: one ledger commit for both (a commit per record
    was 40 % of a small table's sync). If the reconciliation itself fails, the
    `loaded` record is written before the error goes on, so the ledger still
    says what the load committed."""
    try:
        result = reconcile(
            tenant, table, manifest, report.quarantine_path, connector, catalog
        )
    except BaseException:
        if loaded is not None:
            record_safely(lambda: catalog, tenant, loaded, logged=True)
        raise
    error = None if result.matched else mismatch_error(result, manifest)
    record_reconciliation(
        catalog,
        tenant,
        table,
        manifest,
        run_id=run_id,
        figures={
            "source_rows": result.source_rows,
            "raw_rows": result.raw_rows + result.quarantined_rows,
            "source_sum": result.source_sum,
            "raw_sum": result.raw_sum,
        },
        matched=result.matched,
        error=error,
        loaded=loaded,
    )
    if error is not None:
        raise error
    return result


@dataclass(frozen=True)
class TableSync:
    """What each stage of one table's sync returned (the task's XCom)."""

    extract: ExtractManifest
    validate: ValidationReport
    transform: TransformManifest | None
    load: LoadResult
    ledger: LedgerRecord
    reconcile: ReconcileResult
    resumed: bool
    """The extract came from an earlier attempt of the run (the source was not
    read again)."""


def sync_table(
    tenant_folder: Path,
    tenant: TenantConfig,
    table: TableConfig,
    day: ProductionDay,
    connector: Connector,
    catalog: Catalog,
    *,
    run_id: str,
    captured_at: datetime | None = None,
    markers: RunMarkers | None = None,
) -> TableSync:
    """Every stage of one table in this process: what the DAG's table task
    runs (and tests and tools).

    With `markers`, a complete extract is remembered until the sync succeeds
    or fails for good, and an attempt that finds one resumes from it instead
    of reading the source again (pipeline/resume.py).
    """
    manifest = markers.complete_extract(table.name) if markers else None
    resumed = manifest is not None
    if manifest is not None:
        log.info(
            "tenant %s, table %s: resuming from extract %s of an earlier attempt "
            "(%d rows, complete); the source is not read again",
            tenant.tenant_id,
            table.name,
            manifest.extract_id,
            manifest.rows,
        )
    else:
        manifest = extract(
            tenant, table, day, connector, catalog, captured_at=captured_at
        )
        if markers is not None:
            markers.remember_extract(manifest)
    try:
        report = validate(tenant, table, manifest, catalog, run_id=run_id)
        transformed = None
        if table.transform is not None:
            transformed = transform(tenant, table, tenant_folder, report, run_id=run_id)
        loaded, record = load(
            tenant,
            table,
            manifest,
            report,
            catalog,
            run_id=run_id,
            transformed_folder=transformed.folder if transformed else None,
            write_record=False,
        )
        if markers is not None and loaded.rows_loaded:
            markers.raw_changed()
        reconciled = check(
            tenant,
            table,
            manifest,
            report,
            connector,
            catalog,
            run_id=run_id,
            loaded=record,
        )
    except MozartError as exc:
        if markers is not None and exc.terminal:  # a person fixes it, then reruns
            markers.forget(RunMarkers.extract_name(table.name))
        raise
    if markers is not None:
        markers.forget(RunMarkers.extract_name(table.name))
    return TableSync(manifest, report, transformed, loaded, record, reconciled, resumed)


def sync_run(
    tenant_folder: Path,
    tenant: TenantConfig,
    day: ProductionDay,
    connector: Connector,
    catalog: Catalog,
    *,
    run_id: str,
    captured_at: datetime | None = None,
    tables: list[str] | None = None,
) -> dict[str, ReconcileResult]:
    """A run's sync of every table (or of `tables`), one after the other."""
    return {
        table.name: sync_table(
            tenant_folder,
            tenant,
            table,
            day,
            connector,
            catalog,
            run_id=run_id,
            captured_at=captured_at,
        ).reconcile
        for table in tenant.tables
        if tables is None or table.name in tables
    }
