"""Schema drift on hand-built extracts: against the declaration, the source's own
columns and the previous extract; added columns under both policies, dropped and
retyped columns always blocking."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.errors import ValidationFailed
from mozart_etl.core.lake import ExtractManifest, Lake
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.iceberg import load_partition
from mozart_etl.validate.drift import converts, previous_manifest, promotes
from mozart_etl.validate.validator import (
    ValidationReport,
    read_accepted,
    validate_extract,
)
from tests.helpers import Row, make_tenant, seoul_day, table_dict, write_extract

DAY = seoul_day(date(2026, 11, 15))
FIRST = "20261115T010000000000Z-aaaa0001"
SECOND = "20261115T020000000000Z-aaaa0002"

COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "qty", "type": "bigint"},
    {"name": "amount", "type": "decimal", "precision": 10, "scale": 2},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]
SOURCE = {
    "id": "bigint",
    "qty": "bigint",
    "amount": "decimal(10,2)",
    "updated_at": "timestamptz",
}


def _table(
    tmp_path: Path,
    *,
    drift: str = "evolve",
    columns: list[dict[str, Any]] | None = None,
) -> tuple[TenantConfig, TableConfig]:
    lots = table_dict("lots", columns or COLUMNS, drift=drift)
    tenant = make_tenant(tmp_path, [lots])
    return tenant, tenant.table("lots")


def _rows(table: TableConfig) -> list[Row]:
    """Two valid rows: an id and a time, every other column NULL."""
    values = {"updated_at": DAY.start}
    return [
        {name: i if name == "id" else values.get(name) for name in table.column_names}
        for i in (1, 2)
    ]


def _extract(
    tenant: TenantConfig,
    table: TableConfig,
    *,
    extract_id: str = SECOND,
    source: dict[str, str] | None = None,
    day: date = DAY.day,
) -> ExtractManifest:
    """A Parquet extract of `table`'s declared columns; `source` as if introspected."""
    manifest = write_extract(
        tenant, table, _rows(table), seoul_day(day), extract_id=extract_id
    )
    if source is not None:
        manifest = manifest.model_copy(update={"source_columns": source})
        Lake(tenant).write_manifest(manifest)
    return manifest


def _validate(
    tenant: TenantConfig, table: TableConfig, manifest: ExtractManifest
) -> tuple[ValidationReport, ValidationFailed | None]:
    error = None
    try:
        validate_extract(tenant, table, manifest)
    except ValidationFailed as exc:
        error = exc
    path = Path(manifest.folder) / "validated" / "report.json"
    return ValidationReport.model_validate_json(path.read_text("utf-8")), error


def _drift(report: ValidationReport) -> list[tuple[Any, ...]]:
    return [
        (d.column, d.kind, d.baseline, d.side, d.expected, d.found, d.blocking)
        for d in report.drift
    ]


# --- against the declaration and the source --------------------------------------


def test_no_drift_without_source_columns_or_previous_extract(tmp_path: Path) -> None:
    tenant, table = _table(tmp_path)

    report, error = _validate(tenant, table, _extract(tenant, table))

    assert error is None
    assert report.drift == []


def test_matching_source_has_no_drift(tmp_path: Path) -> None:
    tenant, table = _table(tmp_path)

    report, error = _validate(tenant, table, _extract(tenant, table, source=SOURCE))

    assert (report.drift, error) == ([], None)


def test_added_source_column_under_evolve_is_reported(tmp_path: Path) -> None:
    tenant, table = _table(tmp_path, drift="evolve")
    source = {**SOURCE, "operator": "string"}

    report, error = _validate(tenant, table, _extract(tenant, table, source=source))

    assert error is None
    assert _drift(report) == [
        ("operator", "added", "declared", "source", None, "string", False)
    ]
    assert report.accepted == 2


def test_added_source_column_under_fail_stops_naming_it(tmp_path: Path) -> None:
    tenant, table = _table(tmp_path, drift="fail")
    source = {**SOURCE, "operator": "string"}

    report, error = _validate(tenant, table, _extract(tenant, table, source=source))

    assert _drift(report) == [
        ("operator", "added", "declared", "source", None, "string", True)
    ]
    assert error is not None
    assert str(error).startswith("[tenant=acme table=lots column=operator] ")
    assert (
        "schema drift (column 'operator' (string) added in the source, not in the "
        "declared columns); nothing was loaded"
    ) in str(error)


@pytest.mark.parametrize("policy", ["evolve", "fail"])
def test_dropped_source_column_always_stops(tmp_path: Path, policy: str) -> None:
    tenant, table = _table(tmp_path, drift=policy)
    source = {k: v for k, v in SOURCE.items() if k != "qty"}

    report, error = _validate(tenant, table, _extract(tenant, table, source=source))

    assert _drift(report) == [
        ("qty", "dropped", "declared", "source", "bigint", None, True)
    ]
    assert error is not None
    assert "column 'qty' dropped: declared bigint, missing from the source" in str(
        error
    )


@pytest.mark.parametrize("policy", ["evolve", "fail"])
def test_retyped_source_column_always_stops_naming_both_types(
    tmp_path: Path, policy: str
) -> None:
    tenant, table = _table(tmp_path, drift=policy)
    source = {**SOURCE, "qty": "timestamptz", "amount": "boolean"}

    report, error = _validate(tenant, table, _extract(tenant, table, source=source))

    assert _drift(report) == [
        ("qty", "retyped", "declared", "source", "bigint", "timestamptz", True),
        ("amount", "retyped", "declared", "source", "decimal(10,2)", "boolean", True),
    ]
    assert error is not None
    message = str(error)
    assert "column 'qty' retyped: declared bigint, source timestamptz" in message
    assert "column 'amount' retyped: declared decimal(10,2), source boolean" in message


def test_source_types_the_extractor_converts_are_not_drift(tmp_path: Path) -> None:
    """SQLite keeps instants and decimals as text; integers widen."""
    tenant, table = _table(tmp_path)
    source = {"id": "int", "qty": "int", "amount": "string", "updated_at": "string"}

    report, error = _validate(tenant, table, _extract(tenant, table, source=source))

    assert (report.drift, error) == ([], None)


def test_extract_carrying_an_undeclared_column(tmp_path: Path) -> None:
    """An extract whose Parquet has an extra column: evolve passes it on to the
    accepted file and the load adds it to the raw table; fail stops."""
    wide = [*COLUMNS, {"name": "operator", "type": "string"}]
    writer_tenant, writer_table = _table(tmp_path, columns=wide)
    tenant, table = _table(tmp_path, drift="evolve")
    manifest = write_extract(
        writer_tenant,
        writer_table,
        [{"id": 1, "operator": "kim", "updated_at": DAY.start}],
        DAY,
        extract_id=SECOND,
    )

    report, error = _validate(tenant, table, manifest)

    assert error is None
    assert _drift(report) == [
        ("operator", "added", "declared", "extract", None, "string", False)
    ]
    accepted = read_accepted(Lake(tenant), report)
    assert accepted.column("operator").to_pylist() == ["kim"]
    load_partition(open_catalog(tenant), tenant, table, manifest, accepted, run_id="r1")
    raw = open_catalog(tenant).load_table((tenant.raw_namespace, "lots"))
    assert "operator" in raw.schema().column_names

    tenant, table = _table(tmp_path, drift="fail")
    _, error = _validate(tenant, table, manifest)
    assert error is not None
    assert "column 'operator' (string) added in the extract" in str(error)


def test_extract_missing_a_declared_column_stops(tmp_path: Path) -> None:
    narrow = [c for c in COLUMNS if c["name"] != "amount"]
    writer_tenant, writer_table = _table(tmp_path, columns=narrow)
    tenant, table = _table(tmp_path)
    manifest = _extract(writer_tenant, writer_table)

    report, error = _validate(tenant, table, manifest)

    assert (
        "amount",
        "dropped",
        "declared",
        "extract",
        "decimal(10,2)",
        None,
        True,
    ) in (_drift(report))
    assert error is not None


# --- against the previous extract ---------------------------------------------------


def test_retyped_declaration_since_the_previous_extract(tmp_path: Path) -> None:
    """Without source columns, the previous manifest's columns are the baseline."""
    old_tenant, old_table = _table(tmp_path)
    _extract(old_tenant, old_table, extract_id=FIRST)
    retyped = [{**c, "type": "string"} if c["name"] == "qty" else c for c in COLUMNS]
    tenant, table = _table(tmp_path, columns=retyped)

    report, error = _validate(tenant, table, _extract(tenant, table))

    assert _drift(report) == [
        ("qty", "retyped", "previous", "declared", "bigint", "string", True)
    ]
    assert error is not None
    assert (
        f"column 'qty' retyped: previous extract {FIRST} bigint, declared string"
    ) in str(error)


@pytest.mark.parametrize("policy", ["evolve", "fail"])
def test_column_dropped_since_the_previous_extract(tmp_path: Path, policy: str) -> None:
    old_tenant, old_table = _table(tmp_path)
    _extract(old_tenant, old_table, extract_id=FIRST)
    tenant, table = _table(
        tmp_path, drift=policy, columns=[c for c in COLUMNS if c["name"] != "qty"]
    )

    report, error = _validate(tenant, table, _extract(tenant, table))

    assert _drift(report) == [
        ("qty", "dropped", "previous", "declared", "bigint", None, True)
    ]
    assert error is not None
    assert f"column 'qty' dropped: previous extract {FIRST} bigint" in str(error)


@pytest.mark.parametrize(("policy", "blocks"), [("evolve", False), ("fail", True)])
def test_column_added_since_the_previous_extract(
    tmp_path: Path, policy: str, blocks: bool
) -> None:
    old_tenant, old_table = _table(tmp_path)
    _extract(old_tenant, old_table, extract_id=FIRST)
    wide = [*COLUMNS, {"name": "operator", "type": "string"}]
    tenant, table = _table(tmp_path, drift=policy, columns=wide)

    report, error = _validate(tenant, table, _extract(tenant, table))

    assert _drift(report) == [
        ("operator", "added", "previous", "declared", None, "string", blocks)
    ]
    assert (error is not None) is blocks


def test_source_retyped_since_the_previous_extract(tmp_path: Path) -> None:
    """Between two introspected extracts, a declared column may only widen."""
    tenant, table = _table(tmp_path)
    _extract(tenant, table, extract_id=FIRST, source={**SOURCE, "qty": "int"})

    widened = _extract(tenant, table, extract_id=SECOND, source=SOURCE)
    report, error = _validate(tenant, table, widened)
    assert (report.drift, error) == ([], None)

    # bigint → string: still convertible to the declared bigint, but a change.
    third = "20261115T030000000000Z-aaaa0003"
    changed = _extract(
        tenant, table, extract_id=third, source={**SOURCE, "qty": "string"}
    )
    report, error = _validate(tenant, table, changed)
    assert _drift(report) == [
        ("qty", "retyped", "previous", "source", "bigint", "string", True)
    ]
    assert error is not None
    assert f"previous extract {SECOND} bigint, source string" in str(error)


def test_previous_extract_is_the_newest_complete_one_before_this(
    tmp_path: Path,
) -> None:
    tenant, table = _table(tmp_path)
    lake = Lake(tenant)
    older = _extract(
        tenant, table, extract_id="20261113T000000000000Z-x1", day=date(2026, 11, 13)
    )
    newest = _extract(
        tenant, table, extract_id="20261114T000000000000Z-x2", day=date(2026, 11, 12)
    )
    current = _extract(tenant, table, extract_id="20261115T000000000000Z-x3")
    _extract(tenant, table, extract_id="20261116T000000000000Z-x4")  # later
    aborted = lake.extract_folder("lots", DAY.day, "20261114T120000000000Z-x5")
    lake.make_dirs(aborted)  # no manifest: an aborted attempt

    found = previous_manifest(lake, current)

    assert found is not None
    assert found.extract_id == newest.extract_id
    assert previous_manifest(lake, older) is None


# --- the type rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "declared", "fits"),
    [
        ("bigint", "bigint", True),
        ("int", "bigint", True),
        ("bigint", "int", True),  # SQLite has one INTEGER: values are checked
        ("bigint", "boolean", True),  # 0/1
        ("string", "timestamptz", True),
        ("string", "decimal(10,2)", True),
        ("double", "decimal(10,2)", True),
        ("timestamp", "timestamptz", True),
        ("timestamptz", "timestamp", False),
        ("boolean", "bigint", False),
        ("date", "timestamptz", False),
        ("decimal(12,2)", "string", False),
        ("geometry", "string", True),  # unknown: not judged, logged
    ],
)
def test_converts(source: str, declared: str, fits: bool) -> None:
    assert converts(source, declared) is fits


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        ("int", "bigint", True),
        ("bigint", "int", False),
        ("decimal(10,2)", "decimal(12,2)", True),
        ("decimal(12,2)", "decimal(10,2)", False),
        ("decimal(10,2)", "decimal(12,3)", False),
        ("decimal", "decimal(12,3)", True),
        ("bigint", "double", False),
        ("timestamptz", "timestamptz", True),
    ],
)
def test_promotes(old: str, new: str, ok: bool) -> None:
    assert promotes(old, new) is ok
