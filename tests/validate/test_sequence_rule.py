"""The `sequence` rule (MES route order) over a real Parquet extract in parts."""

from __future__ import annotations

from pathlib import Path

from tests.validate.test_rules import _validate

COLUMNS = [
    {"name": "lot id", "type": "string", "nullable": False},
    {"name": "seq", "type": "int", "nullable": False},
    {"name": "arrived", "type": "bigint", "nullable": False},
    {"name": "out", "type": "bigint"},
]
RULE = {
    "type": "sequence",
    "name": "route_order",
    "partition_by": ["lot id"],
    "order_by": "seq",
    "start": "arrived",
    "previous_end": "out",
    "max_fraction": 0.5,
}


def _visit(lot: str, seq: int, arrived: int, out: int | None) -> dict:
    return {"lot id": lot, "seq": seq, "arrived": arrived, "out": out}


def test_a_step_arriving_before_the_previous_track_out_is_quarantined(
    tmp_path: Path,
) -> None:
    rows = [
        _visit("A", 30, 15, 30),  # arrives before step 20's track-out (20)
        _visit("B", 20, 5, None),  # step 10 never tracked out (HOLD): no next step
        _visit("A", 10, 0, 10),
        _visit("C", 20, 3, None),  # its previous step is not in the extract
        _visit("A", 20, 10, 20),  # arrives exactly at the track-out: fine
        _visit("B", 10, 0, None),
        _visit("A", 40, 30, None),
    ]

    outcome = _validate(tmp_path, [RULE], rows, columns=COLUMNS, parts=2)

    assert outcome.error is None
    assert outcome.quarantine == {
        ("A", 30): ["route_order"],
        ("B", 20): ["route_order"],
    }
    assert outcome.accepted_keys == [
        ("A", 10),
        ("A", 20),
        ("A", 40),
        ("B", 10),
        ("C", 20),
    ]
    assert outcome.failed("route_order") == 2


def test_beyond_tolerance_the_load_stops_naming_the_rule(tmp_path: Path) -> None:
    rows = [_visit("A", 10, 0, 10), _visit("A", 20, 5, 20)]
    strict = {**RULE, "max_fraction": None}

    outcome = _validate(tmp_path, [strict], rows, columns=COLUMNS)

    assert outcome.error is not None and outcome.error.rule == "route_order"
    assert "route_order: 1 row(s)" in str(outcome.error)
