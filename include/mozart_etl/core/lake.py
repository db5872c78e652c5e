"""The Parquet lake: where each extract lives, on a local folder or S3.

Layout, one immutable folder per extract attempt (the manifest is written
last, so a folder without one is an aborted attempt that nobody reads)::

    <lake_root>/<prefix>/<table>/day=<D>/extract=<extract_id>/
        part-00000.parquet …     rows as extracted
        _manifest.json           ExtractManifest: files, rows, schema, window
        validated/quarantine.parquet, report.json   (accepted = the parts less
                                                    the quarantined rows)

A `snapshot` table's rows are written per run instead (the manifest stays in
the day's extract folder and lists them), so each immutable run has its own
folder::

    <lake_root>/<prefix>/<table>/<snapshot_key>=<value>/extract=<extract_id>/
        part-00000.parquet
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlparse

import pyarrow.fs as pafs
from pydantic import BaseModel, ConfigDict

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.credentials import S3Access

log = logging.getLogger(__name__)

MANIFEST = "_manifest.json"


class ExtractedFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    rows: int
    bytes: int


class ExtractManifest(BaseModel):
    """What one extract wrote; the only way later stages find its files."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    table: str
    production_day: date
    extract_id: str
    folder: str
    window_start: datetime | None
    window_end: datetime | None
    rows: int
    files: list[ExtractedFile]
    columns: dict[str, str]
    captured_at: datetime | None = None
    """The instant the source was read as of (the sync's clock): the validity
    start of versions the source does not date itself (full-refresh rows,
    deletions found by a key scan). None in manifests of the earlier layout."""
    key_files: list[ExtractedFile] = []
    """`deletes: key_scan`: every key the source held when it was read."""
    source_columns: dict[str, str] | None = None
    """The source's own columns and portable types, read from its catalog at
    extract time (None when not introspected); schema-drift checks compare it."""
    started_at: datetime
    finished_at: datetime


class Lake:
    """A tenant's lake root on a pyarrow filesystem (one code path for local and S3)."""

    def __init__(self, tenant: TenantConfig) -> None:
        self.tenant = tenant
        self.fs, root = filesystem_for(tenant.storage.lake_root, tenant)
        self.root = f"{root.rstrip('/')}/{tenant.lake_prefix}"

    def day_folder(self, table: str, day: date) -> str:
        return f"{self.root}/{table}/day={day.isoformat()}"

    def extract_folder(self, table: str, day: date, extract_id: str) -> str:
        return f"{self.day_folder(table, day)}/extract={extract_id}"

    def run_folder(self, table: str, key: str, value: object, extract_id: str) -> str:
        """One immutable run of a snapshot table (the value URL-quoted)."""
        run = quote(str(value), safe="")
        return f"{self.root}/{table}/{key}={run}/extract={extract_id}"

    def write_json(self, path: str, payload: str) -> None:
        """Write a small JSON file so it appears whole (temp name, then move)."""
        temp = f"{path}.tmp"
        with self.fs.open_output_stream(temp) as stream:
            stream.write(payload.encode("utf-8"))
        self.fs.move(temp, path)

    def read_json(self, path: str) -> dict[str, Any]:
        with self.fs.open_input_stream(path) as stream:
            return json.loads(stream.read().decode("utf-8"))

    def make_dirs(self, path: str) -> None:
        self.fs.create_dir(path, recursive=True)

    def write_manifest(self, manifest: ExtractManifest) -> str:
        path = f"{manifest.folder}/{MANIFEST}"
        self.write_json(path, manifest.model_dump_json(indent=2))
        return path

    def read_manifest(self, path: str) -> ExtractManifest:
        return ExtractManifest.model_validate(self.read_json(path))

    def uri(self, path: str) -> str:
        """A path as a user would paste it (for logs and the demo summary)."""
        if isinstance(self.fs, pafs.S3FileSystem):
            return f"s3://{path}"
        return path


def filesystem_for(root: str, tenant: TenantConfig) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem for `root` (a local path, `file://` or `s3://` URI,
    S3 with the tenant's endpoint and keys) and `root` as a path on it."""
    parsed = urlparse(root)
    if parsed.scheme == "s3":
        access = s3_access(tenant)
        options = access.pyarrow_options() if access is not None else {}
        return pafs.S3FileSystem(**options), f"{parsed.netloc}{parsed.path}"
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"unsupported lake_root scheme {parsed.scheme!r}")
    local = parsed.path if parsed.scheme == "file" else root
    return pafs.LocalFileSystem(), local


def s3_access(tenant: TenantConfig) -> S3Access | None:
    """The lake's object store settings (None: no `storage.s3` block).

    With `storage.s3.aws_conn_id`, from that Airflow AWS connection, read
    when a task (or a `mozart` command) opens the lake, not at DAG parse,
    and read each time: a rotated key is used by the next task without a
    restart. The resolver lives with the other Airflow connections
    (factory/connections.py) and is imported only on this path, so the
    stages stay free of Airflow where no connection is named."""
    s3 = tenant.storage.s3
    if s3 is None:
        return None
    if s3.aws_conn_id:
        from mozart_etl.factory.connections import aws_s3_access

        return aws_s3_access(s3, tenant=tenant.tenant_id)
    return S3Access(
        endpoint_url=s3.endpoint_url,
        region=s3.region,
        access_key_id=s3.access_key_id,
        secret_access_key=s3.secret_access_key,
    )


def latest_manifest(lake: Lake, table: str, day: date) -> ExtractManifest:
    """The newest complete extract of a table's day (folders without a manifest are
    aborted attempts and are ignored)."""
    selector = pafs.FileSelector(lake.day_folder(table, day), allow_not_found=True)
    folders = sorted(
        info.path
        for info in lake.fs.get_file_info(selector)
        if info.type == pafs.FileType.Directory
        and lake.fs.get_file_info(f"{info.path}/{MANIFEST}").type == pafs.FileType.File
    )
    if not folders:
        raise FileNotFoundError(f"no complete extract of {table} for {day}")
    return lake.read_manifest(f"{folders[-1]}/{MANIFEST}")
