"""Figures every chaos scenario reports, and how they are measured.

lost = source keys with no live row in raw (each key's latest version, unless
deleted); dups = raw versions minus distinct versions (a version is a key and
its `_mozart_valid_from`: a commit landing twice repeats them);
orphans = files a crashed attempt left that a reader could pick up (a data
file no snapshot references is not one: Iceberg never reads it); leaks =
secret hits in logs, XCom, rendered fields, errors and the ledger.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog

from mozart_etl.load.versions import VALID_FROM, latest_per_key


@dataclass
class ChaosRow:
    scenario: str
    outcome: str = "not run"
    lost: int | None = None
    dups: int | None = None
    orphans: int | None = None
    leaks: int | None = None
    cause: str = ""
    """The error the fault produced (its class), when the scenario expects one."""
    notes: list[str] = field(default_factory=list)


ROWS: dict[str, ChaosRow] = {}


class Recorder:
    def __init__(self, nodeid: str) -> None:
        self.row = ChaosRow(scenario=nodeid.split("::", 1)[-1])

    def name(self, scenario: str) -> None:
        self.row.scenario = scenario

    def record(self, **figures: Any) -> None:
        """Set figures (lost, dups, orphans, leaks, cause)."""
        for key, value in figures.items():
            if not hasattr(self.row, key):
                raise AttributeError(key)
            setattr(self.row, key, value)


def keys_of(rows: Iterable[dict[str, Any]], key: Sequence[str]) -> list[tuple]:
    return [tuple(row[name] for name in key) for row in rows]


def raw_figures(
    catalog: Catalog,
    identifier: tuple[str, str],
    key: Sequence[str],
    source_keys: Iterable[tuple],
) -> tuple[int, int]:
    """(lost, dups) of a raw Iceberg table against the source's keys (a table
    without version columns, plan runs: its rows by key)."""
    data: pa.Table = catalog.load_table(identifier).scan().to_arrow()
    versioned = VALID_FROM in data.column_names
    identity = [*key, VALID_FROM] if versioned else list(key)
    held = keys_of(data.select(identity).to_pylist(), identity)
    live = latest_per_key(data, list(key)) if versioned else data
    lost = len(set(source_keys) - set(keys_of(live.to_pylist(), key)))
    return lost, len(held) - len(set(held))


def render_table(rows: list[ChaosRow]) -> str:
    """A Markdown table, one row per scenario."""
    head = "| scenario | outcome | lost | dups | orphans | leaks | error names cause |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: _order(r.scenario)):
        cells = [
            row.scenario,
            row.outcome,
            *(_cell(v) for v in (row.lost, row.dups, row.orphans, row.leaks)),
            row.cause or "—",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: int | None) -> str:
    return "—" if value is None else str(value)


def _order(scenario: str) -> tuple[int, str]:
    digits = re.match(r"\d+", scenario)
    return (int(digits.group()), scenario) if digits else (99, scenario)


def iceberg_orphans(catalog: Catalog, identifier: tuple[str, str]) -> int:
    """Data files under the table's folder that no snapshot references (left by a
    commit that never happened: garbage, which no reader of the table sees)."""
    table = catalog.load_table(identifier)
    referenced = {
        _local(path)
        for path in table.inspect.all_files().column("file_path").to_pylist()
    }
    data = Path(_local(table.location())) / "data"
    return sum(1 for path in data.rglob("*.parquet") if str(path) not in referenced)


def lake_orphans(day_folder: Path) -> int:
    """Parquet files in extract folders without a manifest (a dead attempt's)."""
    return sum(
        len(list(folder.rglob("*.parquet")))
        for folder in day_folder.glob("extract=*")
        if not (folder / "_manifest.json").exists()
    )


def _local(uri: str) -> str:
    return uri.removeprefix("file://")
