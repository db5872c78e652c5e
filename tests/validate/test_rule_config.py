"""Bad rule definitions are rejected when tenant.yaml loads (and so by `mozart
validate`), naming the tenant, the table and the rule."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from mozart_etl.config.constants import DriftPolicy
from mozart_etl.config.loader import load_tenant
from mozart_etl.core.errors import ConfigError
from mozart_etl.ops.cli import main as mozart
from tests.helpers import table_dict, tenant_dict

COLUMNS = [
    {"name": "lot_id", "type": "string", "nullable": False},
    {"name": "qty", "type": "bigint"},
    {"name": "yield_pct", "type": "double"},
    {"name": "due", "type": "date"},
    {"name": "local_ts", "type": "timestamp"},
    {"name": "updated_at", "type": "timestamptz", "nullable": False},
]


def _write(root: Path, rules: list[dict[str, Any]], **table: Any) -> Path:
    """tenants/acme/tenant.yaml with one table `lots` carrying `rules`."""
    lots = table_dict("lots", COLUMNS, primary_key=["lot_id"], rules=rules, **table)
    folder = root / "tenants" / "acme"
    folder.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(tenant_dict(root, [lots]), sort_keys=False)
    (folder / "tenant.yaml").write_text(text, encoding="utf-8")
    return folder


def _error(tmp_path: Path, rules: list[dict[str, Any]], **table: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load_tenant(_write(tmp_path, rules, **table), base_dir=tmp_path)
    message = str(info.value)
    assert message.startswith("[tenant=acme] ")
    assert "tables[lots]" in message
    return message


BAD_RULES: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "unknown-column",
        {"type": "pattern", "column": "lot", "pattern": "L.*", "name": "lot_pat"},
        ["rule lot_pat: unknown column 'lot'"],
    ),
    (
        "min-above-max",
        {"type": "range", "column": "qty", "min": 10, "max": 5},
        ["tables[lots].rules[0].range", "min 10.0 > max 5.0"],
    ),
    (
        "date-min-above-max",
        {
            "type": "range",
            "column": "due",
            "min": date(2026, 12, 1),
            "max": date(2026, 11, 1),
            "name": "due_window",
        },
        ["tables[lots].rules[due_window].range", "min 2026-12-01 > max 2026-11-01"],
    ),
    (
        "range-on-string",
        {"type": "range", "column": "lot_id", "min": 0, "name": "lot_range"},
        [
            "rule lot_range: range needs a numeric, date or timestamp column; "
            "'lot_id' is string"
        ],
    ),
    (
        "date-bound-on-int",
        {"type": "range", "column": "qty", "max": date(2026, 1, 1)},
        ["rule range: max datetime.date(2026, 1, 1) is a date, but 'qty' is bigint"],
    ),
    (
        "number-bound-on-date",
        {"type": "range", "column": "due", "min": 3},
        ["rule range: min 3.0 is a number, but 'due' is date (takes: date)"],
    ),
    (
        "naive-bound-on-timestamptz",
        {"type": "range", "column": "updated_at", "min": datetime(2026, 1, 1)},
        ["is a timestamp, but 'updated_at' is timestamptz (takes: aware timestamp)"],
    ),
    (
        "mixed-bounds",
        {"type": "range", "column": "qty", "min": 1, "max": date(2026, 1, 1)},
        ["range on 'qty': min 1.0 and max datetime.date(2026, 1, 1) are not of"],
    ),
    (
        "pattern-does-not-compile",
        {"type": "pattern", "column": "lot_id", "pattern": "LOT-(\\d+"},
        [
            "tables[lots].rules[0].pattern.pattern",
            "pattern 'LOT-(\\\\d+' does not compile: missing ), unterminated",
        ],
    ),
    (
        "pattern-lookahead",
        {"type": "pattern", "column": "lot_id", "pattern": "(?!X)LOT.*"},
        ["uses lookaround or a backreference"],
    ),
    (
        "pattern-on-int",
        {"type": "pattern", "column": "qty", "pattern": "\\d+"},
        ["rule pattern: pattern needs a string column; 'qty' is bigint"],
    ),
    (
        "values-of-the-wrong-type",
        {"type": "accepted_values", "column": "lot_id", "values": [1, "A"]},
        ["values [1] do not fit string column 'lot_id' (quote them in YAML)"],
    ),
    (
        "row-count-min-above-max",
        {"type": "row_count", "min": 5, "max": 1},
        ["tables[lots].rules[0].row_count", "row_count: min 5 > max 1"],
    ),
    (
        "row-count-with-a-row-tolerance",
        {"type": "row_count", "min": 5, "max_fraction": 0.1},
        ["row_count is a table-level rule: max_failures/max_fraction do not apply"],
    ),
    (
        "freshness-without-cursor",
        {"type": "freshness", "max_age_hours": 6, "name": "fresh"},
        ["rule fresh: freshness needs the table's `cursor` column"],
    ),
    (
        "unknown-rule-kind",
        {"type": "regex", "column": "lot_id"},
        ["tables[lots].rules[0]", "'regex'"],
    ),
    (
        "unknown-setting",
        {"type": "not_null", "columns": ["qty"], "colour": "red"},
        ["tables[lots].rules[0].not_null.colour", "Extra inputs are not permitted"],
    ),
]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [(rule, expected) for _, rule, expected in BAD_RULES],
    ids=[case for case, _, _ in BAD_RULES],
)
def test_bad_rule_is_rejected_naming_table_and_rule(
    tmp_path: Path, rule: dict[str, Any], expected: list[str]
) -> None:
    message = _error(tmp_path, [rule])

    for text in expected:
        assert text in message


def test_unknown_drift_policy(tmp_path: Path) -> None:
    message = _error(tmp_path, [], drift="ignore")

    assert "tables[lots].drift" in message
    assert "'evolve' or 'fail'" in message


def test_good_rules_load(tmp_path: Path) -> None:
    rules = [
        {"type": "pattern", "column": "lot_id", "pattern": "LOT-\\d{4}"},
        {"type": "range", "column": "due", "min": date(2026, 1, 1)},
        {"type": "range", "column": "local_ts", "max": datetime(2027, 1, 1)},
        {
            "type": "range",
            "column": "updated_at",
            "min": datetime(2026, 1, 1, tzinfo=UTC),
        },
        {"type": "accepted_values", "column": "qty", "values": [1, 2]},
        {"type": "row_count", "min": 1},
        {"type": "freshness", "max_age_hours": 30},
    ]
    folder = _write(tmp_path, rules, mode="merge", cursor="updated_at", drift="fail")

    table = load_tenant(folder, base_dir=tmp_path).table("lots")

    assert [rule.type for rule in table.rules] == [
        "pattern",
        "range",
        "range",
        "range",
        "accepted_values",
        "row_count",
        "freshness",
    ]
    assert table.drift == DriftPolicy.FAIL
    assert table.rules[1].min == date(2026, 1, 1)


def test_yaml_dates_and_quoted_timestamps_are_bounds(tmp_path: Path) -> None:
    """As a user writes them: a YAML date, and a timestamp with an offset."""
    folder = tmp_path / "tenants" / "acme"
    _write(tmp_path, [])
    text = (folder / "tenant.yaml").read_text(encoding="utf-8")
    text += (
        "    - {type: range, column: due, min: 2026-01-01, max: 2026-12-31}\n"
        "    - {type: range, column: updated_at, min: '2026-01-01T00:00:00+09:00'}\n"
    )
    (folder / "tenant.yaml").write_text(
        text.replace("  rules: []\n", "  rules:\n"), encoding="utf-8"
    )

    rules = load_tenant(folder, base_dir=tmp_path).table("lots").rules

    assert (rules[0].min, rules[0].max) == (date(2026, 1, 1), date(2026, 12, 31))
    assert rules[1].min == datetime(2025, 12, 31, 15, tzinfo=UTC)


def test_mozart_validate_names_tenant_table_and_rule(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules = [{"type": "range", "column": "lot_id", "min": 0, "name": "lot_range"}]
    _write(tmp_path, rules)

    with caplog.at_level(logging.INFO):
        code = mozart(["--tenants-dir", str(tmp_path / "tenants"), "validate"])

    assert code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("tenant acme: [tenant=acme] ")
    assert "tables[lots]" in errors[0]
    assert "rule lot_range: range needs a numeric" in errors[0]
