"""Table-level rules (row_count, freshness): one verdict per extract, no quarantine."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from mozart_etl.config.models import TableConfig, TenantConfig
from mozart_etl.core.errors import ValidationFailed
from mozart_etl.validate.validator import ValidationReport, validate_extract
from tests.helpers import Row, make_tenant, seoul_day, table_dict, utc, write_extract

DAY = seoul_day(date(2026, 11, 15))  # [2026-11-14 15:00Z, 2026-11-15 15:00Z)

EVENT_COLUMNS = [
    {"name": "id", "type": "bigint", "nullable": False},
    {"name": "kind", "type": "string"},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]


def _events(
    tmp_path: Path,
    rules: list[dict[str, Any]],
    *,
    mode: str = "merge",
    columns: list[dict[str, Any]] | None = None,
) -> tuple[TenantConfig, TableConfig]:
    table = table_dict(
        "events", columns or EVENT_COLUMNS, mode=mode, cursor="updated_at", rules=rules
    )
    tenant = make_tenant(tmp_path, [table])
    return tenant, tenant.table("events")


def _rows(*instants: datetime) -> list[Row]:
    return [
        {"id": i, "kind": "RUN", "updated_at": at} for i, at in enumerate(instants, 1)
    ]


def _run(
    tenant: TenantConfig, table: TableConfig, rows: list[Row]
) -> tuple[ValidationReport, ValidationFailed | None]:
    """Validate; the report as written to the lake, and the error if one was raised."""
    manifest = write_extract(tenant, table, rows, DAY)
    error = None
    try:
        validate_extract(tenant, table, manifest)
    except ValidationFailed as exc:
        error = exc
    path = Path(manifest.folder) / "validated" / "report.json"
    report = ValidationReport.model_validate_json(path.read_text(encoding="utf-8"))
    return report, error


def _rule(report: ValidationReport, name: str) -> tuple[str, int, bool, str | None]:
    rule = next(r for r in report.rules if r.name == name)
    return rule.scope, rule.failed, rule.tolerated, rule.detail


NOON = utc(2026, 11, 15, 12)

# --- row_count -----------------------------------------------------------------


@pytest.mark.parametrize(("count", "failed"), [(1, 1), (2, 0), (3, 0), (4, 1)], ids=str)
def test_row_count_bounds_are_inclusive(
    tmp_path: Path, count: int, failed: int
) -> None:
    tenant, table = _events(tmp_path, [{"type": "row_count", "min": 2, "max": 3}])

    report, error = _run(tenant, table, _rows(*[NOON] * count))

    assert _rule(report, "row_count")[:3] == ("table", failed, not failed)
    assert (error is not None) == bool(failed)
    # A table-level rule quarantines nothing.
    assert (report.accepted, report.quarantined) == (count, 0)


def test_row_count_failure_stops_with_observed_and_expected(tmp_path: Path) -> None:
    rules = [{"type": "row_count", "min": 10, "name": "enough_events"}]
    tenant, table = _events(tmp_path, rules)

    report, error = _run(tenant, table, _rows(NOON, NOON, NOON))

    detail = "count(*) = 3, expected rows >= 10"
    assert _rule(report, "enough_events") == ("table", 1, False, detail)
    assert error is not None
    assert str(error).startswith("[tenant=acme table=events rule=enough_events] ")
    assert f"(enough_events: {detail}) of 3 rows; nothing was loaded" in str(error)
    assert report.failed_by_rule["enough_events"] == 1


def test_row_count_warn_lets_the_load_go_on(tmp_path: Path) -> None:
    rules = [{"type": "row_count", "max": 1, "severity": "warn"}]
    tenant, table = _events(tmp_path, rules)

    report, error = _run(tenant, table, _rows(NOON, NOON))

    assert error is None
    assert _rule(report, "row_count") == (
        "table",
        1,
        False,
        "count(*) = 2, expected rows <= 1",
    )
    assert report.accepted == 2


def test_row_count_of_an_empty_extract(tmp_path: Path) -> None:
    tenant, table = _events(tmp_path, [{"type": "row_count", "min": 1}])

    report, error = _run(tenant, table, [])

    assert _rule(report, "row_count")[:2] == ("table", 1)
    assert error is not None


# --- freshness -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("newest", "failed"),
    [
        (utc(2026, 11, 15, 9, 0), 0),  # exactly window end - 6 h
        (utc(2026, 11, 15, 14, 59), 0),
        (utc(2026, 11, 15, 8, 59, 59), 1),
    ],
    ids=["at-threshold", "fresh", "stale"],
)
def test_freshness_against_the_window_end(
    tmp_path: Path, newest: datetime, failed: int
) -> None:
    tenant, table = _events(tmp_path, [{"type": "freshness", "max_age_hours": 6}])
    rows = _rows(utc(2026, 11, 14, 16), newest)

    report, error = _run(tenant, table, rows)

    scope, count, tolerated, detail = _rule(report, "freshness(updated_at)")
    assert (scope, count, tolerated) == ("table", failed, not failed)
    assert detail == (
        f'max("updated_at") = {newest.isoformat()}, '
        "expected max(updated_at) >= 2026-11-15T09:00:00+00:00"
    )
    assert (error is not None) == bool(failed)
    assert report.quarantined == 0


def test_freshness_of_an_empty_extract_fails(tmp_path: Path) -> None:
    tenant, table = _events(tmp_path, [{"type": "freshness", "max_age_hours": 24}])

    report, error = _run(tenant, table, [])

    assert _rule(report, "freshness(updated_at)")[:2] == ("table", 1)
    assert error is not None
    assert 'max("updated_at") = None' in str(error)


def test_freshness_of_a_full_refresh_table_uses_the_day_end(tmp_path: Path) -> None:
    """No window: the threshold is the production day's end minus the age."""
    rules = [{"type": "freshness", "max_age_hours": 1}]
    tenant, table = _events(tmp_path, rules, mode="full_refresh")
    day_end = DAY.end

    fresh, _ = _run(tenant, table, _rows(day_end - timedelta(minutes=30)))
    assert _rule(fresh, "freshness(updated_at)")[1] == 0

    tenant, table = _events(tmp_path / "stale", rules, mode="full_refresh")
    stale, error = _run(tenant, table, _rows(day_end - timedelta(hours=2)))
    assert _rule(stale, "freshness(updated_at)")[1] == 1
    assert error is not None


def test_freshness_on_a_date_cursor(tmp_path: Path) -> None:
    """A date cursor compares with the UTC date of the threshold."""
    columns = [*EVENT_COLUMNS[:2], {"name": "updated_at", "type": "date"}]
    rules = [{"type": "freshness", "max_age_hours": 24}]
    tenant, table = _events(tmp_path, rules, columns=columns)
    rows = [{"id": 1, "kind": "RUN", "updated_at": date(2026, 11, 14)}]

    report, error = _run(tenant, table, rows)  # threshold 2026-11-14T15:00Z

    assert _rule(report, "freshness(updated_at)")[1] == 0
    assert error is None

    rows = [{"id": 1, "kind": "RUN", "updated_at": date(2026, 11, 13)}]
    tenant, table = _events(tmp_path / "old", rules, columns=columns)
    report, error = _run(tenant, table, rows)
    assert _rule(report, "freshness(updated_at)")[1] == 1


def test_table_and_row_rules_together(tmp_path: Path) -> None:
    """Row rules quarantine; table rules count once; both are named on failure."""
    rules = [
        {"type": "row_count", "min": 5},
        {"type": "accepted_values", "column": "kind", "values": ["RUN"]},
    ]
    tenant, table = _events(tmp_path, rules)
    rows = _rows(NOON, NOON, NOON)
    rows[1]["kind"] = "DOWN"

    report, error = _run(tenant, table, rows)

    assert report.failed_by_rule == {
        "required_columns": 0,
        "primary_key_unique": 0,
        "row_count": 1,
        "accepted_values(kind)": 1,
    }
    assert (report.accepted, report.quarantined) == (2, 1)
    quarantined = pq.read_table(report.quarantine_path).to_pylist()
    assert [r["_mozart_failed_rules"] for r in quarantined] == [
        ["accepted_values(kind)"]
    ]
    assert error is not None
    assert (
        "2 rule(s) failed beyond tolerance (row_count: count(*) = 3, expected "
        "rows >= 5, accepted_values(kind): 1 row(s)) of 3 rows"
    ) in str(error)
