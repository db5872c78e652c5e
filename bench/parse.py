"""DAG parse time for many tenants: 200 tenants x 10 tables, DagBag over `dags/`.

Compares, in one run and in fresh processes (ours: best of 3): the floor
(importing Airflow and Cosmos, no tenant), our factory with manifest
rendering (LoadMode.DBT_MANIFEST) over 200 tenants, and the usual alternative,
Cosmos's `dbt ls` at parse time (LoadMode.DBT_LS), measured on 2 tenants and
scaled to 200.

Run: `make bench BENCH=parse` or `.venv/bin/python -m bench parse`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from bench.common import log, measure, report

ROOT = Path(__file__).resolve().parents[1]
TENANTS = 200
EXTRA_TABLES = 4  # on top of the template's 6 standard MES tables → 10


def _prototype(workdir: Path) -> Path:
    """One 10-table tenant with its dbt project and manifest, built once."""
    from mozart_etl.ops.cli import main

    tenants = workdir / "tenants"
    shutil.copytree(ROOT / "tenants" / "_template", tenants / "_template")
    assert main(["--tenants-dir", str(tenants), "new-tenant", "proto"]) == 0
    folder = tenants / "proto"
    config = yaml.safe_load((folder / "tenant.yaml").read_text())
    for index in range(EXTRA_TABLES):
        name = f"extra_{index}"
        config["tables"].append(
            {
                "name": name,
                "source": {"table": name},
                "primary_key": ["id"],
                "columns": [
                    {"name": "id", "type": "bigint", "nullable": False},
                    {"name": "value", "type": "string"},
                ],
            }
        )
        staging = folder / "dbt" / "models" / "staging" / f"stg_{name}.sql"
        staging.write_text(f"select id, value from {{{{ source('raw', '{name}') }}}}\n")
    (folder / "tenant.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    assert main(["--tenants-dir", str(tenants), "sync"]) == 0
    assert main(["--tenants-dir", str(tenants), "manifests"]) == 0
    shutil.rmtree(tenants / "_template")
    return folder


def _clone(prototype: Path, tenants: Path, count: int) -> None:
    """Copies of the prototype under new ids (manifest ids renamed, not rebuilt)."""
    for index in range(count):
        tenant_id = f"plant_{index:03d}"
        target = tenants / tenant_id
        shutil.copytree(prototype, target, symlinks=True)
        for relative in (
            "tenant.yaml",
            "dbt/dbt_project.yml",
            "dbt/target/manifest.json",
            "dbt/target/cosmos_manifest_staging.json",
            "dbt/target/cosmos_manifest_marts.json",
        ):
            path = target / relative
            text = path.read_text().replace("proto", tenant_id)
            path.write_text(text)


def parse_dagbag(
    tenants_dir: str, load_mode: str | None, shape: str = "tables"
) -> dict:
    """In a fresh process: parse the DAG folder the way the dag-processor does
    (`shape`: the DAG shape, MOZART_DAG_SHAPE; Cosmos renders the dbt models
    only in the `stages` shape)."""
    os.environ["MOZART_TENANTS_DIR"] = tenants_dir
    os.environ["MOZART_DAG_SHAPE"] = shape
    if load_mode:
        os.environ["MOZART_COSMOS_LOAD_MODE"] = load_mode
        # The dbt ls cache lives in Airflow Variables (a metadata DB): measure
        # the uncached cost, what every changed project pays.
        os.environ["AIRFLOW__COSMOS__ENABLE_CACHE_DBT_LS"] = "False"
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    return {
        "parse_seconds": time.perf_counter() - started,
        "dags": len(bag.dags),
        "tasks": sum(len(dag.tasks) for dag in bag.dags.values()),
        "errors": len(bag.import_errors),
    }


def import_floor() -> dict:
    started = time.perf_counter()
    import cosmos  # noqa: F401
    from airflow.dag_processing.dagbag import DagBag  # noqa: F401

    return {"parse_seconds": time.perf_counter() - started}


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="mozart-bench-parse-"))
    try:
        prototype = _prototype(workdir)
        many, few = workdir / "many", workdir / "few"
        _clone(prototype, many, TENANTS)
        _clone(prototype, few, 2)
        floor = measure(import_floor)
        runs = [measure(parse_dagbag, str(many), None) for _ in range(3)]
        ours = min(runs, key=lambda run: run["result"]["parse_seconds"])
        stages = measure(parse_dagbag, str(many), None, "stages")
        dbt_ls = measure(parse_dagbag, str(few), "dbt_ls", "stages")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ours_s = ours["result"]["parse_seconds"]
    ls_per_tenant = dbt_ls["result"]["parse_seconds"] / 2
    rows = [
        {
            "variant": "floor: import airflow + cosmos",
            "tenants": 0,
            "seconds": floor["result"]["parse_seconds"],
            "peak_rss_mb": floor["peak_rss_mb"],
        },
        {
            "variant": "ours: DagBag, `tables` shape (default)",
            "tenants": TENANTS,
            "seconds": ours_s,
            "peak_rss_mb": ours["peak_rss_mb"],
            "dags": ours["result"]["dags"],
            "tasks": ours["result"]["tasks"],
            "errors": ours["result"]["errors"],
            "per_tenant_ms": 1000 * ours_s / TENANTS,
            "all_runs_s": [round(r["result"]["parse_seconds"], 2) for r in runs],
        },
        {
            "variant": "`stages` shape: Cosmos renders each model (manifest)",
            "tenants": TENANTS,
            "seconds": stages["result"]["parse_seconds"],
            "peak_rss_mb": stages["peak_rss_mb"],
            "dags": stages["result"]["dags"],
            "tasks": stages["result"]["tasks"],
            "errors": stages["result"]["errors"],
            "per_tenant_ms": 1000 * stages["result"]["parse_seconds"] / TENANTS,
        },
        {
            "variant": "`stages` shape, Cosmos dbt ls at parse (2 tenants)",
            "tenants": 2,
            "seconds": dbt_ls["result"]["parse_seconds"],
            "peak_rss_mb": dbt_ls["peak_rss_mb"],
            "dags": dbt_ls["result"]["dags"],
            "errors": dbt_ls["result"]["errors"],
            "per_tenant_ms": 1000 * ls_per_tenant,
            "scaled_to_200_s": ls_per_tenant * TENANTS,
        },
    ]
    report("parse", rows)
    log.info(
        "json %s",
        json.dumps(
            {"bench": "parse", "ratio_dbt_ls_vs_ours": ls_per_tenant * TENANTS / ours_s}
        ),
    )


if __name__ == "__main__":
    main()
