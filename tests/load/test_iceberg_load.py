"""Load accepted rows into a real PyIceberg SQL catalog (SQLite) under tmp_path.

Every load goes through the real validator, so the rows are exactly what the
load stage receives in a run: the extract less its quarantined rows.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.transforms import DayTransform
from pyiceberg.types import (
    DecimalType,
    LongType,
    StringType,
    TimestamptzType,
)

from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.lake import Lake
from mozart_etl.load import iceberg
from mozart_etl.load.catalog import open_catalog
from mozart_etl.load.iceberg import (
    AUDIT_COLUMNS,
    LoadResult,
    load_partition,
    raw_table_exists,
)
from mozart_etl.validate.validator import accepted_rows, validate_extract
from tests.helpers import (
    Row,
    content_hash,
    make_tenant,
    seoul_day,
    table_dict,
    utc,
    write_extract,
)

# A first load of a window, or a merge of new keys only, deletes nothing.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Delete operation did not match any records:UserWarning"
)

D1, D2, D3 = date(2026, 11, 14), date(2026, 11, 15), date(2026, 11, 16)

LOT_COLUMNS = [
    {"name": "lot id", "type": "string", "nullable": False},
    {"name": "qty", "type": "bigint"},
    {"name": "amount", "type": "decimal", "precision": 12, "scale": 2},
    {"name": "status", "type": "string"},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]


def _tenant(
    tmp_path: Path, mode: str, columns: list[dict[str, Any]] | None = None
) -> TenantConfig:
    extra: dict[str, Any] = {"mode": mode}
    if mode != "full_refresh":
        extra["cursor"] = "updated_at"
    lots = table_dict("lots", columns or LOT_COLUMNS, primary_key=["lot id"], **extra)
    return make_tenant(tmp_path, [lots])


def _lot(lot: str, qty: int | None, at: datetime, **values: Any) -> Row:
    return {
        "lot id": lot,
        "qty": qty,
        "amount": Decimal(qty or 0) / 4,
        "status": "RUN",
        "updated_at": at,
        **values,
    }


def _load(
    catalog: Catalog,
    tenant: TenantConfig,
    rows: list[Row],
    day: date,
    *,
    run_id: str,
    initial: bool = False,
    table: TableConfig | None = None,
) -> LoadResult:
    """Extract (as Parquet), validate and load one production day."""
    table = table or tenant.table("lots")
    extract_id = f"{day:%Y%m%d}-{run_id}"
    manifest = write_extract(
        tenant, table, rows, seoul_day(day), extract_id=extract_id, initial=initial
    )
    report = validate_extract(tenant, table, manifest)
    accepted = accepted_rows(Lake(tenant), report)  # as the load task reads them
    return load_partition(catalog, tenant, table, manifest, accepted, run_id=run_id)


def _scan(catalog: Catalog, tenant: TenantConfig, name: str = "lots") -> pa.Table:
    return catalog.load_table((tenant.raw_namespace, name)).scan().to_arrow()


def _data(catalog: Catalog, tenant: TenantConfig) -> list[Row]:
    """The table's rows without audit columns, by key."""
    table = _scan(catalog, tenant).drop_columns(list(AUDIT_COLUMNS))
    return sorted(table.to_pylist(), key=_lot_id)


def _lot_id(row: Row) -> str:
    return row["lot id"]


def _hash(catalog: Catalog, tenant: TenantConfig) -> str:
    return content_hash(_scan(catalog, tenant), exclude=AUDIT_COLUMNS)


def _day_rows(day: date, *, version: int = 1) -> list[Row]:
    """Three lots updated inside production day `day` (Seoul), values by version."""
    start = seoul_day(day).start
    tag = f"{day:%m%d}"
    return [
        _lot(f"{tag}-a", 10 * version, start),
        _lot(f"{tag}-b", 20 * version, start + timedelta(hours=12)),
        _lot(f"{tag}-c", 30 * version, seoul_day(day).end - timedelta(microseconds=1)),
    ]


# --- full refresh --------------------------------------------------------------


def test_full_refresh_twice_gives_the_same_table(tmp_path: Path) -> None:
    tenant = _tenant(tmp_path, "full_refresh")
    catalog = open_catalog(tenant)
    rows = [_lot("A", 1, utc(2026, 1, 1)), _lot("B", None, utc(2026, 2, 1))]

    first = _load(catalog, tenant, rows, D2, run_id="run-1")
    after_first = (_hash(catalog, tenant), _scan(catalog, tenant).num_rows)
    second = _load(catalog, tenant, rows, D2, run_id="run-2")

    assert (_hash(catalog, tenant), _scan(catalog, tenant).num_rows) == after_first
    assert _data(catalog, tenant) == rows
    assert (first.rows_in_table, second.rows_in_table) == (2, 2)
    assert second.snapshot_id != first.snapshot_id
    assert set(_scan(catalog, tenant).column("_mozart_run_id").to_pylist()) == {"run-2"}


def test_full_refresh_replaces_rows_gone_from_the_source(tmp_path: Path) -> None:
    tenant = _tenant(tmp_path, "full_refresh")
    catalog = open_catalog(tenant)
    at = utc(2026, 1, 1)

    _load(catalog, tenant, [_lot("A", 1, at), _lot("B", 2, at)], D1, run_id="r1")
    result = _load(
        catalog, tenant, [_lot("B", 5, at), _lot("C", 3, at)], D2, run_id="r2"
    )

    assert _data(catalog, tenant) == [_lot("B", 5, at), _lot("C", 3, at)]
    assert (result.rows_loaded, result.rows_in_table) == (2, 2)


def test_load_result_and_audit_columns(tmp_path: Path) -> None:
    tenant = _tenant(tmp_path, "full_refresh")
    catalog = open_catalog(tenant)
    rows = [_lot("A", 1, utc(2026, 1, 1)), _lot("B", 2, utc(2026, 1, 2))]
    assert not raw_table_exists(catalog, tenant, tenant.table("lots"))

    before = datetime.now(UTC)
    result = _load(catalog, tenant, rows, D2, run_id="scheduled__2026-11-15")
    after = datetime.now(UTC)

    assert raw_table_exists(catalog, tenant, tenant.table("lots"))
    iceberg_table = catalog.load_table(("acme_raw", "lots"))
    assert result.identifier == "acme_raw.lots"
    assert (result.tenant_id, result.table, result.mode) == (
        "acme",
        "lots",
        "full_refresh",
    )
    assert (result.production_day, result.rows_loaded, result.rows_in_table) == (
        D2,
        2,
        2,
    )
    assert result.snapshot_id == iceberg_table.current_snapshot().snapshot_id
    data = _scan(catalog, tenant)
    assert data.column_names[-3:] == list(AUDIT_COLUMNS)
    assert set(data.column("_mozart_run_id").to_pylist()) == {"scheduled__2026-11-15"}
    assert set(data.column("_mozart_partition").to_pylist()) == {"2026-11-15"}
    loaded_at = set(data.column("_mozart_loaded_at").to_pylist())
    assert len(loaded_at) == 1
    assert before <= loaded_at.pop() <= after
    schema = iceberg_table.schema()
    assert isinstance(schema.find_field("lot id").field_type, StringType)
    assert isinstance(schema.find_field("qty").field_type, LongType)
    assert schema.find_field("amount").field_type == DecimalType(12, 2)
    assert isinstance(schema.find_field("updated_at").field_type, TimestamptzType)
    assert isinstance(
        schema.find_field("_mozart_loaded_at").field_type, TimestamptzType
    )


# --- incremental ---------------------------------------------------------------


def test_incremental_table_is_partitioned_by_cursor_day(tmp_path: Path) -> None:
    tenant = _tenant(tmp_path, "incremental")
    catalog = open_catalog(tenant)

    _load(catalog, tenant, _day_rows(D2), D2, run_id="r1")

    spec = catalog.load_table(("acme_raw", "lots")).spec()
    assert [(f.name, f.transform) for f in spec.fields] == [
        ("updated_at_day", DayTransform())
    ]


def test_incremental_same_window_twice_gives_the_same_table(tmp_path: Path) -> None:
    tenant = _tenant(tmp_path, "incremental")
    catalog = open_catalog(tenant)
    _load(catalog, tenant, _day_rows(D1), D1, run_id="r1")
    _load(catalog, tenant, _day_rows(D2), D2, run_id="r2")
    once = _hash(catalog, tenant)

    result = _load(catalog, tenant, _day_rows(D2), D2, run_id="r3")

    assert _hash(catalog, tenant) == once
    assert result.rows_in_table == 6
    assert _scan(catalog, tenant).num_rows == 6
    assert _data(catalog, tenant) == sorted(_day_rows(D1) + _day_rows(D2), key=_lot_id)


def test_incremental_rerun_replaces_only_its_window(tmp_path: Path) -> None:
    tenant = _tenant(tmp_path, "incremental")
    catalog = open_catalog(tenant)
    for day in (D1, D2, D3):
        _load(catalog, tenant, _day_rows(day), day, run_id=f"first-{day}")

    # The source changed for D2: one row gone, the others with new values.
    rerun = _day_rows(D2, version=2)[1:]
    result = _load(catalog, tenant, rerun, D2, run_id="rerun")

    expected = _day_rows(D1) + rerun + _day_rows(D3)
    assert _data(catalog, tenant) == sorted(expected, key=_lot_id)
    assert result.rows_in_table == 8
    runs = {
        r["lot id"]: r["_mozart_run_id"] for r in _scan(catalog, tenant).to_pylist()
    }
    assert {lot for lot, run in runs.items() if run == "rerun"} == {"1115-b", "1115-c"}


def test_incremental_days_in_any_order_give_the_same_table(tmp_path: Path) -> None:
    in_order = (D1, D2, D3)
    hashes: dict[tuple[date, ...], str] = {}
    for index, order in enumerate(itertools.permutations(in_order)):
        tenant = _tenant(tmp_path / f"order{index}", "incremental")
        catalog = open_catalog(tenant)
        for day in order:
            _load(catalog, tenant, _day_rows(day), day, run_id=f"r-{day}")
        hashes[order] = _hash(catalog, tenant)
        if order == in_order:
            expected = [row for day in in_order for row in _day_rows(day)]
            assert _data(catalog, tenant) == sorted(expected, key=_lot_id)

    assert len(hashes) == 6
    assert set(hashes.values()) == {hashes[in_order]}


def test_initial_load_replaces_all_history_before_the_window_end(
    tmp_path: Path,
) -> None:
    tenant = _tenant(tmp_path, "incremental")
    catalog = open_catalog(tenant)
    history = [*_day_rows(D1), *_day_rows(D2)]
    _load(catalog, tenant, history, D2, run_id="initial-1", initial=True)
    _load(catalog, tenant, _day_rows(D3), D3, run_id="d3")

    # A second initial load of D2 (e.g. after a failed first run) replaces
    # everything before D2's end and leaves D3 alone.
    again = _day_rows(D1, version=3)
    _load(catalog, tenant, again, D2, run_id="initial-2", initial=True)

    expected = again + _day_rows(D3)
    assert _data(catalog, tenant) == sorted(expected, key=_lot_id)


@pytest.mark.parametrize(
    ("kind", "inside", "outside"),
    [
        # production day D2 in Seoul: [D1 15:00, D2 15:00) UTC
        (
            "timestamp",
            [datetime(2026, 11, 14, 15), datetime(2026, 11, 15, 14, 59, 59, 999999)],
            [datetime(2026, 11, 14, 14, 59, 59, 999999), datetime(2026, 11, 15, 15)],
        ),
        ("date", [date(2026, 11, 15)], [date(2026, 11, 14), date(2026, 11, 16)]),
    ],
)
def test_incremental_rerun_with_a_naive_or_date_cursor(
    tmp_path: Path, kind: str, inside: list[Any], outside: list[Any]
) -> None:
    columns = [
        {"name": "lot id", "type": "string", "nullable": False},
        {"name": "qty", "type": "bigint"},
        {"name": "updated_at", "type": kind, "nullable": False},
    ]
    tenant = _tenant(tmp_path, "incremental", columns)
    catalog = open_catalog(tenant)
    cursors = {f"in{i}": at for i, at in enumerate(inside)}
    cursors |= {f"out{i}": at for i, at in enumerate(outside)}
    everything = [
        {"lot id": k, "qty": 1, "updated_at": at} for k, at in cursors.items()
    ]
    _load(catalog, tenant, everything, D3, run_id="initial", initial=True)

    rerun = [
        {"lot id": f"in{i}", "qty": 2, "updated_at": at} for i, at in enumerate(inside)
    ]
    _load(catalog, tenant, rerun, D2, run_id="rerun")

    got = {row["lot id"]: row["qty"] for row in _data(catalog, tenant)}
    assert got == {key: 2 if key.startswith("in") else 1 for key in cursors}


# --- merge ---------------------------------------------------------------------


def test_merge_updates_existing_keys_and_inserts_new_ones(tmp_path: Path) -> None:
    tenant = _tenant(tmp_path, "merge")
    catalog = open_catalog(tenant)
    day1 = [
        _lot("L1", 10, utc(2026, 11, 13, 16)),
        _lot("L2", 20, utc(2026, 11, 13, 17), status="WAIT"),
        _lot("L3", 30, utc(2026, 11, 13, 18)),
    ]
    _load(catalog, tenant, day1, D1, run_id="r1")

    day2 = [
        _lot("L2", 25, utc(2026, 11, 14, 16), status="DONE"),
        _lot("L4", 40, utc(2026, 11, 14, 17)),
    ]
    result = _load(catalog, tenant, day2, D2, run_id="r2")

    rows = {row["lot id"]: row for row in _scan(catalog, tenant).to_pylist()}
    assert sorted(rows) == ["L1", "L2", "L3", "L4"]
    for expected, run, day in [
        (day1[0], "r1", "2026-11-14"),
        (day2[0], "r2", "2026-11-15"),
        (day1[2], "r1", "2026-11-14"),
        (day2[1], "r2", "2026-11-15"),
    ]:
        row = rows[expected["lot id"]]
        assert {k: row[k] for k in expected} == expected
        assert (row["_mozart_run_id"], row["_mozart_partition"]) == (run, day)
    assert result.rows_in_table == 4


def test_merge_rerun_of_the_same_day_gives_the_same_table(tmp_path: Path) -> None:
    tenant = _tenant(tmp_path, "merge")
    catalog = open_catalog(tenant)
    _load(catalog, tenant, _day_rows(D1), D1, run_id="r1")
    _load(catalog, tenant, _day_rows(D2), D2, run_id="r2")
    once = _hash(catalog, tenant)

    _load(catalog, tenant, _day_rows(D2), D2, run_id="r3")

    assert _hash(catalog, tenant) == once
    assert _scan(catalog, tenant).num_rows == 6


def test_merge_on_a_composite_key(tmp_path: Path) -> None:
    columns = [
        {"name": "lot id", "type": "string", "nullable": False},
        {"name": "step seq", "type": "int", "nullable": False},
        {"name": "qty", "type": "bigint"},
        {"name": "updated_at", "type": "timestamptz", "nullable": False},
    ]
    steps = table_dict(
        "steps",
        columns,
        primary_key=["lot id", "step seq"],
        mode="merge",
        cursor="updated_at",
    )
    tenant = make_tenant(tmp_path, [steps])
    table, catalog = tenant.table("steps"), open_catalog(tenant)
    at1, at2 = utc(2026, 11, 13, 16), utc(2026, 11, 14, 16)

    def step(lot: str, seq: int, qty: int, at: datetime) -> Row:
        return {"lot id": lot, "step seq": seq, "qty": qty, "updated_at": at}

    first = [step("A", 1, 10, at1), step("A", 2, 20, at1), step("B", 1, 30, at1)]
    _load(catalog, tenant, first, D1, run_id="r1", table=table)
    # (A, 2) changes; (B, 2) is new; (A, 1) and (B, 1) are not in this extract.
    second = [step("A", 2, 21, at2), step("B", 2, 40, at2)]
    _load(catalog, tenant, second, D2, run_id="r2", table=table)

    got = _scan(catalog, tenant, "steps").drop_columns(list(AUDIT_COLUMNS))
    assert got.num_rows == 4
    keyed = {(r["lot id"], r["step seq"]): r for r in got.to_pylist()}
    assert keyed == {
        ("A", 1): first[0],
        ("A", 2): second[0],
        ("B", 1): first[2],
        ("B", 2): second[1],
    }


# --- slices --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["full_refresh", "incremental", "merge"])
def test_a_load_written_in_slices_is_one_commit_of_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """The load holds SLICE_ROWS rows at a time (memory stays flat as the
    partition grows), and still commits once, with one `loaded_at`."""
    monkeypatch.setattr(iceberg, "SLICE_ROWS", 2)
    tenant = _tenant(tmp_path, mode)
    catalog = open_catalog(tenant)
    first = _day_rows(D1)
    _load(catalog, tenant, first, D1, run_id="r1")
    commits = len(catalog.load_table(("acme_raw", "lots")).metadata.metadata_log)
    start = seoul_day(D2).start
    second = [
        *_day_rows(D2),
        _lot("1115-d", 4, start + timedelta(hours=1)),
        _lot(first[0]["lot id"], 99, start + timedelta(hours=2)),  # a day-1 key
    ]

    result = _load(catalog, tenant, second, D2, run_id="r2")

    expected = {
        "full_refresh": second,
        "incremental": first + second,
        "merge": first[1:] + second,
    }[mode]

    def by_version(row: Row) -> tuple[str, datetime]:
        return row["lot id"], row["updated_at"]

    got = sorted(_data(catalog, tenant), key=by_version)
    assert got == sorted(expected, key=by_version)
    raw = catalog.load_table(("acme_raw", "lots"))
    summary = raw.current_snapshot().summary
    assert (result.rows_loaded, int(summary["added-records"])) == (5, 5)
    assert int(summary["added-data-files"]) >= 3  # slices of 2, 2 and 1 rows
    assert len(raw.metadata.metadata_log) == commits + 1
    loaded = raw.scan(row_filter="_mozart_run_id == 'r2'").to_arrow()
    assert len(set(loaded.column("_mozart_loaded_at").to_pylist())) == 1


# --- schema evolution ----------------------------------------------------------


@pytest.mark.parametrize("mode", ["merge", "incremental", "full_refresh"])
def test_added_column_evolves_the_schema_and_old_rows_read_null(
    tmp_path: Path, mode: str
) -> None:
    tenant = _tenant(tmp_path, mode)
    catalog = open_catalog(tenant)
    old = [_lot("L1", 10, utc(2026, 11, 13, 16)), _lot("L2", 20, utc(2026, 11, 13, 17))]
    _load(catalog, tenant, old, D1, run_id="r1")

    remark = {"name": "remark", "type": "string"}
    evolved = _tenant(tmp_path, mode, [*LOT_COLUMNS, remark])
    new = [
        _lot("L2", 21, utc(2026, 11, 14, 16), remark="재작업"),
        _lot("L3", 30, utc(2026, 11, 14, 17), remark=None),
        _lot("L4", 40, utc(2026, 11, 14, 18), remark="ok"),
    ]
    result = _load(catalog, evolved, new, D2, run_id="r2", table=evolved.table("lots"))

    kept = {
        "merge": old[:1],  # L2 is replaced by its new version
        "incremental": old,  # D1's window is not touched by D2's load
        "full_refresh": [],
    }[mode]
    expected = [{**row, "remark": None} for row in kept] + new
    by_key_and_qty = sorted(expected, key=lambda row: (row["lot id"], row["qty"]))
    got = _scan(catalog, evolved).drop_columns(list(AUDIT_COLUMNS)).to_pylist()
    assert sorted(got, key=lambda row: (row["lot id"], row["qty"])) == by_key_and_qty
    assert result.rows_in_table == len(expected)
    schema = catalog.load_table(("acme_raw", "lots")).schema()
    assert isinstance(schema.find_field("remark").field_type, StringType)
    assert not schema.find_field("remark").required


@pytest.mark.parametrize("limit", [1, 5_000])
def test_merge_by_key_range_or_in_list_gives_the_same_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    """Past IN_LIST_LIMIT keys the merge deletes by the keys' range and re-appends
    the rows in range that the new extract does not replace."""
    from mozart_etl.load import iceberg

    monkeypatch.setattr(iceberg, "IN_LIST_LIMIT", limit)
    columns = [
        {"name": "lot id", "type": "string", "nullable": False},
        {"name": "step seq", "type": "int", "nullable": False},
        {"name": "qty", "type": "bigint"},
        {"name": "updated_at", "type": "timestamptz", "nullable": False},
    ]
    steps = table_dict(
        "steps",
        columns,
        primary_key=["lot id", "step seq"],
        mode="merge",
        cursor="updated_at",
    )
    tenant = make_tenant(tmp_path, [steps])
    table, catalog = tenant.table("steps"), open_catalog(tenant)
    at1, at2 = utc(2026, 11, 13, 16), utc(2026, 11, 14, 16)

    def step(lot: str, seq: int, qty: int, at: datetime) -> Row:
        return {"lot id": lot, "step seq": seq, "qty": qty, "updated_at": at}

    first = [step(lot, seq, 1, at1) for lot in "ABCDE" for seq in (1, 2)]
    _load(catalog, tenant, first, D1, run_id="r1", table=table)
    # B..D in range; (B, 2) and (D, 1) change, (C, 3) is new, the rest stays.
    second = [step("B", 2, 5, at2), step("D", 1, 6, at2), step("C", 3, 7, at2)]
    _load(catalog, tenant, second, D2, run_id="r2", table=table)

    got = _scan(catalog, tenant, "steps").to_pylist()
    keyed = {(r["lot id"], r["step seq"]): (r["qty"], r["_mozart_run_id"]) for r in got}
    assert len(got) == 11
    expected = {(r["lot id"], r["step seq"]): (1, "r1") for r in first}
    expected |= {(r["lot id"], r["step seq"]): (r["qty"], "r2") for r in second}
    assert keyed == expected
