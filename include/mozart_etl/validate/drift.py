"""Schema drift: an extract's columns against the declaration and the previous extract.

Three comparisons, each a list of `DriftChange`:

1. The extract's Parquet schema against the declared columns (the extractor
   writes the declared schema, so any difference is a broken extract). A
   Parquet column that is not declared is *added*: under `drift: evolve` it is
   passed on to the accepted rows and the load adds it to the raw table.
2. The source's own columns (`ExtractManifest.source_columns`, read from the
   source catalog at extract time) against the declared columns. An undeclared
   source column is *added* (it is not extracted: declare it to load it); a
   declared column missing from the source is *dropped*; a source type that
   the extractor cannot turn into the declared type is *retyped*.
3. The previous complete extract of the table (the newest manifest whose
   extract id sorts before this one, any production day): its declared
   columns, and its source columns when both extracts have them, against this
   one's. The previous extract is the baseline whether or not it passed, so a
   change between two runs stops one run and is then the new normal.

Added columns follow the table's `DriftPolicy`; dropped columns and
incompatible type changes always block, naming the column and both types.
"""

from __future__ import annotations

import logging
import re
from enum import StrEnum

import pyarrow as pa
import pyarrow.fs as pafs
from pydantic import BaseModel, ConfigDict

from mozart_etl.config.constants import ColumnType, DriftPolicy
from mozart_etl.config.models import ColumnConfig, TableConfig
from mozart_etl.core.lake import MANIFEST, ExtractManifest, Lake

log = logging.getLogger(__name__)


class DriftKind(StrEnum):
    """How a column differs from its baseline."""

    ADDED = "added"
    """Present now, absent from the baseline: follows the table's drift policy."""
    DROPPED = "dropped"
    """In the baseline, absent now: always blocks."""
    RETYPED = "retyped"
    """Present in both with incompatible types: always blocks."""


class DriftBaseline(StrEnum):
    """What an extract's columns were compared with."""

    DECLARED = "declared"
    """The table's columns in tenant.yaml."""
    PREVIOUS = "previous"
    """The previous complete extract of the same table."""


class SchemaSide(StrEnum):
    """Which schema of the current extract a change was found in."""

    EXTRACT = "extract"
    """The Parquet files' schema."""
    SOURCE = "source"
    """The source catalog's columns (`source_columns` of the manifest)."""
    DECLARED = "declared"
    """The columns declared when the extract ran (`columns` of the manifest)."""


class DriftChange(BaseModel):
    """One column that drifted; `expected` is the baseline's type, `found` ours."""

    model_config = ConfigDict(frozen=True)

    column: str
    kind: DriftKind
    baseline: DriftBaseline
    side: SchemaSide
    expected: str | None
    found: str | None
    blocking: bool
    previous_extract_id: str | None = None

    def describe(self) -> str:
        against = (
            "declared"
            if self.baseline == DriftBaseline.DECLARED
            else f"previous extract {self.previous_extract_id}"
        )
        if self.kind == DriftKind.ADDED:
            return (
                f"column {self.column!r} ({self.found}) added in the {self.side}, "
                f"not in the {against} columns"
            )
        if self.kind == DriftKind.DROPPED:
            return (
                f"column {self.column!r} dropped: {against} {self.expected}, "
                f"missing from the {self.side}"
            )
        return (
            f"column {self.column!r} retyped: {against} {self.expected}, "
            f"{self.side} {self.found}"
        )


def detect_drift(
    lake: Lake,
    table: TableConfig,
    manifest: ExtractManifest,
    extract_schema: pa.Schema,
) -> list[DriftChange]:
    """Every drifted column of this extract; blocking ones per the rules above."""
    declared = {c.name: declared_type(c) for c in table.columns}
    found = {field.name: portable_type(field.type) for field in extract_schema}
    changes = _against_declared(
        declared, found, SchemaSide.EXTRACT, table.drift, exact=True
    )
    if manifest.source_columns is not None:
        seen = {change.column for change in changes}
        changes += [
            change
            for change in _against_declared(
                declared, manifest.source_columns, SchemaSide.SOURCE, table.drift
            )
            if change.column not in seen
        ]
    previous = previous_manifest(lake, manifest)
    if previous is not None:
        changes += _against_previous(table, manifest, previous)
    for change in changes:
        level = logging.ERROR if change.blocking else logging.WARNING
        log.log(
            level, "%s.%s drift: %s", manifest.tenant_id, table.name, change.describe()
        )
    return changes


def _against_declared(
    declared: dict[str, str],
    found: dict[str, str],
    side: SchemaSide,
    policy: DriftPolicy,
    *,
    exact: bool = False,
) -> list[DriftChange]:
    changes = [
        DriftChange(
            column=name,
            kind=DriftKind.ADDED,
            baseline=DriftBaseline.DECLARED,
            side=side,
            expected=None,
            found=kind,
            blocking=policy == DriftPolicy.FAIL,
        )
        for name, kind in found.items()
        if name not in declared
    ]
    for name, kind in declared.items():
        if name not in found:
            changes.append(
                DriftChange(
                    column=name,
                    kind=DriftKind.DROPPED,
                    baseline=DriftBaseline.DECLARED,
                    side=side,
                    expected=kind,
                    found=None,
                    blocking=True,
                )
            )
            continue
        fits = found[name] == kind if exact else converts(found[name], kind)
        if not fits:
            changes.append(
                DriftChange(
                    column=name,
                    kind=DriftKind.RETYPED,
                    baseline=DriftBaseline.DECLARED,
                    side=side,
                    expected=kind,
                    found=found[name],
                    blocking=True,
                )
            )
    return changes


def _against_previous(
    table: TableConfig, manifest: ExtractManifest, previous: ExtractManifest
) -> list[DriftChange]:
    def change(
        column: str, kind: DriftKind, side: SchemaSide, old: str | None, new: str | None
    ) -> DriftChange:
        return DriftChange(
            column=column,
            kind=kind,
            baseline=DriftBaseline.PREVIOUS,
            side=side,
            expected=old,
            found=new,
            blocking=kind != DriftKind.ADDED or table.drift == DriftPolicy.FAIL,
            previous_extract_id=previous.extract_id,
        )

    old, new = previous.columns, manifest.columns
    changes = [
        change(name, DriftKind.ADDED, SchemaSide.DECLARED, None, kind)
        for name, kind in new.items()
        if name not in old
    ]
    for name, kind in old.items():
        if name not in new:
            changes.append(
                change(name, DriftKind.DROPPED, SchemaSide.DECLARED, kind, None)
            )
        elif not promotes(kind, new[name]):
            changes.append(
                change(name, DriftKind.RETYPED, SchemaSide.DECLARED, kind, new[name])
            )
    if previous.source_columns is not None and manifest.source_columns is not None:
        # Only columns we read: an undeclared source column may change freely.
        for name in table.column_names:
            before = previous.source_columns.get(name)
            after = manifest.source_columns.get(name)
            if before and after and not promotes(before, after):
                changes.append(
                    change(name, DriftKind.RETYPED, SchemaSide.SOURCE, before, after)
                )
    return changes


def previous_manifest(lake: Lake, manifest: ExtractManifest) -> ExtractManifest | None:
    """The newest complete extract of the table before this one, any day.

    Extract ids start with their UTC start time, so they sort in time order;
    one recursive listing of the table's folder finds every manifest.
    """
    root = f"{lake.root}/{manifest.table}"
    selector = pafs.FileSelector(root, allow_not_found=True, recursive=True)
    candidates: list[tuple[str, str]] = []
    for info in lake.fs.get_file_info(selector):
        if info.type != pafs.FileType.File or info.base_name != MANIFEST:
            continue
        folder = info.path.rsplit("/", 2)[-2]
        extract_id = folder.removeprefix("extract=")
        if folder.startswith("extract=") and extract_id < manifest.extract_id:
            candidates.append((extract_id, info.path))
    if not candidates:
        return None
    return lake.read_manifest(max(candidates)[1])


# --- portable type text ----------------------------------------------------------

_DECIMAL = re.compile(r"^decimal(?:\((\d+),\s*(\d+)\))?$")

# Source type text → the family the extractor converts from.
_FAMILIES: dict[str, str] = {
    "string": "string",
    "text": "string",
    "varchar": "string",
    "int": "integer",
    "integer": "integer",
    "smallint": "integer",
    "tinyint": "integer",
    "bigint": "integer",
    "double": "float",
    "float": "float",
    "real": "float",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
}

_ALL = set(ColumnType)
# Which declared types the extractor fills exactly from each source family.
# Text holds anything (SQLite keeps dates, instants and decimals as text): the
# extractor parses every value and fails on the first that does not fit.
_CONVERTS: dict[str, set[ColumnType]] = {
    "string": _ALL,
    "integer": {
        ColumnType.INT,
        ColumnType.BIGINT,
        ColumnType.DOUBLE,
        ColumnType.DECIMAL,
        ColumnType.BOOLEAN,
    },
    "float": {ColumnType.DOUBLE, ColumnType.DECIMAL},
    "decimal": {ColumnType.DECIMAL, ColumnType.DOUBLE},
    "boolean": {ColumnType.BOOLEAN},
    "date": {ColumnType.DATE},
    "timestamp": {ColumnType.TIMESTAMP, ColumnType.TIMESTAMPTZ},
    "timestamptz": {ColumnType.TIMESTAMPTZ},
}


def declared_type(column: ColumnConfig) -> str:
    if column.type == ColumnType.DECIMAL:
        return f"decimal({column.precision},{column.scale})"
    return str(column.type)


def portable_type(arrow: pa.DataType) -> str:
    """An Arrow type as the portable type text of tenant.yaml and manifests."""
    simple = {
        pa.string(): "string",
        pa.large_string(): "string",
        pa.int64(): "bigint",
        pa.int32(): "int",
        pa.float64(): "double",
        pa.bool_(): "boolean",
        pa.date32(): "date",
    }
    if arrow in simple:
        return simple[arrow]
    if pa.types.is_decimal(arrow):
        return f"decimal({arrow.precision},{arrow.scale})"
    if pa.types.is_timestamp(arrow):
        return "timestamptz" if arrow.tz else "timestamp"
    return str(arrow)


def _family(type_text: str) -> str | None:
    text = type_text.strip().lower()
    if _DECIMAL.match(text) or text in ("numeric", "number"):
        return "decimal"
    return _FAMILIES.get(text)


def converts(source: str, declared: str) -> bool:
    """Whether the extractor turns values of `source` type into `declared` exactly.

    An unknown source type cannot be judged: it passes (the extractor still
    fails on a value that does not fit) and is logged.
    """
    family = _family(source)
    if family is None:
        log.warning(
            "drift: cannot judge source type %r (declared %s)", source, declared
        )
        return True
    target = ColumnType(declared.split("(", 1)[0])
    return target in _CONVERTS[family]


def promotes(old: str, new: str) -> bool:
    """Whether a column may go from type `old` to `new` between two extracts:
    the same type, or a widening Iceberg allows (int → bigint, float → double,
    a decimal's precision up at the same scale)."""
    old, new = old.strip().lower(), new.strip().lower()
    if old == new:
        return True
    if (_family(old), _family(new)) == ("integer", "integer"):
        return old in ("int", "integer", "smallint", "tinyint") and new == "bigint"
    if (old, new) in (("float", "double"), ("real", "double")):
        return True
    before, after = _DECIMAL.match(old), _DECIMAL.match(new)
    if before and after:
        if before.group(1) is None or after.group(1) is None:
            return True  # a manifest that recorded "decimal" without its shape
        return before.group(2) == after.group(2) and int(after.group(1)) >= int(
            before.group(1)
        )
    return False
