"""Onboarding by mapping: tenant.yaml column mappings → generated dbt models.

On a copy of tenant `acme` (its master tables are mapped, not hand-written):
`mozart sync --check` passes on the committed files, fails once a mapping
changes until `mozart sync` regenerates, and a hand-written model replaces
its generated twin. The generated SQL parses as Trino and DuckDB SQL.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import jinja2
import pytest
import sqlglot
from pydantic import ValidationError

from mozart_etl.config.loader import load_tenant
from mozart_etl.config.mapping import MartMapping
from mozart_etl.core.errors import ConfigError
from mozart_etl.dbt.mapping import generated_models, render_staging
from mozart_etl.ops.cli import main as mozart

ROOT = Path(__file__).resolve().parents[2]
ACME = ROOT / "tenants" / "acme"
GENERATED = {
    "staging/_generated/stg_item_master.sql",
    "staging/_generated/stg_bom.sql",
    "staging/_generated/stg_demand.sql",
    "marts/_generated/mart_item_master.sql",
    "marts/_generated/mart_bom.sql",
    "marts/_generated/mart_demand.sql",
}


@pytest.fixture
def acme(tmp_path: Path) -> Path:
    folder = tmp_path / "tenants" / "acme"
    shutil.copytree(
        ACME, folder, ignore=shutil.ignore_patterns("target", "dbt_packages", "logs")
    )
    return folder


def _sync(folder: Path, *args: str) -> int:
    return mozart(["--tenants-dir", str(folder.parent), "sync", *args])


def _models(folder: Path) -> set[str]:
    models = folder / "dbt" / "models"
    return {str(path.relative_to(models)) for path in models.rglob("_generated/*.sql")}


def test_committed_models_are_what_the_mapping_generates(acme: Path) -> None:
    assert _models(acme) == GENERATED
    assert _sync(acme, "--check") == 0
    tenant = load_tenant(acme)
    for path, sql in generated_models(acme, tenant).items():
        assert path.read_text(encoding="utf-8") == sql
    staging = (acme / "dbt/models/staging/_generated/stg_demand.sql").read_text()
    assert "from {{ mozart_core.latest(source('raw', 'dmd'), ['dmd_no']) }} as raw" in (
        staging
    )
    assert "where (del_yn = 'N')" in staging
    assert 'cast("dmd_no" as varchar) as demand_id' in staging
    mart = (acme / "dbt/models/marts/_generated/mart_demand.sql").read_text()
    assert "mozart_core.replace_plan_ver()" in mart
    assert "{{ mozart_core.mart_demand() }}" in mart
    contracts = (acme / "dbt/models/marts/_marts.yml").read_text()
    assert "name: mart_demand" in contracts and "name: mart_wip" in contracts


def test_check_fails_when_a_mapping_changed_until_synced(
    acme: Path, caplog: pytest.LogCaptureFixture
) -> None:
    yaml_path = acme / "tenant.yaml"
    yaml_path.write_text(
        yaml_path.read_text().replace(
            "filter: del_yn = 'N'", "filter: del_yn = 'N' and dmd_qty > 0"
        )
    )
    with caplog.at_level(logging.INFO, logger="mozart"):
        assert _sync(acme, "--check") == 1
    assert "stg_demand.sql is stale" in caplog.text
    assert (
        "where (del_yn = 'N')\n"
        in (acme / "dbt/models/staging/_generated/stg_demand.sql").read_text()
    )  # check mode writes nothing

    assert _sync(acme) == 0
    assert _sync(acme, "--check") == 0
    regenerated = (acme / "dbt/models/staging/_generated/stg_demand.sql").read_text()
    assert "where (del_yn = 'N' and dmd_qty > 0)\n" in regenerated


def test_a_hand_written_model_replaces_the_generated_one(
    acme: Path, caplog: pytest.LogCaptureFixture
) -> None:
    own = acme / "dbt/models/staging/stg_bom.sql"
    own.write_text("select 1 as parent_item_id\n")
    with caplog.at_level(logging.INFO, logger="mozart"):
        assert _sync(acme, "--check") == 1
    assert "stg_bom.sql is no longer generated" in caplog.text
    assert _sync(acme) == 0
    assert _models(acme) == GENERATED - {"staging/_generated/stg_bom.sql"}
    assert own.read_text() == "select 1 as parent_item_id\n"
    assert _sync(acme, "--check") == 0


class _Dbt:
    """Just enough of dbt's Jinja context to render a model that calls
    mozart_core's macros (their own text, dbt/mozart_core/macros/*.sql) for one
    engine: `adapter.quote` and `adapter.dispatch`, `var` defaults, `return`."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.env = jinja2.Environment(
            undefined=jinja2.StrictUndefined, extensions=["jinja2.ext.do"]
        )
        self.env.globals.update(
            {
                "adapter": self,
                "mozart_core": self,
                "var": lambda name, default=None: default,
                "return": lambda value: value,
            }
        )
        folder = ROOT / "dbt" / "mozart_core" / "macros"
        self.modules = [
            self.env.from_string(path.read_text(encoding="utf-8")).module
            for path in sorted(folder.glob("*.sql"))
        ]

    def __getattr__(self, name: str) -> Any:  # mozart_core.<macro>
        for module in self.__dict__.get("modules", []):
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(name)

    @staticmethod
    def quote(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def dispatch(self, name: str, package: str) -> Any:
        assert package == "mozart_core"
        try:
            return getattr(self, f"{self.dialect}__{name}")
        except AttributeError:
            return getattr(self, f"default__{name}")

    def render(self, sql: str) -> str:
        """A model as dbt renders it: `config` to nothing, `source` to a relation."""
        context = {
            "config": lambda **_: "",
            "source": lambda schema, name: f'{schema}."{name}"',
        }
        return self.env.from_string(sql).render(context)


@pytest.mark.parametrize("dialect", ["trino", "duckdb"])
def test_generated_staging_sql_parses(acme: Path, dialect: str) -> None:
    """Rendered, the generated staging parses per dialect and reads each key's
    latest version of the raw table (`mozart_core.latest`)."""
    tenant = load_tenant(acme)
    dbt = _Dbt(dialect)
    for path, sql in generated_models(acme, tenant).items():
        if "staging" not in path.parts:
            continue
        statement = sqlglot.parse_one(dbt.render(sql), read=dialect)
        assert statement.find(sqlglot.exp.Select) is not None, path
        # The outer select reads a subquery: the latest version of each key.
        outer = statement.find(sqlglot.exp.From)  # breadth first: the outer FROM
        assert outer is not None, path
        subquery = outer.this
        assert isinstance(subquery, sqlglot.exp.Subquery), path
        assert subquery.alias == "raw", path
        ranked = subquery.find(sqlglot.exp.Window)
        assert ranked is not None, path
        name = path.stem.removeprefix("stg_")
        table = next(
            t for t in tenant.tables if t.mapping and t.mapping.mart == f"mart_{name}"
        )
        partition = [column.name for column in ranked.args["partition_by"]]
        assert partition == list(table.primary_key), path
        tables = {t.name for t in statement.find_all(sqlglot.exp.Table)}
        assert tables == {table.name}, path


def test_constants_are_escaped_literals_and_identifiers_quoted(acme: Path) -> None:
    tenant = load_tenant(acme)
    table = tenant.table("item_mst")
    mapping = MartMapping.model_validate(
        {
            "mart": "mart_item_master",
            "columns": {
                **{
                    k: v.model_dump(exclude_none=True)
                    for k, v in table.mapping.columns.items()
                },  # type: ignore[union-attr]
                "item_group_id": {"constant": "O'Brien; drop"},
            },
        }
    )
    sql = render_staging(tenant, table, mapping, "stg_item_master")
    assert "cast('O''Brien; drop' as varchar) as item_group_id" in sql
    assert 'cast("item_cd" as varchar) as item_id' in sql


def test_bad_mappings_name_tenant_table_and_column(acme: Path) -> None:
    tenant = load_tenant(acme)
    table = tenant.table("bom")
    columns = {
        k: v.model_dump(exclude_none=True) for k, v in table.mapping.columns.items()
    }  # type: ignore[union-attr]

    unmapped = MartMapping.model_validate(
        {
            "mart": "mart_bom",
            "columns": {k: v for k, v in columns.items() if k != "qty_per"},
        }
    )
    with pytest.raises(
        ConfigError, match=r"tenant=acme table=bom.*unmapped \['qty_per'\]"
    ):
        render_staging(tenant, table, unmapped, "stg_bom")

    broken = MartMapping.model_validate(
        {"mart": "mart_bom", "columns": {**columns, "qty_per": {"expr": "unit_qty *"}}}
    )
    with pytest.raises(ConfigError, match=r"tenant=acme table=bom column=qty_per"):
        render_staging(tenant, table, broken, "stg_bom")

    with pytest.raises(ValidationError, match="one SQL expression"):
        MartMapping.model_validate(
            {"mart": "mart_bom", "columns": columns, "filter": "1=1; drop table x"}
        )
    with pytest.raises(ValidationError, match="exactly one of"):
        MartMapping.model_validate(
            {"mart": "mart_bom", "columns": {"qty_per": {"column": "a", "constant": 1}}}
        )
    yaml_path = acme / "tenant.yaml"
    yaml_path.write_text(
        yaml_path.read_text().replace(
            "parent_item_id: prnt_item_cd", "parent_item_id: nope"
        )
    )
    with pytest.raises(
        ConfigError, match=r"mapping onto mart_bom: unknown column 'nope'"
    ):
        load_tenant(acme)


# --- every standard staging model (issue #25) --------------------------------

_LOT_COLUMNS = [
    {"name": name, "type": kind, "nullable": True}
    for name, kind in [
        ("LOT_NO", "string"),
        ("OPER_SEQ", "int"),
        ("PROD_CD", "string"),
        ("OPER_CD", "string"),
        ("EQP_ID", "string"),
        ("IN_QTY", "int"),
        ("OUT_QTY", "int"),
        ("LOT_STAT", "string"),
        ("ARR_DTTM", "timestamp"),
        ("TKIN_DTTM", "timestamp"),
        ("TKOUT_DTTM", "timestamp"),
        ("UPD_DTTM", "timestamp"),
        ("DEL_YN", "string"),
    ]
]
_LOT_MAPPING: dict[str, Any] = {
    "mart": "mart_wip",
    "deleted": {"column": "DEL_YN", "values": ["Y"]},
    "columns": {
        "lot_id": "LOT_NO",
        "step_seq": "OPER_SEQ",
        "product_id": "PROD_CD",
        "step_id": "OPER_CD",
        "equipment_id": "EQP_ID",
        "qty_in": "IN_QTY",
        "qty_out": {"expr": "coalesce(OUT_QTY, 0)"},
        "status": {
            "column": "LOT_STAT",
            "map": {"WT": "WAIT", "RN": "RUN", "CP": "DONE", "O'K": "HOLD"},
        },
        "arrived_at": "ARR_DTTM",
        "track_in_at": {"column": "TKIN_DTTM", "zone": "Europe/Berlin"},
        "track_out_at": "TKOUT_DTTM",
        "updated_at": {"key": ["LOT_NO", "OPER_SEQ"], "cast": "varchar"},
    },
}


def _plant(tmp_path: Path, mapping: dict[str, Any]) -> Path:
    """A tenant folder whose one table maps onto stg_lot_history."""
    import yaml

    from tests.helpers import table_dict, tenant_dict

    table = table_dict(
        "lot_hist",
        _LOT_COLUMNS,
        primary_key=("LOT_NO", "OPER_SEQ"),
        source={"table": "TB_LOT_HIST"},
        mode="merge",
        cursor="UPD_DTTM",
        mapping=mapping,
    )
    data = tenant_dict(tmp_path, [table], tenant_id="plant_x")
    data["source"]["timezone"] = "Asia/Seoul"
    folder = tmp_path / "tenants" / "plant_x"
    folder.mkdir(parents=True)
    (folder / "tenant.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def test_a_daily_mart_input_maps_with_codes_zones_keys_and_soft_deletes(
    tmp_path: Path,
) -> None:
    """`mapping: {mart: mart_wip}` generates stg_lot_history read as of the
    day's end, and the marts that read only it; mozart sync writes them."""
    folder = _plant(tmp_path, _LOT_MAPPING)
    tenant = load_tenant(folder)
    files = {path.stem: sql for path, sql in generated_models(folder, tenant).items()}
    # stg_product_route is missing: mart_lead_time cannot be generated.
    assert set(files) == {"stg_lot_history", "mart_wip", "mart_cycle_time"}
    sql = files["stg_lot_history"]
    assert (
        "from {{ mozart_core.as_of(source('raw', 'lot_hist'), "
        "['LOT_NO', 'OPER_SEQ']) }} as raw\n"
    ) in sql
    assert "    _mozart_valid_from\n" in sql
    assert (
        "cast(case \"LOT_STAT\" when 'WT' then 'WAIT' when 'RN' then 'RUN' "
        "when 'CP' then 'DONE' when 'O''K' then 'HOLD' else null end as varchar)"
        " as status"
    ) in sql
    assert "source_instant('\"ARR_DTTM\"', 'Asia/Seoul')" in sql
    assert "source_instant('\"TKIN_DTTM\"', 'Europe/Berlin')" in sql
    assert "cast((coalesce(OUT_QTY, 0)) as bigint) as qty_out" in sql
    assert "generated_key(['\"LOT_NO\"', '\"OPER_SEQ\"'])" in sql
    assert "where not coalesce(\"DEL_YN\" in ('Y'), false)\n" in sql
    assert "replace_production_day('snapshot_date')" in files["mart_wip"]
    assert mozart(["--tenants-dir", str(folder.parent), "sync"]) == 0
    assert mozart(["--tenants-dir", str(folder.parent), "sync", "--check"]) == 0


@pytest.mark.parametrize("dialect", ["trino", "duckdb"])
def test_a_generated_daily_staging_model_parses(tmp_path: Path, dialect: str) -> None:
    folder = _plant(tmp_path, _LOT_MAPPING)
    tenant = load_tenant(folder)
    dbt = _Dbt(dialect)
    dbt.env.globals["mozart_core"] = _WithAsOf(dbt)
    for path, sql in generated_models(folder, tenant).items():
        if "staging" in path.parts:
            statement = sqlglot.parse_one(dbt.render(sql), read=dialect)
            names = {c.alias_or_name for c in statement.expressions}
            assert {"lot_id", "status", "_mozart_valid_from"} <= names


class _WithAsOf:
    """mozart_core for _Dbt, with the as-of reader (and the key macro) of
    dbt/mozart_core rendered as a plain ranked subquery."""

    def __init__(self, dbt: _Dbt) -> None:
        self.dbt = dbt
        mapping = ROOT / "dbt" / "mozart_core" / "macros" / "mapping.sql"
        self.key = dbt.env.from_string(mapping.read_text()).module

    def __getattr__(self, name: str) -> Any:
        if name == "as_of":
            return lambda relation, keys: (
                f"(select *, row_number() over (partition by {', '.join(keys)} "
                f"order by _mozart_valid_from desc) as r from {relation})"
            )
        if hasattr(self.key, name):
            return getattr(self.key, name)
        return getattr(self.dbt, name)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (  # a typo inside an expression fails validate, both dialects parsed
            {"qty_out": {"expr": "coalesce(OUT_QTYY, 0)"}},
            r"(?s)tenant=plant_x.*tables\[lot_hist\]: .*mapping onto mart_wip: "
            r"column qty_out expr "
            r"'coalesce\(OUT_QTYY, 0\)': unknown column\(s\) \['OUT_QTYY'\]",
        ),
        (
            {"status": {"column": "LOT_STATUS", "map": {"WT": "WAIT"}}},
            r"(?s)tenant=plant_x.*unknown column 'LOT_STATUS' in status",
        ),
        (
            {"qty_in": {"expr": "IN_QTY +"}},
            r"column qty_in expr: 'IN_QTY \+' is not a duckdb SQL expression",
        ),
        (
            {"step_seq": {"column": "OPER_SEQ", "map": {"A": "10"}}},
            r"column step_seq: codes \['A'\] do not fit int 'OPER_SEQ'",
        ),
        (
            {"qty_in": {"column": "IN_QTY", "zone": "Asia/Seoul"}},
            r"column qty_in: `zone` applies to a naive timestamp, not int",
        ),
        (
            {"step_id": {"expr": "{{ run_query('drop table x') }}"}},
            r"no ';', comments or Jinja",
        ),
    ],
)
def test_validate_names_tenant_table_mapped_and_unknown_column(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    mapping = {**_LOT_MAPPING, "columns": {**_LOT_MAPPING["columns"], **change}}
    folder = _plant(tmp_path, mapping)
    with pytest.raises(ConfigError, match=message):
        load_tenant(folder)
    assert mozart(["--tenants-dir", str(folder.parent), "validate"]) == 1


def test_a_mart_reading_two_models_asks_for_the_model(tmp_path: Path) -> None:
    folder = _plant(tmp_path, {**_LOT_MAPPING, "mart": "mart_lead_time"})
    with pytest.raises(ConfigError, match=r"it reads .*name one with `model:`"):
        load_tenant(folder)
    with pytest.raises(ValidationError, match=r"quote them in YAML"):
        MartMapping.model_validate(
            {
                "model": "stg_equipment_event",
                "columns": {"event_type": {"column": "STAT_CD", "map": {1: "RUN"}}},
            }
        )
