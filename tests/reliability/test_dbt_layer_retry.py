"""11d. A dbt layer is one `dbt build` task; its retry builds only what did not
succeed.

A copy of the demo tenant runs through Airflow (`dag.test`): every table's
sync and the staging layer for real (marts and later are marked successful).
`stg_equipment` raises a transient error (DuckDB's `error()` with an "IO
Error" text, which the dbt retry policy retries) on the first try; the retry
callback puts the model back. The retry must build `stg_equipment` and its
tests, and nothing else: the other staging models were built by the first
try, from the same raw snapshot.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

from mozart_etl.demo.generate import generate_demo_source
from tests.reliability.chaos import Recorder
from tests.reliability.dagrun import ROOT
from tests.reliability.test_dbt_errors import ONLY, _tenant

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun

DAY = date(2026, 11, 19)
TASK = "dbt_staging"
MODEL = "stg_equipment"
TRANSIENT = "select error('IO Error: simulated, gone on the next try') as equipment_id"


def _layer_nodes(folder: Path, layer: str) -> dict[str, dict[str, Any]]:
    """The layer's models and the tests reading only them, by unique id, from
    the tenant's prebuilt dbt manifest (read apart from the code under test)."""
    manifest = json.loads((folder / "dbt" / "target" / "manifest.json").read_text())
    nodes = manifest["nodes"]
    models = {
        uid: node
        for uid, node in nodes.items()
        if node["resource_type"] == "model"
        and node["original_file_path"].startswith(f"models/{layer}/")
    }
    tests = {
        uid: node
        for uid, node in nodes.items()
        if node["resource_type"] == "test"
        and node["depends_on"]["nodes"]
        and all(dep in models for dep in node["depends_on"]["nodes"])
    }
    return models | tests


def _run(tenant_id: str, on_retry: Any) -> DagRun:
    from airflow.dag_processing.dagbag import DagBag

    from mozart_etl.core.calendar import production_day

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags[tenant_id]
    dag.task_dict[TASK].on_retry_callback = [on_retry]
    return dag.test(
        logical_date=production_day(DAY, "Asia/Seoul").end,
        run_conf={"production_day": DAY.isoformat()},
        mark_success_pattern=ONLY,
    )


def test_a_layer_retry_builds_only_the_nodes_that_did_not_succeed(
    tmp_path: Path,
    mozart_home: Path,
    airflow_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    chaos: Recorder,
) -> None:
    chaos.name(
        "11d. one model of a dbt layer fails transiently: the retry builds it alone"
    )
    tenant_id = "chaos_layer_retry"
    folder = _tenant(tmp_path, tenant_id, retries=1)
    monkeypatch.setenv("MOZART_TENANTS_DIR", str(tmp_path / "tenants"))
    generate_demo_source(mozart_home / "demo" / "source.sqlite")
    model_file = folder / "dbt" / "models" / "staging" / f"{MODEL}.sql"
    original = model_file.read_text()
    model_file.write_text("{{ config(materialized='table') }}\n" + TRANSIENT + "\n")
    remembered: list[list[str]] = []

    def put_back(context: Any) -> None:
        """After try 1 went up_for_retry: what it left for the retry, and the
        model as it was."""
        run_id = quote(str(context["run_id"]), safe="")
        marker = (
            mozart_home
            / "lake"
            / tenant_id
            / "_runs"
            / run_id
            / "dbt_staging.unfinished.json"
        )
        remembered.append(json.loads(marker.read_text())["nodes"])
        model_file.write_text(original)

    run = _run(tenant_id, put_back)
    ti = next(t for t in run.get_task_instances() if t.task_id == TASK)
    assert (ti.state, ti.try_number) == ("success", 2)

    # What did not succeed in try 1: the model and its tests (skipped), by the
    # manifest; every other staging model had been built.
    nodes = _layer_nodes(folder, "staging")
    own = {
        uid
        for uid, node in nodes.items()
        if uid.endswith(f".{MODEL}")
        or (
            node["resource_type"] == "test"
            and any(dep.endswith(f".{MODEL}") for dep in node["depends_on"]["nodes"])
        )
    }
    assert len(own) >= 2  # the model and at least one test
    assert remembered == [sorted(own)]

    # The task logs reach stdout, or only the log capture once an earlier
    # test in the process set Airflow's logging up: read both.
    text = "".join(capfd.readouterr()) + caplog.text
    built = re.findall(r"dbt (model|test) (\S+): (\w+) in", text)
    first_try = [name for kind, name, _ in built if kind == "model"]
    # Try 1 built every staging model (the broken one errored); try 2 only it.
    staging_models = {
        n["name"] for n in nodes.values() if n["resource_type"] == "model"
    }
    assert first_try[: len(staging_models)].count(MODEL) == 1
    assert set(first_try[: len(staging_models)]) == staging_models
    retried = first_try[len(staging_models) :]
    assert retried == [MODEL]
    assert re.search(rf"building only those: .*\b{MODEL}\b", text)

    # The retry's XCom lists only the model and its tests, all succeeded.
    outcomes = ti.xcom_pull(task_ids=TASK, key="models")
    assert {o["name"] for o in outcomes} == {nodes[uid]["name"] for uid in own}
    assert {o["status"] for o in outcomes} <= {"success", "pass"}
    # Nothing left for a later attempt.
    assert not list((mozart_home / "lake" / tenant_id / "_runs").rglob("dbt_*.json"))
    chaos.record(
        lost=0,
        dups=0,
        cause=f"try 1: {MODEL} IO Error (transient), {len(staging_models) - 1} "
        f"other models built; try 2 built {MODEL} and {len(own) - 1} test(s) only",
    )
