"""Reclaim the files killed attempts leave behind.

A killed extract leaves Parquet parts in an extract folder without a manifest;
a killed (or refused) Iceberg commit leaves data and manifest files that no
snapshot references; an expired snapshot's files are unreferenced too. No
reader sees any of them (the current extract is the newest folder with a
manifest, Iceberg readers follow snapshots), so they cost only disk space.

`mozart sweep` removes them on demand, never inside a run, and only when every
file is older than a grace period (default a day), so an attempt that is still
writing is never swept from under itself. Written here because PyIceberg has no
orphan-file removal (Spark's `remove_orphan_files` procedure is the reference).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pyarrow.fs as pafs
from pydantic import BaseModel
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.lake import MANIFEST, Lake, filesystem_for
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.ledger import LEDGER_TABLE

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(days=1)
EXTRACT_FOLDER = "extract="


class SweepResult(BaseModel):
    tenant_id: str
    dry_run: bool
    lake_folders: list[str]
    """Extract folders without a manifest (removed with everything inside)."""
    lake_files: int
    iceberg_files: dict[str, list[str]]
    """Per raw table, its unreferenced data and manifest files."""

    @property
    def total_files(self) -> int:
        return self.lake_files + sum(map(len, self.iceberg_files.values()))


def sweep_tenant(
    tenant: TenantConfig,
    *,
    grace: timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    now: datetime | None = None,
) -> SweepResult:
    """Find (and unless `dry_run`, delete) the tenant's orphaned files older than
    `grace`."""
    cutoff = (now or datetime.now(UTC)) - grace
    folders, lake_files = _sweep_lake(Lake(tenant), cutoff, dry_run)
    catalog = open_catalog(tenant)
    iceberg: dict[str, list[str]] = {}
    for name in [table.name for table in tenant.tables] + [LEDGER_TABLE]:
        try:
            table = catalog.load_table((tenant.raw_namespace, name))
        except NoSuchTableError:
            continue
        orphans = _sweep_table(table, tenant, cutoff, dry_run)
        if orphans:
            iceberg[name] = orphans
    result = SweepResult(
        tenant_id=tenant.tenant_id,
        dry_run=dry_run,
        lake_folders=folders,
        lake_files=lake_files,
        iceberg_files=iceberg,
    )
    log.info(
        "tenant %s: %s %d orphaned files (%d extract folders, %d Iceberg files)",
        tenant.tenant_id,
        "would remove" if dry_run else "removed",
        result.total_files,
        len(folders),
        sum(map(len, iceberg.values())),
    )
    return result


def _sweep_lake(lake: Lake, cutoff: datetime, dry_run: bool) -> tuple[list[str], int]:
    """Extract folders that no manifest covers, every file older than `cutoff`.

    A folder is live when it holds a manifest or a manifest lists a file in it
    (a `snapshot` table's run folders: their manifest is in the day's folder).
    """
    selector = pafs.FileSelector(lake.root, recursive=True, allow_not_found=True)
    files_by_folder: dict[str, list[pafs.FileInfo]] = defaultdict(list)
    live: set[str] = set()
    for info in lake.fs.get_file_info(selector):
        folder = _extract_folder(info.path)
        if folder is None or info.type != pafs.FileType.File:
            continue
        files_by_folder[folder].append(info)
        if info.path == f"{folder}/{MANIFEST}":
            manifest = lake.read_manifest(info.path)
            live.add(folder)
            listed = (_extract_folder(file.path) for file in manifest.files)
            live.update(name for name in listed if name is not None)
    swept: list[str] = []
    count = 0
    for folder, files in sorted(files_by_folder.items()):
        if folder in live or not _all_older(files, cutoff):
            continue
        log.info("orphaned extract folder %s (%d files)", lake.uri(folder), len(files))
        if not dry_run:
            lake.fs.delete_dir(folder)
        swept.append(lake.uri(folder))
        count += len(files)
    return swept, count


def _extract_folder(path: str) -> str | None:
    """The `.../extract=<id>` folder holding `path`, if any."""
    parts = path.split("/")
    for index, part in enumerate(parts[:-1]):
        if part.startswith(EXTRACT_FOLDER):
            return "/".join(parts[: index + 1])
    return None


def _sweep_table(
    table: Table, tenant: TenantConfig, cutoff: datetime, dry_run: bool
) -> list[str]:
    """Files under the table's data and metadata folders that no snapshot (nor the
    current metadata) references, older than `cutoff`."""
    fs, location = filesystem_for(table.location(), tenant)
    referenced = referenced_files(table)
    orphans: list[str] = []
    for folder, suffixes in (("data", (".parquet",)), ("metadata", (".avro",))):
        selector = pafs.FileSelector(
            f"{location.rstrip('/')}/{folder}", recursive=True, allow_not_found=True
        )
        for info in fs.get_file_info(selector):
            if (
                info.type == pafs.FileType.File
                and info.path.endswith(suffixes)
                and info.path not in referenced
                and _all_older([info], cutoff)
            ):
                orphans.append(info.path)
    for path in orphans:
        log.info("orphaned Iceberg file %s", path)
        if not dry_run:
            fs.delete_file(path)
    return orphans


def referenced_files(table: Table) -> set[str]:
    """Every data file, manifest and manifest list of every live snapshot, as
    filesystem paths (no scheme)."""
    paths: list[str] = []
    if table.metadata.snapshots:
        paths += table.inspect.all_files().column("file_path").to_pylist()
        paths += table.inspect.all_manifests().column("path").to_pylist()
    paths += [snapshot.manifest_list for snapshot in table.metadata.snapshots]
    return set(_without_scheme(paths))


def _without_scheme(uris: Iterable[str]) -> Iterable[str]:
    for uri in uris:
        scheme, separator, rest = uri.partition("://")
        yield rest if separator else scheme


def _all_older(files: list[pafs.FileInfo], cutoff: datetime) -> bool:
    return all(info.mtime is not None and info.mtime < cutoff for info in files)
