"""16. Two tenants on one Iceberg catalog and one lake root: each load lands in
its own namespace and prefix, and a tenant whose YAML names the other's raw
namespace is refused before any task of it can run."""

from __future__ import annotations

from pathlib import Path

from mozart_etl.config.isolation import isolation_errors
from mozart_etl.load.catalog import open_catalog
from tests.helpers import tenant_dict, write_sqlite
from tests.reliability.chaos import Recorder, raw_figures
from tests.reliability.lots import DAYS, KEY, SQLITE_DDL, keys, lots_table, rows_for
from tests.reliability.pipeline import run_table, tenant_of, write_tenant


def _tenant(tmp_path: Path, tenant_id: str, day: int, **iceberg: str) -> Path:
    source = tmp_path / f"{tenant_id}.sqlite"
    write_sqlite(source, SQLITE_DDL, "lots", rows_for(DAYS[day]))
    data = tenant_dict(tmp_path, [lots_table("incremental")], tenant_id=tenant_id)
    data["source"] = {"type": "sqlite", "database": str(source)}
    data["dbt"]["duckdb_path"] = str(tmp_path / f"{tenant_id}_marts.duckdb")
    data["iceberg"].update(iceberg)
    return write_tenant(tmp_path / "tenants", data)


def test_tenants_sharing_a_catalog_stay_in_their_own_namespaces(
    tmp_path: Path, chaos: Recorder
) -> None:
    chaos.name("16. two tenants, one catalog and lake: no rows cross; intruder refused")
    plant_a = _tenant(tmp_path, "plant_a", 0)
    plant_b = _tenant(tmp_path, "plant_b", 1)
    run_table(plant_a, "lots", DAYS[0], "a-1")
    run_table(plant_b, "lots", DAYS[1], "b-1")

    catalog = open_catalog(tenant_of(plant_a))
    lost_a, dups_a = raw_figures(
        catalog, ("plant_a_raw", "lots"), KEY, keys(rows_for(DAYS[0]))
    )
    lost_b, dups_b = raw_figures(
        catalog, ("plant_b_raw", "lots"), KEY, keys(rows_for(DAYS[1]))
    )
    a_keys = set(keys(rows_for(DAYS[0])))
    b_raw = catalog.load_table(("plant_b_raw", "lots")).scan().to_arrow()
    crossed = len(a_keys & set(keys(b_raw.select(KEY).to_pylist())))
    assert (lost_a, dups_a, lost_b, dups_b, crossed) == (0, 0, 0, 0, 0)
    lake = tmp_path / "lake"
    assert {p.name for p in lake.iterdir()} == {"plant_a", "plant_b"}

    # plant_c's YAML points its raw namespace at plant_a's tables.
    intruder = _tenant(tmp_path, "plant_c", 2, raw_namespace="plant_a_raw")
    tenants = {
        t.tenant_id: t for t in (tenant_of(f) for f in (plant_a, plant_b, intruder))
    }
    errors = isolation_errors(tenants)
    assert set(errors) == {"plant_c"}
    assert "iceberg.raw_namespace 'plant_a_raw' is tenant plant_a's name" in str(
        errors["plant_c"]
    )
    chaos.record(
        lost=lost_a + lost_b,
        dups=dups_a + dups_b,
        leaks=crossed,
        cause="IsolationError names the setting and its owner",
    )
