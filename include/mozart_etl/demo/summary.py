"""What a tenant's run for one production day left behind, read back from storage."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from mozart_etl.config.models import TenantConfig
from mozart_etl.core.identifiers import qualified_name, quote_identifier

MART_DATE_COLUMNS = {"mart_wip": "snapshot_date"}


class TableStages(BaseModel):
    table: str
    extracted: int
    accepted: int
    quarantined: int
    raw_rows: int
    """Rows live in raw (each key's current version; raw keeps the earlier ones)."""
    extract_folder: str


class RunSummary(BaseModel):
    tenant_id: str
    production_day: date
    state: str
    tables: list[TableStages]
    marts: dict[str, int]
    lake_root: str
    catalog_uri: str
    warehouse: str

    def render(self) -> str:
        lines = [
            f"\n== tenant {self.tenant_id}, production day {self.production_day}: "
            f"{self.state} ==",
            f"{'table':<18}{'extracted':>10}{'accepted':>10}{'quarant.':>10}"
            f"{'raw rows':>10}",
        ]
        for t in self.tables:
            lines.append(
                f"{t.table:<18}{t.extracted:>10}{t.accepted:>10}{t.quarantined:>10}"
                f"{t.raw_rows:>10}"
            )
        lines.append(f"\n{'mart (rows for the day/plan_ver)':<32}{'rows':>6}")
        lines += [f"{name:<32}{rows:>6}" for name, rows in self.marts.items()]
        lines += [
            "",
            f"lake:      {self.lake_root}",
            f"iceberg:   {self.catalog_uri}",
            f"marts:     {self.warehouse}",
        ]
        return "\n".join(lines)


def summarise_run(tenant: TenantConfig, day: date, state: str) -> RunSummary:
    import duckdb

    from mozart_etl.core.lake import Lake, latest_manifest
    from mozart_etl.load.catalog import open_catalog
    from mozart_etl.load.versions import is_versioned, live_rows

    lake = Lake(tenant)
    catalog = open_catalog(tenant)
    tables = []
    for table in tenant.tables:
        manifest = latest_manifest(lake, table.name, day)
        report = lake.read_json(f"{manifest.folder}/validated/report.json")
        raw = catalog.load_table((tenant.raw_namespace, table.name))
        tables.append(
            TableStages(
                table=table.name,
                extracted=manifest.rows,
                accepted=report["accepted"],
                quarantined=report["quarantined"],
                raw_rows=(
                    live_rows(raw, table, columns=table.primary_key).num_rows
                    if is_versioned(table)
                    else raw.scan().count()
                ),
                extract_folder=lake.uri(manifest.folder),
            )
        )
    marts: dict[str, int] = {}
    warehouse = tenant.dbt.duckdb_path or ""
    # Same settings as dbt-duckdb, which may still hold the file open in-process.
    with duckdb.connect(warehouse) as con:
        names = con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = ? AND table_name LIKE 'mart_%' ORDER BY 1",
            [tenant.namespace],
        ).fetchall()
        # Master marts: the rows of the plan version a run of the day builds by default.
        plan_ver = tenant.plan_version.resolve(None, day)
        for (name,) in names:
            relation = qualified_name(tenant.namespace, name)
            columns = {row[0] for row in con.execute(f"DESCRIBE {relation}").fetchall()}
            column, value = (
                ("plan_ver", plan_ver)
                if "plan_ver" in columns
                else (MART_DATE_COLUMNS.get(name, "work_date"), day)
            )
            query = (
                f"SELECT count(*) FROM {relation} WHERE {quote_identifier(column)} = ?"
            )
            marts[name] = con.execute(query, [value]).fetchall()[0][0]
    return RunSummary(
        tenant_id=tenant.tenant_id,
        production_day=day,
        state=state,
        tables=tables,
        marts=marts,
        lake_root=lake.uri(lake.root),
        catalog_uri=str(tenant.iceberg.catalog.uri),
        warehouse=warehouse,
    )
