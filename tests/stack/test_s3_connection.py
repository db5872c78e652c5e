"""The lake through an Airflow AWS connection only: extract → raw → dbt on S3.

The local S3 server (moto's, as in test_s3_lake.py) checks every request's
signature against its IAM users here, so a request signed with any other key,
or unsigned, is refused: the rows can only have travelled with the keys of the
Airflow connection `AIRFLOW_CONN_MOZART_LAKE`, whose extra also gives the
endpoint and the region. tenant.yaml names the connection, nothing else; no
MOZART_S3_* nor AWS_* variable is set. dbt (DuckDB, the raw reader plugin)
reads raw through the same connection, resolved in its own process.
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
import duckdb
import pyarrow.fs as pafs
import pytest
import yaml
from moto import settings as moto_settings
from moto.server import ThreadedMotoServer

from mozart_etl.config.loader import load_tenant
from mozart_etl.core.lake import Lake, s3_access
from mozart_etl.dbt.runner import invoke_dbt
from mozart_etl.extract.extractor import extract_table
from mozart_etl.factory.connections import source_connector
from mozart_etl.load.catalog import catalog_properties, open_catalog
from mozart_etl.load.iceberg import AUDIT_COLUMNS, load_partition
from mozart_etl.validate.validator import accepted_rows, validate_extract
from tests.helpers import day_window, seoul_day, table_dict, utc, write_sqlite

BUCKET = "mozart-conn-lake"
REGION = "eu-central-1"  # the connection's; tenant.yaml's default is us-east-1
CONN_ID = "mozart_lake"
DAY = date(2026, 11, 15)
COLUMNS = [
    {"name": "lot_id", "type": "string", "nullable": False},
    {"name": "qty", "type": "bigint", "nullable": False},
    {"name": "amount", "type": "decimal", "precision": 10, "scale": 2},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]
SOURCE_DDL = (
    "CREATE TABLE lots (lot_id TEXT PRIMARY KEY, qty INTEGER NOT NULL, "
    "amount TEXT, updated_at TEXT NOT NULL)"
)
SOURCE_ROWS: list[dict[str, Any]] = [
    {
        "lot_id": "L-1",
        "qty": 25,
        "amount": Decimal("12.50"),
        "updated_at": utc(2026, 11, 14, 15),
    },
    {"lot_id": "L-2", "qty": 24, "amount": None, "updated_at": utc(2026, 11, 15, 9)},
    # Quarantined by the range rule: never in raw, never read by dbt.
    {"lot_id": "L-3", "qty": -1, "amount": None, "updated_at": utc(2026, 11, 15, 3)},
]
READ_MODEL = (
    "select lot_id, qty, amount from {{ source('raw', 'lots') }} order by lot_id"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def signed_s3() -> Iterator[tuple[str, str, str]]:
    """(endpoint, access key id, secret key) of a local S3 server that refuses
    any request not signed with that IAM user's key."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
    try:
        admin = {"endpoint_url": endpoint, "region_name": REGION}
        iam = boto3.client(
            "iam", aws_access_key_id="x", aws_secret_access_key="x", **admin
        )
        iam.create_user(UserName="mozart-lake")
        iam.put_user_policy(
            UserName="mozart-lake",
            PolicyName="lake",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                }
            ),
        )
        key = iam.create_access_key(UserName="mozart-lake")["AccessKey"]
        key_id, secret = key["AccessKeyId"], key["SecretAccessKey"]
        _s3(endpoint, key_id, secret).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # from now on: signed only
        yield endpoint, key_id, secret
    finally:
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = saved
        server.stop()


def _s3(endpoint: str, key_id: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


def _connection(endpoint: str, key_id: str, secret: str) -> str:
    return json.dumps(
        {
            "conn_type": "aws",
            "login": key_id,
            "password": secret,
            "extra": {"endpoint_url": endpoint, "region_name": REGION},
        }
    )


@pytest.fixture
def only_the_connection(
    signed_s3: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str, str]:
    """The environment holds the AWS connection and no other S3 setting."""
    import os

    for name in list(os.environ):
        if name.startswith(("MOZART_S3_", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")  # no profile either
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", _connection(*signed_s3))
    return signed_s3


def _tenant_folder(tmp_path: Path) -> Path:
    """A tenant whose YAML names the AWS connection and no endpoint or key,
    with a dbt project whose one model reads raw."""
    folder = tmp_path / "tenants" / "plant_s3"
    lots = table_dict(
        "lots",
        COLUMNS,
        primary_key=["lot_id"],
        mode="incremental",
        cursor="updated_at",
        rules=[{"type": "range", "column": "qty", "min": 0, "max_failures": 1}],
    )
    data = {
        "tenant_id": "plant_s3",
        "source": {"type": "sqlite", "database": str(tmp_path / "source.sqlite")},
        "storage": {"lake_root": f"s3://{BUCKET}/lake", "s3": {"aws_conn_id": CONN_ID}},
        "iceberg": {
            "catalog": {
                "type": "sql",
                "uri": f"sqlite:///{tmp_path / 'catalog.db'}",
                "warehouse": f"s3://{BUCKET}/warehouse",
            }
        },
        "dbt": {"duckdb_path": str(tmp_path / "marts.duckdb")},
        "schedule": {"timezone": "Asia/Seoul", "start_date": "2026-11-01"},
        "tables": [lots],
    }
    models = folder / "dbt" / "models"
    models.mkdir(parents=True)
    (folder / "tenant.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    (folder / "dbt" / "dbt_project.yml").write_text(
        "name: plant_s3\nversion: '0.1.0'\nconfig-version: 2\nprofile: mozart\n"
        "models:\n  plant_s3:\n    +materialized: table\n",
        encoding="utf-8",
    )
    sources = {
        "version": 2,
        "sources": [
            {
                "name": "raw",
                "schema": "plant_s3_raw",
                "meta": {"plugin": "iceberg"},
                "tables": [{"name": "lots"}],
            }
        ],
    }
    (models / "_sources.yml").write_text(yaml.safe_dump(sources), encoding="utf-8")
    (models / "lots_read.sql").write_text(READ_MODEL, encoding="utf-8")
    return folder


def test_extract_raw_and_dbt_through_the_aws_connection_only(
    tmp_path: Path,
    only_the_connection: tuple[str, str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint, key_id, secret = only_the_connection
    folder = _tenant_folder(tmp_path)
    tenant = load_tenant(folder)
    assert tenant.storage.s3 is not None
    assert (tenant.storage.s3.endpoint_url, tenant.storage.s3.access_key_id) == (
        None,
        None,
    )
    write_sqlite(tmp_path / "source.sqlite", SOURCE_DDL, "lots", SOURCE_ROWS)

    # What the connection gives: its keys, its extra's endpoint and region.
    access = s3_access(tenant)
    assert access is not None and access.secret_access_key is not None
    assert (access.endpoint_url, access.region) == (endpoint, REGION)
    assert access.access_key_id == key_id
    assert access.secret_access_key.get_secret_value() == secret
    properties = catalog_properties(tenant)
    assert properties["s3.endpoint"] == endpoint
    assert properties["s3.region"] == REGION
    assert properties["s3.access-key-id"] == key_id
    assert properties["s3.secret-access-key"] == secret
    lake = Lake(tenant)
    assert isinstance(lake.fs, pafs.S3FileSystem)
    assert lake.fs.region == REGION

    # extract → validate → load, on the signed-only server.
    table = tenant.table("lots")
    day = seoul_day(DAY)
    manifest = extract_table(
        tenant, table, day, source_connector(tenant), window=day_window(table, day)
    )
    report = validate_extract(tenant, table, manifest)
    catalog = open_catalog(tenant)
    rows = accepted_rows(lake, report)
    result = load_partition(catalog, tenant, table, manifest, rows, run_id="conn-run")
    assert (report.rows, report.accepted, report.quarantined) == (3, 2, 1)
    assert (result.rows_loaded, result.rows_in_table) == (2, 2)

    client = _s3(endpoint, key_id, secret)
    keys = sorted(
        item["Key"] for item in client.list_objects_v2(Bucket=BUCKET)["Contents"]
    )
    folder_key = f"lake/plant_s3/lots/day=2026-11-15/extract={manifest.extract_id}"
    assert f"{folder_key}/_manifest.json" in keys
    assert f"{folder_key}/part-00000.parquet" in keys
    assert any(k.startswith("warehouse/plant_s3_raw/lots/data/") for k in keys)
    raw = catalog.load_table(("plant_s3_raw", "lots")).scan().to_arrow()
    got = sorted(raw.drop_columns(list(AUDIT_COLUMNS)).to_pylist(), key=str)
    assert [(r["lot_id"], r["qty"], r["amount"]) for r in got] == [
        ("L-1", 25, Decimal("12.50")),
        ("L-2", 24, None),
    ]

    # dbt on DuckDB reads raw from S3 through the same connection.
    invoke_dbt(folder, tenant, ["build", "--quiet"])
    with duckdb.connect(str(tmp_path / "marts.duckdb")) as marts:
        read = marts.execute(
            "select lot_id, qty, amount from plant_s3.lots_read order by lot_id"
        ).fetchall()
    assert read == [("L-1", 25, Decimal("12.50")), ("L-2", 24, None)]

    # The secret key went nowhere else: not in logs, XCom payloads, the config.
    for payload in (manifest, report, result):
        assert secret not in payload.model_dump_json()
    assert secret not in caplog.text
    assert secret not in repr(tenant) and secret not in tenant.model_dump_json()
    assert secret not in repr(access)


def test_the_server_refuses_other_keys(
    tmp_path: Path,
    only_the_connection: tuple[str, str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check above proves the connection's keys only if another key is
    refused: the same connection with a wrong secret cannot list the bucket."""
    from airflow.sdk._shared.secrets_masker import redact

    endpoint, key_id, _ = only_the_connection
    wrong = "wrong-Secret-Of-The-Lake-55e1"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}", _connection(endpoint, key_id, wrong)
    )
    lake = Lake(load_tenant(_tenant_folder(tmp_path)))
    with pytest.raises(OSError, match="SIGNATURE_DOES_NOT_MATCH"):
        lake.fs.get_file_info(pafs.FileSelector(f"{BUCKET}/lake", recursive=True))
    # Resolving the connection registered the key with Airflow's log masker.
    assert wrong not in redact(f"x {wrong} y")


def test_a_missing_aws_connection_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mozart_etl.core.errors import ConfigError

    monkeypatch.delenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", raising=False)
    tenant = load_tenant(_tenant_folder(tmp_path))
    with pytest.raises(ConfigError, match="AIRFLOW_CONN_MOZART_LAKE") as caught:
        Lake(tenant)
    assert caught.value.terminal
