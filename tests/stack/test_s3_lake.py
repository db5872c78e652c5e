"""The S3 code path for real: extract → validate → load against a local S3 server.

moto's ThreadedMotoServer serves S3 over HTTP on 127.0.0.1 (a real endpoint,
no patched client). The lake root is `s3://<bucket>/<prefix>`; the Iceberg SQL
catalog keeps its metadata in a SQLite file and its data under
`s3://<bucket>/warehouse`. The secret key must never reach the logs nor the
dicts that go to XCom.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.lake import MANIFEST, Lake, latest_manifest
from mozart_etl.extract.connectors import Credentials, connector_for
from mozart_etl.extract.extractor import extract_table
from mozart_etl.load.catalog import catalog_properties, open_catalog
from mozart_etl.load.iceberg import AUDIT_COLUMNS, load_partition, raw_table_exists
from mozart_etl.load.versions import DELETED, VALID_FROM
from mozart_etl.validate.validator import (
    accepted_rows,
    read_accepted,
    validate_extract,
)
from tests.helpers import (
    day_window,
    seoul_day,
    table_dict,
    tenant_dict,
    utc,
    write_sqlite,
)

BUCKET = "mozart-lake"
PREFIX = "lake"
ACCESS_KEY = "mozart-test-access"
SECRET_KEY = "s3cr3t-Never-In-Logs-7f3a9c"
DAY = date(2026, 11, 15)

COLUMNS = [
    {"name": "lot_id", "type": "string", "nullable": False},
    {"name": "qty", "type": "bigint", "nullable": False},
    {"name": "amount", "type": "decimal", "precision": 10, "scale": 2},
    {"name": "ok", "type": "boolean"},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]
SOURCE_DDL = (
    "CREATE TABLE lots (lot_id TEXT PRIMARY KEY, qty INTEGER NOT NULL, "
    "amount TEXT, ok INTEGER, updated_at TEXT NOT NULL)"
)
# Production day 2026-11-15 in Seoul is [11-14 15:00, 11-15 15:00) UTC.
SOURCE_ROWS: list[dict[str, Any]] = [
    {
        "lot_id": "L-1",
        "qty": 25,
        "amount": Decimal("12.50"),
        "ok": True,
        "updated_at": utc(2026, 11, 14, 15, 0, 0),
    },
    {
        "lot_id": "L-2",
        "qty": 24,
        "amount": None,
        "ok": False,
        "updated_at": utc(2026, 11, 15, 14, 59, 59),
    },
    # Broken: quarantined by the range rule, never loaded.
    {
        "lot_id": "L-3",
        "qty": -1,
        "amount": Decimal("-0.01"),
        "ok": None,
        "updated_at": utc(2026, 11, 15, 3),
    },
    # Outside the day's window: not extracted by this incremental run.
    {
        "lot_id": "L-0",
        "qty": 20,
        "amount": Decimal("1.00"),
        "ok": True,
        "updated_at": utc(2026, 11, 14, 14, 59, 59),
    },
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A real S3 endpoint on 127.0.0.1 (moto's server), with an empty bucket."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def _client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def _s3_tenant(tmp_path: Path, endpoint: str) -> TenantConfig:
    lots = table_dict(
        "lots",
        COLUMNS,
        primary_key=["lot_id"],
        mode="incremental",
        cursor="updated_at",
        rules=[{"type": "range", "column": "qty", "min": 0, "max_failures": 1}],
    )
    data = tenant_dict(tmp_path, [lots], tenant_id="demo_s3")
    data["storage"] = {
        "lake_root": f"s3://{BUCKET}/{PREFIX}",
        "s3": {
            "endpoint_url": endpoint,
            "region": "us-east-1",
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
        },
    }
    data["iceberg"] = {
        "catalog": {
            "type": "sql",
            "uri": f"sqlite:///{tmp_path / 'catalog.db'}",
            "warehouse": f"s3://{BUCKET}/warehouse",
        }
    }
    return TenantConfig.model_validate(data, context={"base_dir": tmp_path})


def _keys(endpoint: str, prefix: str) -> list[str]:
    pages = _client(endpoint).get_paginator("list_objects_v2")
    return sorted(
        item["Key"]
        for page in pages.paginate(Bucket=BUCKET, Prefix=prefix)
        for item in page.get("Contents", [])
    )


def test_extract_validate_load_on_s3(
    tmp_path: Path, s3_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = _s3_tenant(tmp_path, s3_endpoint)
    table = tenant.table("lots")
    write_sqlite(tenant_source(tenant), SOURCE_DDL, "lots", SOURCE_ROWS)
    connector = connector_for(
        tenant.source.type, Credentials.from_settings(tenant.source)
    )
    catalog = open_catalog(tenant)
    assert not raw_table_exists(catalog, tenant, table)

    manifest = extract_table(
        tenant,
        table,
        seoul_day(DAY),
        connector,
        window=day_window(table, seoul_day(DAY)),
    )
    report = validate_extract(tenant, table, manifest)
    rows = accepted_rows(Lake(tenant), report)  # as the load task reads them
    result = load_partition(catalog, tenant, table, manifest, rows, run_id="s3-run")

    # The extract is in the bucket: Parquet part, manifest, validation outputs.
    folder = f"{PREFIX}/demo_s3/lots/day=2026-11-15/extract={manifest.extract_id}"
    assert manifest.folder == f"{BUCKET}/{folder}"
    lake_keys = _keys(s3_endpoint, f"{PREFIX}/")
    for name in (
        "part-00000.parquet",
        MANIFEST,
        "validated/quarantine.parquet",
        "validated/report.json",
    ):
        assert f"{folder}/{name}" in lake_keys, (name, lake_keys)
    assert not [key for key in lake_keys if key.endswith(".tmp")]
    assert f"{folder}/validated/accepted.parquet" not in lake_keys  # never copied
    stored = json.loads(
        _client(s3_endpoint)
        .get_object(Bucket=BUCKET, Key=f"{folder}/{MANIFEST}")["Body"]
        .read()
    )
    assert stored["extract_id"] == manifest.extract_id
    assert stored["rows"] == 3
    assert latest_manifest(Lake(tenant), "lots", DAY).extract_id == manifest.extract_id
    assert Lake(tenant).uri(manifest.folder) == f"s3://{BUCKET}/{folder}"

    # Validation on S3: one row quarantined, two accepted.
    assert (report.rows, report.accepted, report.quarantined) == (3, 2, 1)

    # The raw Iceberg table's data and metadata files are in the warehouse.
    warehouse_keys = _keys(s3_endpoint, "warehouse/")
    assert any(
        key.startswith("warehouse/demo_s3_raw/lots/data/") and key.endswith(".parquet")
        for key in warehouse_keys
    ), warehouse_keys
    assert any(key.endswith(".metadata.json") for key in warehouse_keys)
    iceberg_table = catalog.load_table(("demo_s3_raw", "lots"))
    assert (
        iceberg_table.metadata.location == f"s3://{BUCKET}/warehouse/demo_s3_raw/lots"
    )

    # Exact values of the raw table: each accepted row's first version.
    data = iceberg_table.scan().to_arrow()
    got = sorted(data.drop_columns(list(AUDIT_COLUMNS)).to_pylist(), key=_lot)
    versions = [
        {**row, VALID_FROM: row["updated_at"], DELETED: False}
        for row in SOURCE_ROWS[:2]
    ]
    assert got == versions
    assert set(data.column("_mozart_run_id").to_pylist()) == {"s3-run"}
    assert set(data.column("_mozart_partition").to_pylist()) == {"2026-11-15"}
    assert (result.rows_loaded, result.rows_in_table) == (2, 2)
    assert result.identifier == "demo_s3_raw.lots"

    # A rerun of the day on S3 adds no version: the same table.
    again = extract_table(
        tenant,
        table,
        seoul_day(DAY),
        connector,
        window=day_window(table, seoul_day(DAY)),
    )
    again_report = validate_extract(tenant, table, again)
    again_rows = read_accepted(Lake(tenant), again_report)
    rerun = load_partition(catalog, tenant, table, again, again_rows, run_id="rerun")
    data = catalog.load_table(("demo_s3_raw", "lots")).scan().to_arrow()
    got = sorted(data.drop_columns(list(AUDIT_COLUMNS)).to_pylist(), key=_lot)
    assert got == versions
    assert set(data.column("_mozart_run_id").to_pylist()) == {"s3-run"}
    assert (rerun.rows_loaded, rerun.rows_in_table) == (2, 2)
    assert latest_manifest(Lake(tenant), "lots", DAY).extract_id == again.extract_id

    # The secret never leaves the config: not in logs, nor in what goes to XCom.
    returned = [
        manifest.model_dump_json(),
        report.model_dump_json(),
        result.model_dump_json(),
        again.model_dump_json(),
        rerun.model_dump_json(),
        json.dumps(manifest.model_dump(mode="json")),
        json.dumps(report.model_dump(mode="json")),
        json.dumps(result.model_dump(mode="json")),
    ]
    for text in returned:
        assert SECRET_KEY not in text
    assert caplog.records, "expected the stages to log"
    for record in caplog.records:
        assert SECRET_KEY not in record.getMessage(), record.name
    assert SECRET_KEY not in caplog.text
    assert SECRET_KEY not in repr(tenant)
    assert SECRET_KEY not in tenant.model_dump_json()


def test_catalog_properties_carry_the_s3_settings(
    tmp_path: Path, s3_endpoint: str
) -> None:
    tenant = _s3_tenant(tmp_path, s3_endpoint)
    properties = catalog_properties(tenant)
    assert properties["warehouse"] == f"s3://{BUCKET}/warehouse"
    assert properties["s3.endpoint"] == s3_endpoint
    assert properties["s3.region"] == "us-east-1"
    assert properties["s3.access-key-id"] == ACCESS_KEY
    assert properties["s3.secret-access-key"] == SECRET_KEY


def tenant_source(tenant: TenantConfig) -> Path:
    return Path(tenant.source.database)


def _lot(row: dict[str, Any]) -> str:
    return str(row["lot_id"])


def test_tasks_register_the_lake_secret_key_with_the_masker(tmp_path: Path) -> None:
    """pyarrow and PyIceberg get the S3 secret key; should an error of theirs echo
    the request, Airflow's log masker must already know every form of it."""
    from airflow.sdk._shared.secrets_masker import redact

    from mozart_etl.core.credentials import secret_forms
    from mozart_etl.factory import tasks

    secret = "lake-Secret-Only-Here-91d2"
    data = tenant_dict(
        tmp_path,
        [table_dict("lots", COLUMNS, primary_key=["lot_id"])],
        tenant_id="masked",
    )
    data["storage"] = {
        "lake_root": f"s3://{BUCKET}/{PREFIX}",
        "s3": {"access_key_id": ACCESS_KEY, "secret_access_key": secret},
    }
    folder = tmp_path / "masked"
    folder.mkdir()
    (folder / "tenant.yaml").write_text(json.dumps(data), encoding="utf-8")
    forms = secret_forms(secret, user=ACCESS_KEY)
    assert all(form in redact(f"x {form} y") for form in forms)  # not known yet

    tenant = tasks.load_task_tenant(folder)

    assert tenant.storage.s3 is not None
    for form in forms:
        redacted = redact(f"x {form} y")
        assert form not in redacted and "***" in redacted, form
